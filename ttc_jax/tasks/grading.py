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

from ttc_jax.tasks import countdown, math_verify_worker, synthetic


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
    timeout_seconds: per parse/verify call, in any thread. math_verify times out with signals,
      which only the main thread has; other threads grade in a helper process that is killed
      if it runs past its limit (`math_verify_worker`), so no model output stalls a job.
      None: no timeout (in-process everywhere).
  """

  timeout_seconds: int | None = 5

  def _isolated(self) -> bool:
    return self.timeout_seconds is not None and threading.current_thread() is not threading.main_thread()

  def extract_answer(self, text: str) -> str | None:
    if self._isolated():
      return math_verify_worker.call_isolated("extract", self.timeout_seconds, text=text)
    return math_verify_worker.extract(text, self.timeout_seconds)

  def is_correct(self, text: str, reference: str) -> bool:
    if self._isolated():
      return bool(math_verify_worker.call_isolated("correct", self.timeout_seconds, text=text, reference=reference))
    return math_verify_worker.correct(text, reference, self.timeout_seconds)


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
