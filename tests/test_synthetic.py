"""The synthetic arithmetic task: format, arithmetic, determinism, splits, difficulty."""
import collections
import re

import pytest

from ttc_jax.tasks import synthetic

_STEP = re.compile(r"^(\d+) ([-+*]) (\d+) = (\d+)$")
_VERB = re.compile(r"(Add|Subtract|Multiply by) (\d+)\.")


@pytest.fixture(scope="module")
def problems():
  return synthetic.generate_splits(synthetic.TaskConfig(), {"train": 3000})["train"]


def _apply(a, op, b):
  return {"+": a + b, "-": a - b, "*": a * b}[op]


def test_first_problem_is_pinned():
  # Pins the generator: a change here silently changes every dataset and tokenizer.
  [p] = synthetic.generate_splits(synthetic.TaskConfig(), {"train": 1})["train"]
  assert p.question == ("Start with 26. Subtract 11. Subtract 5. Add 58. Subtract 34. "
                        "Add 75. What is the result?")
  assert p.solution == ("26 - 11 = 15\n15 - 5 = 10\n10 + 58 = 68\n68 - 34 = 34\n"
                        "34 + 75 = 109\nThe answer is 109.")
  assert (p.id, p.answer, p.num_steps, p.max_operand, p.ops) == (
      "train-000000", "109", 5, 99, "+-")


def test_solution_is_correct_step_by_step(problems):
  cfg = synthetic.TaskConfig()
  for p in problems:
    steps = synthetic.solution_steps(p.solution)
    assert len(steps) == p.num_steps + 1
    assert steps[-1] == synthetic.answer_line(p.answer) == f"The answer is {p.answer}."
    start = int(re.match(r"Start with (\d+)\.", p.question).group(1))
    verbs = _VERB.findall(p.question)
    assert len(verbs) == p.num_steps and p.question.endswith(" What is the result?")
    value, used = start, set()
    for line, (verb, operand) in zip(steps[:-1], verbs):
      a, op, b, c = _STEP.match(line).groups()
      assert int(a) == value and int(b) == int(operand)
      assert op == {"Add": "+", "Subtract": "-", "Multiply by": "*"}[verb]
      assert int(c) == _apply(value, op, int(b))
      assert 1 <= int(c) <= cfg.max_value and int(b) <= p.max_operand
      value, used = int(c), used | {op}
    assert str(value) == p.answer
    assert p.ops == "".join(op for op in "+-*" if op in used)
    assert "\n" not in p.question and not p.solution.endswith("\n")


def test_prompt_and_steps():
  p = synthetic.generate_splits(synthetic.TaskConfig(), {"test": 1})["test"][0]
  assert synthetic.prompt_text(p) == f"Question: {p.question}\nSolution:\n"
  assert synthetic.solution_steps("1 + 2 = 3\nThe answer is 3.\n") == [
      "1 + 2 = 3", "The answer is 3."]


def test_deterministic_and_seeded():
  sizes = {"train": 200, "validation": 20, "test": 20}
  a = synthetic.generate_splits(synthetic.TaskConfig(seed=3), sizes)
  assert a == synthetic.generate_splits(synthetic.TaskConfig(seed=3), sizes)
  b = synthetic.generate_splits(synthetic.TaskConfig(seed=4), sizes)
  assert [p.question for p in a["train"]] != [p.question for p in b["train"]]


def test_splits_disjoint_unique_and_sized():
  sizes = {"train": 2000, "validation": 200, "test": 200}
  splits = synthetic.generate_splits(synthetic.TaskConfig(), sizes)
  questions = {s: {p.question for p in ps} for s, ps in splits.items()}
  for s, ps in splits.items():
    assert len(ps) == sizes[s] == len(questions[s])  # exact size, no duplicates
    assert [p.id for p in ps] == [f"{s}-{i:06d}" for i in range(sizes[s])]
    assert all(synthetic.split_of(p.question) == s for p in ps)
  assert not questions["train"] & questions["test"]
  assert not questions["train"] & questions["validation"]
  assert not questions["validation"] & questions["test"]
  # The owner of a question does not depend on the seed, so splits of different
  # builds are disjoint too.
  other = synthetic.generate_splits(synthetic.TaskConfig(seed=1), {"test": 200})["test"]
  assert not {p.question for p in other} & questions["train"]


def test_difficulty_knobs_cover_easy_and_hard(problems):
  by_steps = collections.Counter(p.num_steps for p in problems)
  assert set(by_steps) == {1, 2, 3, 4, 5}
  assert {p.max_operand for p in problems} == {9, 99}
  easy = [p for p in problems if p.num_steps == 1 and p.ops == "+" and p.max_operand == 9]
  hard = [p for p in problems if p.num_steps == 5 and "*" in p.ops and p.max_operand == 99]
  assert len(easy) > 10 and len(hard) > 50


def test_config_knobs_restrict_problems():
  cfg = synthetic.TaskConfig(min_steps=2, max_steps=2, operand_maxes=(5,),
                             operand_max_weights=(1.0,), op_sets=("*",),
                             op_set_weights=(1.0,), max_value=50)
  ps = synthetic.generate_splits(cfg, {"train": 50})["train"]
  assert all(p.num_steps == 2 and p.max_operand == 5 for p in ps)
  # "*" alone can run out of room under max_value; the generator then steps outside
  # the op set rather than fail, and `ops` says so.
  assert all(set(p.ops) <= set("+-*") for p in ps)
  assert all(int(p.answer) <= 50 for p in ps)


def test_invalid_config_and_sizes():
  with pytest.raises(ValueError, match="min_steps"):
    synthetic.TaskConfig(min_steps=3, max_steps=2)
  with pytest.raises(ValueError, match="op set"):
    synthetic.TaskConfig(op_sets=("+/",), op_set_weights=(1.0,))
  with pytest.raises(ValueError, match="unknown splits"):
    synthetic.generate_splits(synthetic.TaskConfig(), {"dev": 1})
  tiny = synthetic.TaskConfig(min_steps=1, max_steps=1, operand_maxes=(2,),
                              operand_max_weights=(1.0,), op_sets=("+",),
                              op_set_weights=(1.0,), max_value=10)
  with pytest.raises(ValueError, match="problem space is too small"):
    synthetic.generate_splits(tiny, {"train": 100})
