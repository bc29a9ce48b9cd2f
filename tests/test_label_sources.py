"""PRM label sources beyond MC rollouts: PRM800K's human ratings and the arith task's exact line labels."""
import json
import pathlib
import random

import numpy as np
import pytest

from ttc_jax import shards
from ttc_jax.jobs import pipeline, train_verifier
from ttc_jax.tasks import registry, synthetic
from ttc_jax.tasks.loaders import prm800k
from ttc_jax.tasks.loaders.rows import DataFormatError
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import export_tiny_model, load_config_module
from ttc_jax.tokenization.steps import PARAGRAPH_STEPS
from ttc_jax.verify import data as vdata
from ttc_jax.verify import label_sources

PRM800K = pathlib.Path(__file__).parent / "data" / "tasks" / "prm800k"
QUESTION = "Start with 7. Add 5. Multiply by 3. What is the result?"
REFERENCE = ["7 + 5 = 12", "12 * 3 = 36", "The answer is 36."]


def _task(name="arith", **kw):
  return registry.make_task(registry.TaskSpec(name=name, **kw), data_dir="")


def _targets(example):
  """(target positions, targets) of one example."""
  positions = np.flatnonzero(example["value_mask"])
  return positions.tolist(), example["value_target"][positions].tolist()


# ------------------------------------------------------------------ PRM800K


@pytest.mark.parametrize("neutral", [1.0, 0.0])
def test_prm800k_fixture_gives_the_expected_step_labels(neutral):
  tok = load_tokenizer()
  task = _task()
  solutions = prm800k.labelled_solutions(PRM800K, "train")
  records, stats = label_sources.prm800k_records(solutions, task, tok, neutral=neutral)
  # One record per question, first-seen order: the phase 1 question's two trajectories, then phase 2's.
  assert [r["problem_id"] for r in records] == ["phase1_train.jsonl:1", "phase2_train.jsonl:1"]
  assert [[s["id"] for s in r["samples"]] for r in records] == [["phase1_train.jsonl:1", "phase2_train.jsonl:2"],
                                                                 ["phase2_train.jsonl:1"]]
  assert records[0]["prompt"] == "Question: What is $2 + 3$?\nSolution:\n" and records[0]["answer"] == "5"
  got = [(s["steps"], s["step_labels"]) for r in records for s in r["samples"]]
  assert got == [
      (["I add the numbers."], [neutral]),  # Neutral, then a human step with no rating: ends there.
      (["$2 + 3 = 5$."], [1.0]),  # The answer step is unrated: dropped.
      (["Divide top and bottom by 4.", r"That gives $\frac{1}{3}$."], [1.0, 0.0]),  # Ends at its -1.
  ]
  assert stats == {"trajectories": 3, "ends_unrated": 2, "ends_error": 1, "steps_dropped": 3,
                   "neutral_steps": 1, "steps_labelled": 4}

  examples, skipped = vdata.prm_examples(records, tok, seq_len=128)
  assert skipped == 0 and [_targets(e)[1] for e in examples] == [[neutral], [1.0], [1.0, 0.0]]
  for example in examples:  # Every target sits on the newline that ends its step.
    assert all(example["tokens"][p] == tok.newline_id for p in _targets(example)[0])


def _row(steps, finish="solution"):
  return {"question": {"problem": "What is $1 + 1$?", "ground_truth_answer": "2"},
          "label": {"steps": [{"completions": [{"text": t, "rating": r}], "chosen_completion": 0} for t, r in steps],
                    "finish_reason": finish}}


def test_prm800k_truncates_after_the_first_error_and_splits_on_the_task_delimiter(tmp_path):
  rows = [_row([("a", 1), ("b", 0), ("c", -1), ("d", 1), ("e", -1)]),  # Nothing after the first -1 is kept.
          _row([("a", 1), ("b", None), ("c", 1)]),  # An unrated step ends the trajectory.
          _row([("a", None), ("b", 1)]),  # Nothing labelled: no example.
          _row([("x\ny", 0), ("# Answer\n\n2", 1)])]  # Steps holding the delimiter.
  (tmp_path / "phase2_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  solutions = prm800k.labelled_solutions(tmp_path, "train")
  tok = load_tokenizer()

  records, stats = label_sources.prm800k_records(solutions, _task(), tok, neutral=0.0)
  assert [(s["steps"], s["step_labels"]) for s in records[0]["samples"]] == [
      (["a", "b", "c"], [1.0, 0.0, 0.0]),
      (["a"], [1.0]),
      ([], []),
      # "\n" steps (arith): each line is a step; a step's label sits at its last line, the lines before get none.
      (["x", "y", "# Answer", "2"], [None, 0.0, None, 1.0])]
  assert stats["ends_error"] == 1 and stats["ends_unrated"] == 2 and stats["ends_complete"] == 1
  assert stats["steps_dropped"] == 2 + 2 + 2 and stats["steps_labelled"] == 3 + 1 + 2

  # "\n\n" steps (the benchmark tasks): the answer step splits, the one-line-break step does not.
  assert label_sources.lay_out([("x\ny", 0.0), ("# Answer\n\n2", 1.0)], PARAGRAPH_STEPS) == (
      ["x\ny", "# Answer", "2"], [0.0, None, 1.0])
  task = _task("prm800k", path=str(tmp_path))
  records, _ = label_sources.prm800k_records(solutions, task, tok, neutral=0.0)
  assert records[0]["prompt"] == task.prompt(prm800k.load(tmp_path, "train")[0], tok)  # The task's own prompt.
  examples, skipped = vdata.prm_examples(records, tok, seq_len=1024, step_format=task.step_format)
  assert skipped == 0 and len(examples) == 3  # The trajectory with no labelled step gives none.
  positions, targets = _targets(examples[2])
  assert targets == [0.0, 1.0] and len(positions) == 2
  delimiter = tok.encode("\n\n")
  tokens = examples[2]["tokens"].tolist()
  assert all(tokens[p + 1 - len(delimiter):p + 1] == delimiter for p in positions)


# ------------------------------------------------------------------ exact arith labels


def test_reference_steps_recompute_every_generated_solution():
  rng = random.Random(0)
  for _ in range(500):
    problem = synthetic.sample_problem(rng, synthetic.TaskConfig())
    assert synthetic.reference_steps(problem.question) == synthetic.solution_steps(problem.solution)
  assert synthetic.reference_steps(QUESTION) == REFERENCE
  with pytest.raises(ValueError, match="not a question of the built-in arithmetic task"):
    synthetic.reference_steps("What is $2 + 3$?")


@pytest.mark.parametrize("steps, labels", [
    (REFERENCE, [1.0, 1.0, 1.0]),  # Right.
    (["7 + 5 = 12", "12 * 3 = 35", "The answer is 35."], [1.0, 0.0, 0.0]),  # Wrong at line 2.
    (["7 + 5 = 12", "12 * 3 = 35", "The answer is 36."], [1.0, 0.0, 0.0]),  # Right again after a wrong line: 0.
    (["7 + 5 = 12", "12 * 3 = 36", "The answer is 37."], [1.0, 1.0, 0.0]),  # Wrong answer only.
    (REFERENCE + ["The answer is 36."], [1.0, 1.0, 1.0, 0.0]),  # Past the reference's end.
    (["7 + 5 = 12"], [1.0]),  # A right prefix (cut at the length limit).
    ([], []),
])
def test_exact_line_labels(steps, labels):
  assert label_sources.exact_step_labels(QUESTION, steps) == labels


def test_exact_records_label_every_sample_and_reject_other_tasks():
  record = {"problem_id": "train-000001", "question": QUESTION, "answer": "36", "prompt": "P\n",
            "samples": [{"steps": REFERENCE, "correct": True}, {"steps": REFERENCE[:1] + ["x"], "correct": False}]}
  records, stats = label_sources.exact_records([record])
  assert [s["step_labels"] for s in records[0]["samples"]] == [[1.0, 1.0, 1.0], [1.0, 0.0]]
  assert records[0]["samples"][0]["correct"] and "step_labels" not in record["samples"][0]  # A copy.
  assert stats == {"steps_labelled": 5, "steps_right": 4}
  with pytest.raises(ValueError, match=r"labels='exact' needs samples of the built-in arith task; problem 'm1'"):
    label_sources.exact_records([{**record, "problem_id": "m1", "question": "What is $2 + 3$?"}])


# ------------------------------------------------------------------ the job


def _config(labels, policy, **verifier):
  config = load_config_module("prm").get_config("smoke")
  config.verifier.labels = labels
  config.verifier.policy = str(policy)
  config.verifier.update(verifier)
  config.train.update(steps=4, checkpoint_every=4, log_every=2)
  return config


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
  out = tmp_path_factory.mktemp("policy") / "export"
  export_tiny_model(str(out), load_tokenizer(), max_len=128)
  return out


def test_train_verifier_on_prm800k_labels(tmp_path, policy):
  # The arith task's short prompt keeps this fast; the benchmark layout is tested above.
  config = _config("prm800k", policy, data=str(PRM800K), stage="prm800k", prm800k_neutral=0.0)
  train_verifier.run(config, str(tmp_path))
  summary = json.loads((tmp_path / "prm800k" / "train_summary.json").read_text())
  # Trains on the phase 1 question (2 trajectories of 1 labelled step), holds out the phase 2 one.
  assert summary["labels"] == "prm800k" and summary["train_problems"] == 1 and summary["heldout_problems"] == 1
  assert summary["examples"] == 2 and summary["targets"] == 2 and summary["mean_target"] == 0.5  # Neutral -> 0.
  assert summary["label_stats"]["trajectories"] == 3 and summary["skipped"] == 0
  evaluation = json.loads((tmp_path / "prm800k" / "verifier_eval.json").read_text())
  assert evaluation["labels"] == "prm800k" and evaluation["targets"] == 2 and np.isfinite(evaluation["bce"])


def test_train_verifier_on_exact_labels(tmp_path, policy):
  samples = [["7 + 5 = 12", "12 * 3 = 36", "The answer is 36."], ["7 + 5 = 13", "13 * 3 = 39", "The answer is 39."]]
  records = [{"problem_id": f"train-{i:06d}", "question": QUESTION, "answer": "36",
              "prompt": synthetic.prompt_text(synthetic.Problem("", QUESTION, "", "36", 2, 9, "+*")),
              "samples": [{"steps": s, "correct": s[-1] == REFERENCE[-1]} for s in samples]} for i in range(10)]
  shards.run_sharded(str(tmp_path / "samples" / "train"), 2, lambda i: records[i * 5:(i + 1) * 5], spec={})
  train_verifier.run(_config("exact", policy, stage="prm_exact"), str(tmp_path))
  summary = json.loads((tmp_path / "prm_exact" / "train_summary.json").read_text())
  assert summary["labels"] == "exact" and summary["data"].endswith("samples/train")
  assert summary["examples"] == 9 * 2 and summary["targets"] == 9 * 6 and summary["mean_target"] == 0.5
  assert summary["label_stats"] == {"steps_labelled": 60, "steps_right": 30}

  config = _config("exact", policy)
  config.task.update(name="math500", path="/nowhere/test.jsonl")
  with pytest.raises(ValueError, match=r"labels='exact' .* built-in arith task's reference computation"):
    train_verifier.run(config, str(tmp_path))


def test_label_source_config_errors(tmp_path, policy):
  with pytest.raises(ValueError, match=r"verifier.labels='mc' must be one of"):
    train_verifier.run(_config("mc", policy), str(tmp_path))
  config = load_config_module("orm").get_config("smoke")
  config.verifier.labels = "exact"
  with pytest.raises(ValueError, match=r"labels PRM steps; verifier.kind='orm'"):
    train_verifier.run(config, str(tmp_path))
  with pytest.raises(ValueError, match=r"verifier.data: set it to PRM800K's"):
    train_verifier.run(_config("prm800k", policy), str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"verifier.data='/nowhere'.*github.com/openai/prm800k"):
    train_verifier.run(_config("prm800k", policy, data="/nowhere"), str(tmp_path))
  bad = tmp_path / "phase1_train.jsonl"
  bad.write_text(json.dumps(_row([("a", 2)])) + "\n")
  with pytest.raises(DataFormatError, match=r"phase1_train.jsonl:1: field 'label.steps\[0\].completions\[0\].rating'"):
    train_verifier.run(_config("prm800k", policy, data=str(bad)), str(tmp_path))


def test_pipeline_keeps_rollout_labels_and_gives_the_prm_its_task():
  config = load_config_module("pipeline").get_config("smoke")
  assert config.stages.prm.verifier.labels == "rollouts"
  stages = pipeline.stage_configs(config)
  assert stages["prm"].task.to_dict() == config.task.to_dict()
