"""Built-in task "countdown": reach a target from a few numbers; many correct solutions.

  question: "Start with 3, 7, 4, 9. Use each once with + - * to make 17."
  solution: "9 + 7 = 16\\n16 + 4 = 20\\n20 - 3 = 17\\nThe answer is 17."
            one operation per line, then arith's answer line ("\\n" is the step delimiter); as correct,
            "4 - 3 = 1\\n9 + 7 = 16\\n16 + 1 = 17\\nThe answer is 17." and 16 more.

Unlike arith (one correct solution text per question, so every correct candidate gets the same
PRM score), a countdown problem has many correct texts: independent operations can be reordered
and different expressions reach the same target. Its errors are locally checkable: a line is
wrong iff its arithmetic is wrong or it uses a number that is not available, and a prefix is a
dead end iff the numbers left can no longer reach the target (`prefix_solvable`, an exact memoised
solver: milliseconds for <= 5 numbers, about 0.3 s for 6). That gives search something to choose
between, and exact step labels.

Rules (`grade`): every line is "a op b = c" with op among the puzzle's ops and c the exact,
positive integer result (no zero, no negatives, "/" only when exact); a and b are available:
an input not used yet or a result of an earlier line not used yet (each value is used once);
every result but the last is used by a later line; the last result is the target and the
answer line states it. With `use_all` every input is used; otherwise any of them (>= 1 line).

Distinct solutions are counted (`count_solutions`) as distinct texts with each line in canonical
form: the larger operand first (the grader also accepts "3 + 4 = 7" for "4 + 3 = 7"; those
commuted variants are not counted). Reference solutions are drawn uniformly among them
(`sample_solution`), so a policy trained on them sees several orderings and expressions.

Difficulty knobs: how many numbers (`min_numbers`..`max_numbers`), their range, the ops, and the
number of distinct solutions (recorded per problem; `min_solutions` / `max_solutions` filter).

Pure Python (no numpy/jax): generation is deterministic across machines and versions.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import random
import re
from collections.abc import Mapping, Sequence

from ttc_jax.tasks import synthetic
from ttc_jax.tasks.synthetic import answer_line, solution_steps

OPS = ("+", "-", "*", "/")
_LINE = re.compile(r"^[ \t]*(\d+)[ \t]*([-+*/])[ \t]*(\d+)[ \t]*=[ \t]*(-?\d+)[ \t]*$")
_ANSWER = re.compile(rf"^{re.escape(synthetic.ANSWER_PREFIX)}(-?\d+){re.escape(synthetic.ANSWER_SUFFIX)}[ \t]*$")
_REFERENCE = re.compile(r"^(\d+) from (\d+(?:,\d+)*)$")


@dataclasses.dataclass(frozen=True)
class CountdownConfig:
  """Difficulty mixture of the countdown task; every problem samples its own number count.

  Attributes:
    min_numbers, max_numbers: how many input numbers, uniform in [min, max] (2..6).
    min_number, max_number: each input is uniform in [min_number, max_number].
    ops: the allowed operations, a string over "+-*/" ("/" only where exact).
    use_all: every input must be used (else any subset of them, each at most once).
    max_target: targets are drawn in [1, max_target] (generation retries larger results).
    min_solutions, max_solutions: keep only problems with this many distinct solutions
      (max_solutions=0: no upper bound); fewer solutions is harder for the policy.
    seed: seed of the generator; same config -> same problems.
  """

  min_numbers: int = 3
  max_numbers: int = 5
  min_number: int = 1
  max_number: int = 9
  ops: str = "+-*"
  use_all: bool = True
  max_target: int = 99
  min_solutions: int = 1
  max_solutions: int = 0
  seed: int = 0

  def __post_init__(self):
    if not 2 <= self.min_numbers <= self.max_numbers <= 6:
      raise ValueError(f"need 2 <= min_numbers <= max_numbers <= 6, got {self.min_numbers}, {self.max_numbers}")
    if not 1 <= self.min_number <= self.max_number:
      raise ValueError(f"need 1 <= min_number <= max_number, got {self.min_number}, {self.max_number}")
    if not self.ops or set(self.ops) - set(OPS) or len(set(self.ops)) != len(self.ops):
      raise ValueError(f"ops={self.ops!r} must be distinct characters of {''.join(OPS)!r}")
    if self.max_target < 1:
      raise ValueError(f"max_target={self.max_target} must be positive")
    if self.min_solutions < 1 or (self.max_solutions and self.max_solutions < self.min_solutions):
      raise ValueError(f"need 1 <= min_solutions <= max_solutions (or max_solutions=0), got "
                       f"{self.min_solutions}, {self.max_solutions}")

  @property
  def max_steps(self) -> int:
    """The most operation lines a solution has (the answer line not counted), as arith's field."""
    return self.max_numbers - 1


@dataclasses.dataclass(frozen=True)
class Puzzle:
  """What the grader and the solver need: inputs (in question order), target, rules."""

  numbers: tuple[int, ...]
  target: int
  ops: str = "+-*"
  use_all: bool = True

  @property
  def reference(self) -> str:
    """The problem's `answer` string: "17 from 3,4,7,9" (target, then the sorted inputs)."""
    return reference_of(self.target, self.numbers)

  @classmethod
  def from_reference(cls, reference: str, ops: str = "+-*", use_all: bool = True) -> "Puzzle":
    m = _REFERENCE.match(reference.strip())
    if not m:
      raise ValueError(f"not a countdown reference (want '17 from 3,4,7,9'): {reference!r}")
    return cls(tuple(int(x) for x in m.group(2).split(",")), int(m.group(1)), ops, use_all)

  @classmethod
  def from_metadata(cls, metadata: Mapping) -> "Puzzle":
    """The puzzle of a task problem or a sample record (`decode.solutions` records keep the metadata)."""
    return cls(tuple(int(x) for x in metadata["numbers"]), int(metadata["target"]), metadata["ops"],
               bool(metadata["use_all"]))


def reference_of(value: int, numbers: Sequence[int]) -> str:
  return f"{value} from {','.join(str(x) for x in sorted(numbers))}"


@dataclasses.dataclass(frozen=True)
class Problem:
  """One countdown problem.

  Attributes:
    id: unique within a generated split, e.g. "test-000042".
    question: one line, no newline.
    solution: a reference solution drawn uniformly among the distinct correct ones.
    answer: the reference string "target from sorted,inputs" (`Puzzle.reference`).
    numbers: the inputs in question order.
    target: the value to reach.
    num_solutions: number of distinct correct solution texts (canonical lines).
    generating_solution: the solution the generator built the target from.
    ops, use_all: the rules (as the config said).
  """

  id: str
  question: str
  solution: str
  answer: str
  numbers: tuple[int, ...]
  target: int
  num_solutions: int
  generating_solution: str
  ops: str = "+-*"
  use_all: bool = True

  @property
  def puzzle(self) -> Puzzle:
    return Puzzle(self.numbers, self.target, self.ops, self.use_all)

  @property
  def metadata(self) -> dict:
    """Difficulty facts as task metadata (`tasks.problem.Problem.metadata`)."""
    return {"num_numbers": len(self.numbers), "num_solutions": self.num_solutions, "target": self.target,
            "numbers": list(self.numbers), "ops": self.ops, "use_all": self.use_all,
            "generating_solution": self.generating_solution}


def question_text(numbers: Sequence[int], target: int, ops: str, use_all: bool) -> str:
  listed = ", ".join(str(x) for x in numbers)
  rule = "each once" if use_all else "some, each at most once,"
  return f"Start with {listed}. Use {rule} with {' '.join(ops)} to make {target}."


# --- Lines and states --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class State:
  """Values available after a prefix: inputs not used yet and results not used yet (sorted)."""

  inputs: tuple[int, ...]
  results: tuple[int, ...] = ()


def start_state(puzzle: Puzzle) -> State:
  return State(tuple(sorted(puzzle.numbers)))


def parse_line(line: str) -> tuple[int, str, int, int] | None:
  """"a op b = c" -> (a, op, b, c), or None if the line is not an operation line."""
  m = _LINE.match(line)
  return (int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))) if m else None


def apply_op(a: int, op: str, b: int) -> int | None:
  """The exact positive integer a op b, or None where the rules forbid it."""
  if op == "+":
    return a + b
  if op == "-":
    return a - b if a > b else None
  if op == "*":
    return a * b
  return a // b if b and a % b == 0 else None


def _remove(values: tuple[int, ...], x: int) -> tuple[int, ...] | None:
  if x not in values:
    return None
  i = values.index(x)
  return values[:i] + values[i + 1:]


def _take(state: State, x: int) -> State | None:
  # A result first: an unused result must be used later, an unused input need not (subset mode),
  # and with use_all both are used in the end anyway, so preferring results never loses a solution.
  results = _remove(state.results, x)
  if results is not None:
    return State(state.inputs, results)
  inputs = _remove(state.inputs, x)
  return None if inputs is None else State(inputs, state.results)


def apply_line(puzzle: Puzzle, state: State, line: str) -> State | None:
  """The state after `line`, or None if the line is wrong: not "a op b = c", an op the puzzle
  does not allow, wrong arithmetic, or a or b not available in `state`."""
  parsed = parse_line(line)
  if parsed is None:
    return None
  a, op, b, c = parsed
  if op not in puzzle.ops or apply_op(a, op, b) != c:
    return None
  state = _take(state, a)
  state = state and _take(state, b)
  return state and State(state.inputs, tuple(sorted(state.results + (c,))))


def line_correct(puzzle: Puzzle, prefix: Sequence[str], line: str) -> bool:
  """Whether `line` is a legal operation after the (legal) operation lines `prefix`."""
  state = run_lines(puzzle, prefix)
  return state is not None and apply_line(puzzle, state, line) is not None


def run_lines(puzzle: Puzzle, lines: Sequence[str]) -> State | None:
  """The state after operation lines `lines`, or None if any of them is wrong."""
  state = start_state(puzzle)
  for line in lines:
    state = apply_line(puzzle, state, line)
    if state is None:
      return None
  return state


# --- Solver ------------------------------------------------------------------------------------

def _moves(pool: tuple[int, ...], ops: str):
  """(canonical line, next pool) for every distinct line over sorted `pool`: larger operand first,
  each pair of values once even where values repeat (the texts would be the same)."""
  seen = set()
  for i, j in itertools.combinations(range(len(pool)), 2):
    b, a = pool[i], pool[j]  # Sorted ascending: a >= b.
    if (a, b) in seen:
      continue
    seen.add((a, b))
    rest = pool[:i] + pool[i + 1:j] + pool[j + 1:]
    for op in ops:
      c = apply_op(a, op, b)
      if c is not None:
        yield f"{a} {op} {b} = {c}", tuple(sorted(rest + (c,)))


@functools.lru_cache(maxsize=1 << 20)
def _count_all(pool: tuple[int, ...], target: int, ops: str) -> int:
  """Distinct canonical line sequences that combine every value of sorted `pool` into `target`."""
  if len(pool) == 1:
    return int(pool[0] == target)
  return sum(_count_all(nxt, target, ops) for _, nxt in _moves(pool, ops))


@functools.lru_cache(maxsize=1 << 20)
def _solvable_all(pool: tuple[int, ...], target: int, ops: str) -> bool:
  if len(pool) == 1:
    return pool[0] == target
  return any(_solvable_all(nxt, target, ops) for _, nxt in _moves(pool, ops))


def _sub_multisets(values: tuple[int, ...]):
  """Distinct sub-multisets of sorted `values` (sorted tuples), the empty one included."""
  counts = sorted(collections.Counter(values).items())
  for picks in itertools.product(*(range(n + 1) for _, n in counts)):
    yield tuple(v for (v, _), k in zip(counts, picks) for _ in range(k))


def _pools(puzzle: Puzzle, state: State):
  """The pools a finished solution from `state` may combine: all of it (use_all), or its unused
  results with any unused inputs (at least two values in all when nothing is combined yet)."""
  if puzzle.use_all:
    yield tuple(sorted(state.inputs + state.results))
    return
  for extra in _sub_multisets(state.inputs):
    pool = tuple(sorted(state.results + extra))
    if len(pool) >= 2 or (len(pool) == 1 and state.results):
      yield pool


def prefix_solvable(puzzle: Puzzle, lines: Sequence[str]) -> bool:
  """Whether the operation lines `lines` are all legal and can still be completed to a correct
  solution (False: a wrong line or a dead end). A complete correct solution's lines are solvable."""
  state = run_lines(puzzle, lines)
  return state is not None and any(_solvable_all(p, puzzle.target, puzzle.ops) for p in _pools(puzzle, state))


def count_solutions(puzzle: Puzzle) -> int:
  """Number of distinct correct solution texts (canonical lines; see the module docstring)."""
  return sum(_count_all(p, puzzle.target, puzzle.ops) for p in _pools(puzzle, start_state(puzzle)))


def sample_solution(puzzle: Puzzle, rng: random.Random) -> str:
  """A solution drawn uniformly among the `count_solutions(puzzle)` distinct ones."""
  pools = [p for p in _pools(puzzle, start_state(puzzle))]
  pool = _weighted_choice(rng, pools, [_count_all(p, puzzle.target, puzzle.ops) for p in pools])
  lines = []
  while len(pool) > 1:
    moves = list(_moves(pool, puzzle.ops))
    line, pool = _weighted_choice(rng, moves, [_count_all(nxt, puzzle.target, puzzle.ops) for _, nxt in moves])
    lines.append(line)
  return "\n".join(lines + [answer_line(str(puzzle.target))])


def _weighted_choice(rng: random.Random, items: Sequence, weights: Sequence[float]):
  if not sum(weights):
    raise ValueError("no solution to sample from")
  return synthetic._weighted_choice(rng, items, weights)


# --- Grading -----------------------------------------------------------------------------------

def split_solution(text: str) -> tuple[list[str], int | None]:
  """(operation lines before the first answer line, the answer's value or None if none)."""
  lines = []
  for line in solution_steps(text):
    m = _ANSWER.match(line)
    if m:
      return lines, int(m.group(1))
    lines.append(line)
  return lines, None


def grade(puzzle: Puzzle, text: str) -> bool:
  """Whether `text` is a correct solution of `puzzle` (the rules in the module docstring)."""
  lines, answer = split_solution(text)
  if answer != puzzle.target or not lines:
    return False
  state = run_lines(puzzle, lines)
  if state is None or state.results != (puzzle.target,):
    return False
  return not (puzzle.use_all and state.inputs)


def extract_answer(text: str) -> str | None:
  """"final from sorted,inputs" of a solution whose lines are all right and form one computation
  (every result but the last used later) and whose answer line states the last result, else None.

  Needs no puzzle: an operand that is not an unused earlier result is an input. A correct
  solution's answer is its problem's reference string (use_all), so answer voting groups the
  correct candidates together whatever their order or expression.
  """
  lines, answer = split_solution(text)
  if answer is None or not lines:
    return None
  results, inputs = [], []
  for line in lines:
    parsed = parse_line(line)
    if parsed is None or apply_op(parsed[0], parsed[1], parsed[2]) != parsed[3]:
      return None
    for x in parsed[0], parsed[2]:
      if x in results:
        results.remove(x)
      else:
        inputs.append(x)
    results.append(parsed[3])
  if results != [answer]:
    return None
  return reference_of(answer, inputs)


@dataclasses.dataclass(frozen=True)
class CountdownGrader:
  """Grader of the countdown task; the reference is the problem's answer, "17 from 3,4,7,9".

  Attributes: ops, use_all: the task's rules (the reference names only target and inputs).
  """

  ops: str = "+-*"
  use_all: bool = True

  def extract_answer(self, text: str) -> str | None:
    return extract_answer(text)

  def is_correct(self, text: str, reference: str) -> bool:
    try:
      puzzle = Puzzle.from_reference(reference, self.ops, self.use_all)
    except ValueError:
      return False
    return grade(puzzle, text)


def step_labels(puzzle: Puzzle, steps: Sequence[str]) -> list[bool]:
  """Exact label of every step of a solution: an operation line is good iff it and all lines
  before it are legal and the target is still reachable; the answer line iff the whole is correct
  (steps after it: as the answer line)."""
  labels, lines, done = [], [], None
  for step in steps:
    if done is not None:
      labels.append(done)
    elif _ANSWER.match(step):
      done = grade(puzzle, "\n".join(lines + [step]))
      labels.append(done)
    else:
      lines.append(step)
      labels.append(prefix_solvable(puzzle, lines))
  return labels


# --- Generation --------------------------------------------------------------------------------

def _generating_solution(rng: random.Random, numbers: Sequence[int], cfg: CountdownConfig) -> list[tuple] | None:
  """Random legal lines over the numbers (all, or a random subset of >= 2): the target is the
  last result. None when a pair allows no op (then the caller draws again)."""
  pool = list(numbers)
  k = len(pool) if cfg.use_all else synthetic._uniform_int(rng, 2, len(pool))
  order = pool[:]
  for i in range(len(order) - 1, 0, -1):  # Fisher-Yates on rng.random(): stable across versions.
    j = synthetic._uniform_int(rng, 0, i)
    order[i], order[j] = order[j], order[i]
  pool = order[:k]
  lines = []
  while len(pool) > 1:
    i = synthetic._uniform_int(rng, 0, len(pool) - 1)
    a = pool.pop(i)
    b = pool.pop(synthetic._uniform_int(rng, 0, len(pool) - 1))
    a, b = max(a, b), min(a, b)
    legal = [op for op in cfg.ops if apply_op(a, op, b) is not None]
    if not legal:
      return None
    op = legal[synthetic._uniform_int(rng, 0, len(legal) - 1)]
    c = apply_op(a, op, b)
    lines.append((a, op, b, c))
    pool.append(c)
  return lines


def sample_problem(rng: random.Random, cfg: CountdownConfig, problem_id: str = "",
                   max_tries: int = 1000) -> Problem:
  """Draws one problem from `rng` (a pure function of the rng state and `cfg`)."""
  for _ in range(max_tries):
    n = synthetic._uniform_int(rng, cfg.min_numbers, cfg.max_numbers)
    numbers = tuple(synthetic._uniform_int(rng, cfg.min_number, cfg.max_number) for _ in range(n))
    lines = _generating_solution(rng, numbers, cfg)
    if lines is None or not 1 <= lines[-1][3] <= cfg.max_target:
      continue
    target = lines[-1][3]
    puzzle = Puzzle(numbers, target, cfg.ops, cfg.use_all)
    num_solutions = count_solutions(puzzle)
    if num_solutions < cfg.min_solutions or (cfg.max_solutions and num_solutions > cfg.max_solutions):
      continue
    generating = "\n".join([f"{a} {op} {b} = {c}" for a, op, b, c in lines] + [answer_line(str(target))])
    return Problem(id=problem_id, question=question_text(numbers, target, cfg.ops, cfg.use_all),
                   solution=sample_solution(puzzle, rng), answer=puzzle.reference, numbers=numbers,
                   target=target, num_solutions=num_solutions, generating_solution=generating,
                   ops=cfg.ops, use_all=cfg.use_all)
  raise ValueError(f"no problem within {max_tries} draws fits {cfg} (max_target, min/max_solutions too tight?)")


def generate_splits(cfg: CountdownConfig, sizes: Mapping[str, int]) -> dict[str, list[Problem]]:
  """Unique problems per split, disjoint across splits (as `synthetic.generate_splits`: a
  question's split is a hash of its text). Returns {split: [Problem, ...]}, ids "{split}-{i:06d}"."""
  return synthetic.unique_splits(lambda rng: sample_problem(rng, cfg), cfg.seed, sizes, "CountdownConfig")
