"""The countdown task: generation, distinct-solution counts, grader, dead ends, the Task and its data."""
import collections
import itertools
import random

import pytest

from ttc_jax.jobs import common
from ttc_jax.tasks import countdown as cd
from ttc_jax.tasks import registry, synthetic
from ttc_jax.tasks.countdown_task import CountdownTask
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.tokenization.steps import LINE_STEPS

P = cd.Puzzle((3, 7, 4, 9), 17)  # The module docstring's example.


def _naive_solutions(puzzle: cd.Puzzle) -> set[str]:
  """Every correct solution text with lines in canonical form (larger operand first), by brute force
  over positions: no memo, no value dedup, the rules spelled out again."""
  out = set()

  def walk(pool, lines):  # pool: [(value, is_result)]
    results = [v for v, is_result in pool if is_result]
    if lines and results == [puzzle.target] and (len(pool) == 1 or not puzzle.use_all):
      out.add("\n".join(lines + [synthetic.answer_line(str(puzzle.target))]))
    for i, j in itertools.permutations(range(len(pool)), 2):
      a, b = pool[i][0], pool[j][0]
      for op in puzzle.ops:
        c = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if a % b == 0 else 0}[op]
        if a >= b and c > 0:
          rest = [x for n, x in enumerate(pool) if n not in (i, j)]
          walk(rest + [(c, True)], lines + [f"{a} {op} {b} = {c}"])

  walk([(x, False) for x in puzzle.numbers], [])
  return out


def test_first_problem_is_pinned():
  # Pins the generator: a change here silently changes every countdown dataset.
  [p] = cd.generate_splits(cd.CountdownConfig(), {"train": 1})["train"]
  assert p.question == "Start with 7, 5, 1, 4, 6. Use each once with + - * to make 11."
  assert p.solution == "7 - 5 = 2\n4 - 1 = 3\n6 + 2 = 8\n8 + 3 = 11\nThe answer is 11."
  assert p.generating_solution == "6 - 1 = 5\n7 - 5 = 2\n4 + 2 = 6\n6 + 5 = 11\nThe answer is 11."
  assert (p.id, p.answer, p.numbers, p.target, p.num_solutions) == (
      "train-000000", "11 from 1,4,5,6,7", (7, 5, 1, 4, 6), 11, 334)


@pytest.mark.parametrize("cfg", [cd.CountdownConfig(max_numbers=4, seed=1),
                                 cd.CountdownConfig(min_numbers=2, max_numbers=4, ops="+-*/", use_all=False, seed=2)])
def test_generated_problems_are_solvable_and_counted_exactly(cfg):
  problems = cd.generate_splits(cfg, {"train": 60})["train"]
  for p in problems:
    assert cfg.min_numbers <= len(p.numbers) <= cfg.max_numbers and 1 <= p.target <= cfg.max_target
    assert p.question == cd.question_text(p.numbers, p.target, cfg.ops, cfg.use_all)
    assert cd.grade(p.puzzle, p.generating_solution) and cd.grade(p.puzzle, p.solution)
    assert p.num_solutions == len(_naive_solutions(p.puzzle)) >= 1
    assert p.solution in _naive_solutions(p.puzzle)
    assert synthetic.solution_steps(p.solution)[-1] == f"The answer is {p.target}."
  assert len({p.num_solutions for p in problems}) > 5  # A spread, not one count.


def test_distinct_solution_counts_on_fixed_puzzles():
  assert cd.count_solutions(P) == len(_naive_solutions(P)) == 18
  assert cd.count_solutions(cd.Puzzle((2, 3), 5)) == 1  # "3 + 2 = 5" only.
  assert cd.count_solutions(cd.Puzzle((2, 3), 4)) == 0
  # Repeated inputs do not double texts: "2 + 2 = 4\n4 + 3 = 7", "2 * 2 = 4\n4 + 3 = 7", "3 + 2 = 5\n5 + 2 = 7".
  assert cd.count_solutions(cd.Puzzle((2, 3, 2), 7)) == len(_naive_solutions(cd.Puzzle((2, 3, 2), 7))) == 3
  subset = cd.Puzzle((2, 3, 4), 6, use_all=False)
  # "4 + 2 = 6", "3 * 2 = 6", and "4 - 2 = 2\n3 * 2 = 6" (its second 2 made as 4 - 2).
  assert cd.count_solutions(subset) == len(_naive_solutions(subset)) == 3


def test_counts_are_cheap_and_spread_with_the_number_count():
  medians = {}
  for n in (3, 4, 5):
    problems = cd.generate_splits(cd.CountdownConfig(min_numbers=n, max_numbers=n, seed=n), {"train": 50})["train"]
    counts = sorted(p.num_solutions for p in problems)
    medians[n] = counts[len(counts) // 2]
  assert medians[3] < medians[4] < medians[5]


def test_difficulty_filter_on_solution_counts():
  cfg = cd.CountdownConfig(max_numbers=4, min_solutions=2, max_solutions=3)
  assert all(2 <= p.num_solutions <= 3 for p in cd.generate_splits(cfg, {"train": 20})["train"])


def test_reference_solutions_are_drawn_among_the_distinct_ones():
  rng = random.Random(0)
  draws = collections.Counter(cd.sample_solution(P, rng) for _ in range(900))
  assert set(draws) == _naive_solutions(P)  # Every one of the 18 is drawn, nothing else ...
  assert max(draws.values()) < 2.5 * min(draws.values())  # ... about uniformly (50 each expected).


def test_grader_accepts_different_correct_solutions():
  grader = cd.CountdownGrader()
  first = "9 + 7 = 16\n16 + 4 = 20\n20 - 3 = 17\nThe answer is 17."
  second = "4 - 3 = 1\n9 + 7 = 16\n16 + 1 = 17\nThe answer is 17."
  commuted = "7 + 9 = 16\n4 + 16 = 20\n20 - 3 = 17\nThe answer is 17.\nignored after the answer"
  for text in (first, second, commuted):
    assert grader.is_correct(text, P.reference), text
    assert grader.extract_answer(text) == P.reference == "17 from 3,4,7,9"
  assert registry.get_grader("countdown").is_correct(first, "17 from 3,4,7,9")


@pytest.mark.parametrize("text, why", [
    ("9 + 7 = 15\n15 + 4 = 19\n19 - 2 = 17\nThe answer is 17.", "wrong arithmetic"),
    ("9 + 7 = 16\n16 + 4 = 20\n20 - 3 = 17\n17 * 1 = 17\nThe answer is 17.", "number not in the puzzle"),
    ("9 + 9 = 18\n18 + 3 = 21\n21 - 4 = 17\nThe answer is 17.", "input used twice"),
    ("9 + 7 = 16\n16 + 4 = 20\n20 + 16 = 36\nThe answer is 36.", "result used twice"),
    ("9 + 4 = 13\n13 + 7 = 20\nThe answer is 20.", "input 3 unused"),
    ("9 + 7 = 16\n4 - 3 = 1\nThe answer is 16.", "result 1 never used"),
    ("9 + 7 = 16\n16 + 4 = 20\n20 - 3 = 17\nThe answer is 18.", "answer line disagrees"),
    ("9 + 7 = 16\n16 + 4 = 20\n20 + 3 = 23\nThe answer is 23.", "wrong final value"),
    ("9 + 7 = 16\n16 + 4 = 20\n20 - 3 = 17", "no answer line"),
    ("The answer is 17.", "no operation"),
    ("3 - 4 = -1\n9 + 7 = 16\n16 + 1 = 17\nThe answer is 17.", "negative result"),
    ("9 - 7 = 2\n4 / 2 = 2\n3 * 2 = 6\nThe answer is 6.", "division not allowed"),
])
def test_grader_rejects(text, why):
  assert not cd.CountdownGrader().is_correct(text, P.reference), why
  assert not cd.grade(P, text), why


def test_division_and_subset_rules():
  div = cd.CountdownGrader(ops="+-*/")
  assert div.is_correct("9 - 7 = 2\n4 / 2 = 2\n3 * 2 = 6\nThe answer is 6.", "6 from 3,4,7,9")
  assert not div.is_correct("7 / 2 = 3\n9 + 4 = 13\n13 - 3 = 10\n10 * 1 = 10\nThe answer is 10.", "10 from 3,4,7,9")
  subset = cd.CountdownGrader(use_all=False)
  assert subset.is_correct("9 + 7 = 16\n16 + 1 = 17\nThe answer is 17.", "17 from 1,3,7,9")
  assert not subset.is_correct("9 + 7 = 16\n3 + 1 = 4\nThe answer is 16.", "16 from 1,3,7,9")  # 4 left over.
  assert not cd.CountdownGrader().is_correct("9 + 7 = 16\n16 + 1 = 17\nThe answer is 17.", "17 from 1,3,7,9")
  assert not subset.is_correct("9 + 7 = 16\nThe answer is 16.", "not a reference")  # Never raises.


def test_line_checks_and_dead_ends():
  assert cd.line_correct(P, [], "9 + 7 = 16") and cd.line_correct(P, ["9 + 7 = 16"], "16 + 4 = 20")
  assert not cd.line_correct(P, [], "9 + 7 = 17")  # Arithmetic.
  assert not cd.line_correct(P, [], "9 + 8 = 17")  # 8 is not available.
  assert not cd.line_correct(P, ["9 + 7 = 16"], "9 + 4 = 13")  # 9 is used up.
  assert not cd.line_correct(P, [], "9 / 3 = 3")  # "/" is not among the ops.
  assert cd.prefix_solvable(P, []) and cd.prefix_solvable(P, ["9 + 7 = 16"])
  # Legal lines, yet nothing reaches 17 from what is left: dead ends.
  assert not cd.prefix_solvable(P, ["9 * 7 = 63"])  # 63, 3, 4: at most 63 * 12, at least 63 - 12 = 51.
  assert not cd.prefix_solvable(P, ["9 + 7 = 16", "16 * 4 = 64"])
  assert not cd.prefix_solvable(P, ["9 + 7 = 17"])  # A wrong line is no prefix of a solution.
  assert cd.step_labels(P, ["9 + 7 = 16", "16 * 4 = 64", "64 - 3 = 61", "The answer is 61."]) == [
      True, False, False, False]
  assert cd.step_labels(P, synthetic.solution_steps("4 - 3 = 1\n9 + 7 = 16\n16 + 1 = 17\nThe answer is 17.")) == [
      True, True, True, True]
  sub = cd.Puzzle((3, 7, 4, 9), 63, use_all=False)
  assert cd.prefix_solvable(sub, ["9 * 7 = 63"]) and not cd.prefix_solvable(P, ["9 * 7 = 63"])


def test_dead_ends_agree_with_brute_force():
  rng = random.Random(1)
  problems = cd.generate_splits(cd.CountdownConfig(max_numbers=4, seed=5), {"train": 15})["train"]
  for p in problems:
    solutions = _naive_solutions(p.puzzle)
    prefixes = {tuple(s.split("\n")[:k]) for s in solutions for k in range(len(s.split("\n")))}
    for _ in range(20):  # Random legal prefixes: solvable iff some canonical solution continues them.
      pool, lines = list(p.numbers), []
      while len(pool) > 1 and rng.random() < 0.8:
        a, b = sorted(rng.sample(pool, 2), reverse=True)
        op = rng.choice([o for o in p.ops if cd.apply_op(a, o, b)])
        c = cd.apply_op(a, op, b)
        pool.remove(a), pool.remove(b), pool.append(c)
        lines.append(f"{a} {op} {b} = {c}")
      assert cd.prefix_solvable(p.puzzle, lines) == (tuple(lines) in prefixes), (p.question, lines)


def test_config_errors_name_the_field():
  with pytest.raises(ValueError, match="min_numbers"):
    cd.CountdownConfig(min_numbers=1)
  with pytest.raises(ValueError, match="ops"):
    cd.CountdownConfig(ops="+^")
  with pytest.raises(ValueError, match="min_solutions"):
    cd.CountdownConfig(min_solutions=5, max_solutions=2)


def test_countdown_through_the_task_interface(tmp_path):
  sizes = {"train": 30, "validation": 5, "test": 5}
  spec, generator = common.parse_task({"name": "countdown", "train_size": 30, "validation_size": 5, "test_size": 5,
                                       "generator": {"max_numbers": 4, "seed": 3}})
  assert generator == cd.CountdownConfig(max_numbers=4, seed=3)
  task = registry.make_task(spec, str(tmp_path), generator)
  assert isinstance(task, CountdownTask) and task.step_format == LINE_STEPS
  assert task.grader == cd.CountdownGrader("+-*", True)
  tok = load_tokenizer()
  expected = cd.generate_splits(generator, sizes)
  for split in sizes:
    got = task.problems(split)
    assert [(p.id, p.question, p.answer, p.solution) for p in got] == [
        (p.id, p.question, p.answer, p.solution) for p in expected[split]]
    assert [p.metadata for p in got] == [{**p.metadata, "source": "countdown"} for p in expected[split]]
    for p in got:
      assert task.prompt(p, tok) == synthetic.prompt_text(p)
      assert task.grader.is_correct(p.solution, p.answer)
      assert cd.Puzzle.from_metadata(p.metadata).reference == p.answer  # Records rebuild the puzzle.
      assert tok.decode(tok.encode(p.solution)) == p.solution  # The shipped vocabulary spells it.
  with pytest.raises(ValueError, match="task.generator.*did you mean"):
    common.parse_task({"name": "countdown", "generator": {"max_number": 9, "max_numbrs": 4}})
  with pytest.raises(ValueError, match="countdown task writes one step per line"):
    registry.TaskSpec(name="countdown", step_delimiter="\n\n")


def test_policy_smoke_on_countdown(tmp_path):
  """End to end (about a minute on 2 shared cores): generate the data, train a tiny policy, grade its samples."""
  import json
  import os
  import pathlib
  import subprocess
  import sys
  repo = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  result = subprocess.run(
      [sys.executable, "-m", "ttc_jax.main", "--config=configs/policy.py:smoke", f"--workdir={tmp_path}",
       "--config.task.name=countdown", "--config.task.train_size=64", "--config.train.steps=4",
       "--config.train.checkpoint_every=4", "--config.train.log_every=2", "--config.eval.num_problems=4"],
      cwd=repo, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-5000:]
  assert (tmp_path / "data" / "ttc_countdown").is_dir()
  evaluation = json.loads((tmp_path / "policy" / "eval.json").read_text())
  assert evaluation["task"] == "countdown" and evaluation["summary"]["num_problems"] == 4
  assert set(evaluation["pass1_by_num_numbers"]) <= {"3", "4", "5"} and "pass1_by_num_solutions" in evaluation
  assert "pass1_by_generating_solution" not in evaluation  # Not a difficulty knob.
  assert "reference " in result.stderr and " from " in result.stderr  # Graded against "target from inputs".


def test_task_report_prints_solution_counts_by_number_count():
  from ttc_jax.tasks import task_report
  text = task_report.countdown_report(cd.CountdownConfig(max_numbers=4), 30)
  assert "numbers=  3" in text and "numbers=  4" in text and "numbers=all n=  30" in text
  assert "dead-end first lines" in text and "p50" in text
