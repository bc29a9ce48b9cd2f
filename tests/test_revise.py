"""Revision prompt format, trajectory construction and the training example mask."""
import re

import editdistance
import pytest

from ttc_jax.revise import format as rformat
from ttc_jax.revise.data import revision_examples, trajectory_prompt
from ttc_jax.revise.trajectories import TrajectoryConfig, build_trajectories, problem_trajectories, summarize
from ttc_jax.tasks import synthetic
from ttc_jax.tasks.tokenizer import load_tokenizer

QUESTION = "Start with 26. Subtract 11. Add 5. What is the result?"


def _headers(prompt):
  """Number of previous-attempt headers in a prompt."""
  return len(re.findall(r"^Solution \d+:$", prompt, re.M))


def _attempt(a, b):
  return f"26 - 11 = {a}\n{a} + 5 = {b}\nThe answer is {b}."


def _hand_record():
  """One correct text and incorrect texts at known edit distances from it."""
  correct = _attempt(15, 20)
  incorrect = [_attempt(15, 21), _attempt(17, 22), "garbage line\nThe answer is 3.", _attempt(99, 104),
               "26 + 11 = 37\nThe answer is 37."]
  samples = [{"text": t, "correct": False} for t in incorrect] + [{"text": correct, "correct": True}]
  return {"problem_id": "train-000001", "question": QUESTION, "answer": "20", "samples": samples}, correct, incorrect


def test_prompt_keeps_last_four_and_round_trips():
  attempts = [_attempt(i, i + 5) for i in range(7)]
  prompt = rformat.revision_prompt(QUESTION, attempts)
  assert _headers(prompt) == 4
  assert _attempt(2, 7) not in prompt and all(_attempt(i, i + 5) in prompt for i in range(3, 7))
  assert prompt.index(_attempt(3, 8)) < prompt.index(_attempt(6, 11))  # oldest first
  assert "Solution 1:\n" + _attempt(3, 8) in prompt and "Solution 5:" not in prompt
  assert prompt.endswith("\nSolution:\n")
  assert _headers(rformat.revision_prompt(QUESTION, attempts[:2])) == 2
  assert rformat.revision_prompt(QUESTION, attempts, max_context=0) == rformat.revision_prompt(QUESTION, [])
  problem = synthetic.Problem(id="x", question=QUESTION, solution="", answer="20", num_steps=2, max_operand=26, ops="+-")
  assert rformat.revision_prompt(QUESTION, []) == synthetic.prompt_text(problem)  # k=0 is the policy's prompt
  tokenizer = load_tokenizer()
  messy = ["  lead space\n\n", "", "The answer is 3.\n"] + attempts[:2]
  for prompt in (rformat.revision_prompt(QUESTION, attempts), rformat.revision_prompt(QUESTION, messy)):
    assert tokenizer.decode(tokenizer.encode(prompt)) == prompt
    # The prompt encoded alone is a prefix of prompt + attempt encoded together (trained == sampled ids).
    assert tokenizer.encode(prompt + attempts[0]) == tokenizer.encode(prompt) + tokenizer.encode(attempts[0])


def test_closest_incorrect_is_last_and_no_correct_in_context():
  record, correct, incorrect = _hand_record()
  nearest = min(incorrect, key=lambda t: editdistance.eval(correct, t))
  trajs = problem_trajectories(record, TrajectoryConfig(per_correct=20, seed=3))
  assert len(trajs) == 20 and {t["k"] for t in trajs} == {0, 1, 2, 3, 4}
  for t in trajs:
    assert t["target"] == correct and len(t["previous"]) == t["k"]
    assert correct not in t["previous"] and set(t["previous"]) <= set(incorrect)
    assert len(set(t["previous"])) == t["k"]
    if t["k"]:
      assert t["previous"][-1] == nearest
  # Random others differ across trajectories of the same k.
  assert len({tuple(t["previous"]) for t in trajs if t["k"] == 3}) > 1


def test_k_range_limited_by_distinct_incorrect_and_config():
  record, _, _ = _hand_record()
  record["samples"] = record["samples"][:2] + record["samples"][:2] + record["samples"][-1:]  # 2 distinct incorrect
  trajs = problem_trajectories(record, TrajectoryConfig(per_correct=9))
  assert {t["k"] for t in trajs} == {0, 1, 2}
  counts = [sum(t["k"] == k for t in trajs) for k in (0, 1, 2)]
  assert counts == [3, 3, 3]  # k cycles over the feasible values
  trajs = problem_trajectories(_hand_record()[0], TrajectoryConfig(ks=(2, 4), per_correct=4))
  assert sorted(t["k"] for t in trajs) == [2, 2, 4, 4]
  with pytest.raises(ValueError, match="ks"):
    TrajectoryConfig(ks=(5,))


def test_deterministic_and_seeded():
  records = [_hand_record()[0], {**_hand_record()[0], "problem_id": "train-000002"}]
  cfg = TrajectoryConfig(per_correct=10, seed=1)
  assert build_trajectories(records, cfg) == build_trajectories(records, cfg)
  assert build_trajectories(records[1:], cfg) == build_trajectories(records, cfg)[10:]  # per-problem, shard-free
  assert build_trajectories(records, cfg) != build_trajectories(records, TrajectoryConfig(per_correct=10, seed=2))


def test_problems_without_correct_or_incorrect_samples():
  all_wrong = {"problem_id": "a", "question": QUESTION, "samples": [{"text": _attempt(1, 6), "correct": False}]}
  all_right = {"problem_id": "b", "question": QUESTION,
               "samples": [{"text": _attempt(15, 20), "correct": True}, {"text": _attempt(15, 20) + "\n", "correct": True}]}
  record, _, _ = _hand_record()
  cfg = TrajectoryConfig(per_correct=3)
  assert problem_trajectories(all_wrong, cfg) == []
  right = problem_trajectories(all_right, cfg)
  # One distinct target with nothing to revise: one k = 0 trajectory (copies would repeat the same example).
  assert len(right) == 1 and right[0]["k"] == 0 and right[0]["previous"] == []
  assert problem_trajectories(all_right, TrajectoryConfig(ks=(1, 2))) == []
  records = [all_wrong, all_right, record]
  stats = summarize(records, build_trajectories(records, cfg))
  assert stats["problems_without_correct"] == 1 and stats["problems_without_incorrect"] == 1
  assert stats["num_trajectories"] == 4 and stats["problems_with_trajectories"] == 2
  assert stats["trajectories_by_k"]["0"] == 2 and sum(stats["trajectories_by_k"].values()) == 4
  assert stats["first_attempt_fraction"] == 0.5


def _many_records(n=60):
  """Problems with two distinct correct texts and five distinct incorrect ones each."""
  record, correct, _ = _hand_record()
  second = correct.replace("26 - 11 = 15", "26 - 11 = 15 ")  # another correct text (same answer)
  return [{**record, "problem_id": f"train-{i:06d}",
           "samples": record["samples"] + [{"text": second, "correct": True}]} for i in range(n)]


@pytest.mark.parametrize("fraction,per_correct", [(1 / 3, 3), (1 / 3, 5), (0.5, 4), (0.0, 3)])
def test_first_attempt_fraction_of_built_trajectories(fraction, per_correct):
  records = _many_records()
  trajs = build_trajectories(records, TrajectoryConfig(per_correct=per_correct, first_attempt_fraction=fraction))
  assert len(trajs) == 60 * 2 * per_correct
  share = sum(t["k"] == 0 for t in trajs) / len(trajs)
  assert summarize(records, trajs)["first_attempt_fraction"] == share
  if fraction * per_correct == int(fraction * per_correct):  # Exact per target, else about it overall.
    assert share == pytest.approx(fraction)
  else:
    assert abs(share - fraction) < 0.05
  for t in trajs:  # k = 0 is the question alone, in the revision layout: the policy's prompt.
    assert (t["k"] == 0) == (t["previous"] == [])
    assert trajectory_prompt(t).endswith("Solution:\n") and ("Solution 1:" in trajectory_prompt(t)) == (t["k"] > 0)
  assert {t["k"] for t in trajs} >= {1, 2, 3, 4}
  with pytest.raises(ValueError, match="first_attempt_fraction"):
    TrajectoryConfig(first_attempt_fraction=1.5)
  # Without 0 in ks there is no k = 0 trajectory, whatever the fraction.
  assert all(t["k"] for t in build_trajectories(records[:3], TrajectoryConfig(ks=(1, 2), first_attempt_fraction=0.5)))


def test_loss_mask_covers_only_the_target():
  tokenizer = load_tokenizer()
  record, correct, _ = _hand_record()
  trajs = problem_trajectories(record, TrajectoryConfig(per_correct=5))
  long = {**trajs[0], "previous": ["x" * 400] * 4, "k": 4}
  examples, stats = revision_examples(trajs + [long], tokenizer, seq_len=256)
  assert stats["examples"] == 5 and stats["skipped"] == 1 and stats["skipped_by_k"] == {"4": 1}
  assert stats["max_length"] > 256
  target_ids = tokenizer.encode(correct) + [tokenizer.eos_id]
  for t, ex in zip(trajs, examples):
    tokens, mask = ex["tokens"], ex["loss_mask"]
    assert tokens.shape == mask.shape == (256,)
    assert tokens[mask == 1].tolist() == target_ids
    n_prompt = 1 + len(tokenizer.encode(trajectory_prompt(t)))
    assert not mask[:n_prompt].any() and mask[n_prompt:n_prompt + len(target_ids)].all()
    assert not mask[n_prompt + len(target_ids):].any()
    assert tokenizer.decode(tokens[:n_prompt].tolist()) == trajectory_prompt(t)
