"""Built-in task: step-by-step integer arithmetic chains with exact answers.

A problem is a start value followed by a chain of operations:

  question: "Start with 7. Add 5. Multiply by 3. Subtract 4. What is the result?"
  solution: "7 + 5 = 12\\n12 * 3 = 36\\n36 - 4 = 32\\nThe answer is 32."

One solution line per operation, so a newline is a step boundary (what the PRM scores),
and the last line is always `The answer is N.` (what the grader parses). Every
intermediate value stays in [1, max_value]: no negatives, no zero, at most
len(str(max_value)) digits, which keeps the text regular and the sequences short.

Difficulty knobs are sampled per problem (number of steps, largest operand, allowed
operations) and stored on the `Problem`, so analysis can relate pass@1 to them. The
default mixture spans one-step single-digit additions (meant to be mostly solved by a
~1-3M parameter model) to five-step chains with two-digit multiplications (rarely).

Pure Python (no numpy/jax): generation is deterministic across machines and versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Mapping, Sequence

# Symbol in the solution and verb in the question for each operation.
OPS = ("+", "-", "*")
_VERB = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}."}
ANSWER_PREFIX = "The answer is "
ANSWER_SUFFIX = "."
SPLITS = ("train", "validation", "test")
# Fraction of the hash space owned by each split. A question's split is a pure function
# of its text, so splits stay disjoint across seeds, sizes and rebuilds.
_SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """Difficulty mixture of the arithmetic task; every problem samples its own knobs.

  Attributes:
    min_steps, max_steps: number of operations, sampled uniformly in [min, max].
    operand_maxes: candidates for the largest operand (and start value) of a problem.
    operand_max_weights: sampling weights of `operand_maxes`.
    op_sets: candidate sets of allowed operations, as strings over "+-*".
    op_set_weights: sampling weights of `op_sets`.
    max_value: bound on every intermediate value (values stay in [1, max_value]).
    seed: seed of the generator; same config -> same problems.
  """

  min_steps: int = 1
  max_steps: int = 5
  operand_maxes: tuple[int, ...] = (9, 99)
  operand_max_weights: tuple[float, ...] = (0.5, 0.5)
  op_sets: tuple[str, ...] = ("+", "+-", "+-*")
  op_set_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
  max_value: int = 999
  seed: int = 0

  def __post_init__(self):
    if not 1 <= self.min_steps <= self.max_steps:
      raise ValueError(f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
    if len(self.operand_maxes) != len(self.operand_max_weights) or not self.operand_maxes:
      raise ValueError("operand_maxes and operand_max_weights must be non-empty, same length")
    if len(self.op_sets) != len(self.op_set_weights) or not self.op_sets:
      raise ValueError("op_sets and op_set_weights must be non-empty, same length")
    if any(m < 2 or m >= self.max_value for m in self.operand_maxes):
      raise ValueError(f"operand_maxes must lie in [2, max_value), got {self.operand_maxes}")
    for ops in self.op_sets:
      if not ops or set(ops) - set(OPS):
        raise ValueError(f"op set {ops!r} must be a non-empty string over {''.join(OPS)!r}")


@dataclasses.dataclass(frozen=True)
class Problem:
  """One problem and its reference solution.

  Attributes:
    id: unique within a generated split, e.g. "test-000042".
    question: one line, no newline.
    solution: step lines then the answer line, joined by "\\n", no trailing newline.
    answer: the final value as a decimal string.
    num_steps: number of operations (= step lines before the answer line).
    max_operand: the operand bound this problem was sampled with (9, 99, ...).
    ops: operations actually used, in canonical "+-*" order, e.g. "+*".
  """

  id: str
  question: str
  solution: str
  answer: str
  num_steps: int
  max_operand: int
  ops: str

  @property
  def metadata(self) -> dict:
    """The difficulty knobs as task metadata (`tasks.problem.Problem.metadata`)."""
    return {"num_steps": self.num_steps, "max_operand": self.max_operand, "ops": self.ops}


def prompt_text(problem) -> str:
  """Text the policy is conditioned on; the solution follows it directly (any problem with a question)."""
  return f"Question: {problem.question}\nSolution:\n"


def answer_line(answer: str) -> str:
  """The one fixed format of the final solution line."""
  return f"{ANSWER_PREFIX}{answer}{ANSWER_SUFFIX}"


def solution_steps(solution: str) -> list[str]:
  """Splits a solution into its lines (steps; the answer line is the last one)."""
  return [line for line in solution.split("\n") if line]


def _step(value: int, op: str, operand: int) -> tuple[str, int]:
  """One operation: its solution line and the value after it."""
  result = {"+": value + operand, "-": value - operand, "*": value * operand}[op]
  return f"{value} {op} {operand} = {result}", result


# The question as `sample_problem` writes it: the start value, then one verb per operation.
_OP_OF_VERB = {verb.removesuffix(" {}."): op for op, verb in _VERB.items()}  # "Multiply by" -> "*"
_VERBS = "|".join(map(re.escape, _OP_OF_VERB))
_QUESTION = re.compile(rf"Start with (\d+)\.((?: (?:{_VERBS}) \d+\.)*) What is the result\?")
_OPERATION = re.compile(rf" ({_VERBS}) (\d+)\.")


def reference_steps(question: str) -> list[str]:
  """The reference solution's lines (step lines, then the answer line) recomputed from the question.

  The question alone fixes the computation, so no generated data is needed; for a generated
  problem this equals `solution_steps(problem.solution)`. Raises ValueError if `question` is not
  one this module writes.
  """
  match = _QUESTION.fullmatch(question)
  if match is None:
    raise ValueError(f"not a question of the built-in arithmetic task: {question!r:.120}")
  value, lines = int(match.group(1)), []
  for verb, operand in _OPERATION.findall(match.group(2)):
    line, value = _step(value, _OP_OF_VERB[verb], int(operand))
    lines.append(line)
  return lines + [answer_line(str(value))]


def _uniform_int(rng: random.Random, lo: int, hi: int) -> int:
  """Integer uniform in [lo, hi]. Built on rng.random(), whose stream Python guarantees
  across versions (randrange/choices carry no such guarantee)."""
  return lo + min(int(rng.random() * (hi - lo + 1)), hi - lo)


def _weighted_choice(rng: random.Random, items: Sequence, weights: Sequence[float]):
  u = rng.random() * sum(weights)
  for item, w in zip(items, weights):
    u -= w
    if u < 0:
      return item
  return items[-1]


def _operand_range(op: str, value: int, max_operand: int, max_value: int) -> tuple[int, int]:
  """Operands that keep `value op operand` in [1, max_value]; empty if lo > hi."""
  if op == "+":
    return 1, min(max_operand, max_value - value)
  if op == "-":
    return 1, min(max_operand, value - 1)
  return 2, min(max_operand, max_value // value)  # "*": 1 would be a no-op


def _has_operand(op: str, value: int, max_operand: int, max_value: int) -> bool:
  lo, hi = _operand_range(op, value, max_operand, max_value)
  return lo <= hi


def sample_problem(rng: random.Random, cfg: TaskConfig, problem_id: str = "") -> Problem:
  """Draws one problem from `rng` (a pure function of the rng state and `cfg`)."""
  num_steps = _uniform_int(rng, cfg.min_steps, cfg.max_steps)
  max_operand = _weighted_choice(rng, cfg.operand_maxes, cfg.operand_max_weights)
  op_set = _weighted_choice(rng, cfg.op_sets, cfg.op_set_weights)
  value = _uniform_int(rng, 1, max_operand)
  verbs, lines, used = [f"Start with {value}."], [], set()
  for _ in range(num_steps):
    valid = [op for op in op_set if _has_operand(op, value, max_operand, cfg.max_value)]
    if not valid:
      # E.g. only "+" allowed and value == max_value: step outside the op set rather
      # than fail; `ops` records what was used. "+" or "-" always fits.
      valid = [op for op in OPS if _has_operand(op, value, max_operand, cfg.max_value)]
    op = valid[_uniform_int(rng, 0, len(valid) - 1)]
    operand = _uniform_int(rng, *_operand_range(op, value, max_operand, cfg.max_value))
    line, result = _step(value, op, operand)
    verbs.append(_VERB[op].format(operand))
    lines.append(line)
    used.add(op)
    value = result
  answer = str(value)
  return Problem(
      id=problem_id,
      question=" ".join(verbs) + " What is the result?",
      solution="\n".join(lines + [answer_line(answer)]),
      answer=answer,
      num_steps=num_steps,
      max_operand=max_operand,
      ops="".join(op for op in OPS if op in used),
  )


def split_of(question: str) -> str:
  """The split that owns a question, by a hash of its text."""
  u = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big") / 2.0**64
  for split in SPLITS:
    u -= _SPLIT_FRACTIONS[split]
    if u < 0:
      return split
  return SPLITS[-1]


def generate_splits(
    cfg: TaskConfig, sizes: Mapping[str, int]
) -> dict[str, list[Problem]]:
  """Generates unique problems per split, disjoint across splits.

  Draws problems from one seeded stream and files each under `split_of(question)`
  until every requested split is full. Questions are unique within and across splits,
  so a test question never appears in training. Uniqueness saturates the easiest
  problem types (there are only ~100 one-step single-digit questions), so large splits
  hold somewhat fewer easy problems than the mixture weights say.

  Args:
    cfg: the task configuration (seed included).
    sizes: number of problems per split, keys among "train", "validation", "test".

  Returns:
    {split: [Problem, ...]} in generation order, ids "{split}-{index:06d}".
  """
  return unique_splits(lambda rng: sample_problem(rng, cfg), cfg.seed, sizes, "TaskConfig")


def unique_splits(sample, seed: int, sizes: Mapping[str, int], what: str) -> dict[str, list]:
  """Problems from `sample(rng)` (one seeded stream) filed under `split_of(question)` until every split of
  `sizes` is full; questions unique within and across splits, ids "{split}-{index:06d}". `what`: the config
  named when its problem space is too small."""
  unknown = set(sizes) - set(SPLITS)
  if unknown:
    raise ValueError(f"unknown splits {sorted(unknown)}; valid: {SPLITS}")
  rng = random.Random(seed)
  out = {split: [] for split in sizes}
  seen = set()
  max_draws = 50 * sum(sizes.values()) + 10_000
  for _ in range(max_draws):
    if all(len(out[s]) >= n for s, n in sizes.items()):
      break
    problem = sample(rng)
    split = split_of(problem.question)
    if split not in out or len(out[split]) >= sizes[split] or problem.question in seen:
      continue
    seen.add(problem.question)
    out[split].append(dataclasses.replace(problem, id=f"{split}-{len(out[split]):06d}"))
  short = {s: len(out[s]) for s, n in sizes.items() if len(out[s]) < n}
  if short:
    raise ValueError(f"could only generate {short} unique problems of {dict(sizes)}; "
                     f"the {what}'s problem space is too small")
  return out
