"""Answer extraction and grading behind one interface.

Search, revisions, MC-rollout labelling and evaluation only see a `Grader`, so a task
brings its own notion of "correct". Graders never raise on model output: text with no
parseable answer is simply wrong (sampled text is arbitrary, and one bad sample must not
kill an evaluation job).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Protocol, runtime_checkable

from ttc_jax.tasks import countdown, synthetic


@runtime_checkable
class Grader(Protocol):
  """Reads the final answer of a solution text and compares it with a reference."""

  def extract_answer(self, text: str) -> str | None:
    """The canonical final answer of `text`, or None if it has none."""
    ...

  def is_correct(self, text: str, reference: str) -> bool:
    """Whether the final answer of `text` matches `reference` (an answer string)."""
    ...


# The synthetic task's final line, anchored to a whole line so "The answer is 3" inside
# a step or a truncated "The answer is 3" (no period) does not count.
_ANSWER_LINE = re.compile(
    rf"^{re.escape(synthetic.ANSWER_PREFIX)}(-?[0-9]+){re.escape(synthetic.ANSWER_SUFFIX)}[ \t]*$",
    re.MULTILINE)


def _canonical_int(s: str) -> str | None:
  try:
    return str(int(s.strip()))
  except ValueError:
    return None


@dataclasses.dataclass(frozen=True)
class ExactAnswerGrader:
  """Grader of the synthetic task: integer on the last `The answer is N.` line."""

  def extract_answer(self, text: str) -> str | None:
    matches = _ANSWER_LINE.findall(text)
    # The last answer line wins: a model may restate or correct itself.
    return _canonical_int(matches[-1]) if matches else None

  def is_correct(self, text: str, reference: str) -> bool:
    answer = self.extract_answer(text)
    return answer is not None and answer == _canonical_int(reference)


@dataclasses.dataclass(frozen=True)
class MathVerifyGrader:
  """Grader for MATH-style solutions (`\\boxed{...}` answers) via `math_verify`.

  Attributes:
    timeout_seconds: per-call parse/verify timeout. math_verify implements it with
      signals, which only work on the main thread, so other threads run without one.
  """

  timeout_seconds: int | None = 5

  def _timeout(self) -> int | None:
    if threading.current_thread() is threading.main_thread():
      return self.timeout_seconds
    return None

  def _parse(self, text: str):
    import math_verify  # Lazy: sympy + latex parser are slow to import.
    return math_verify.parse(text, parsing_timeout=self._timeout())

  def extract_answer(self, text: str) -> str | None:
    try:
      parsed = self._parse(text)
    except Exception:  # Never raise on model output.
      return None
    if not parsed:
      return None
    # parse() returns [sympy_expr, matched_string]; the string is the answer as written.
    return str(parsed[-1]) if len(parsed) > 1 else str(parsed[0])

  def is_correct(self, text: str, reference: str) -> bool:
    import math_verify
    try:
      # A bare reference like "\frac{1}{2}" has no delimiters for the extractor to find.
      gold = self._parse(reference if "$" in reference or "\\boxed" in reference
                         else f"${reference}$")
      pred = self._parse(text)
      if not gold or not pred:
        return False
      return bool(math_verify.verify(gold, pred, timeout_seconds=self._timeout()))
    except Exception:  # Never raise on model output.
      return False


@dataclasses.dataclass(frozen=True)
class CutAtGrader:
  """Grades only the text before the first `marker`: a base model prompted with few-shot
  exemplars goes on to write the next exemplar after its answer, and that answer is not its own."""

  inner: Grader
  marker: str

  def extract_answer(self, text: str) -> str | None:
    return self.inner.extract_answer(text.split(self.marker, 1)[0])

  def is_correct(self, text: str, reference: str) -> bool:
    return self.inner.is_correct(text.split(self.marker, 1)[0], reference)


_GRADERS = {
    "countdown": countdown.CountdownGrader,  # The default rules; the countdown task builds its own.
    "exact": ExactAnswerGrader,
    "math_verify": MathVerifyGrader,
}


GRADER_NAMES = tuple(sorted(_GRADERS))


def get_grader(name: str) -> Grader:
  """Returns a grader by name: "exact" (synthetic task), "countdown" (default rules) or "math_verify" (MATH)."""
  try:
    return _GRADERS[name]()
  except KeyError:
    raise ValueError(f"unknown grader {name!r}; valid names: {sorted(_GRADERS)}") from None
