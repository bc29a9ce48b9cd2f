"""PRM800K (Lightman et al. 2023): human step labels of model solutions to MATH problems.

Files `phase1_train.jsonl`, `phase1_test.jsonl`, `phase2_train.jsonl`, `phase2_test.jsonl`; one
labelled solution per row:
  {"question": {"problem", "ground_truth_answer", ...},
   "label": {"steps": [{"completions": [{"text", "rating": -1 | 0 | 1 | null, "flagged"}, ...],
                        "human_completion": null | {"text", "rating", ...},
                        "chosen_completion": int | null}, ...],
             "finish_reason": "solution" | "found_error" | "give_up" | "bad_problem"}, ...}

As a task (`load`) its problems are the distinct questions (id "<file>:<line>" of the first row
that asks it). `labelled_solutions` exposes every row's trajectory with its human rating per step,
for training a verifier on human labels.
"""

from __future__ import annotations

import dataclasses
import pathlib

from ttc_jax.tasks import problem as P
from ttc_jax.tasks.loaders import rows

SOURCE = "prm800k"
_PATTERN = "phase*_{split}.jsonl"
RATINGS = (-1, 0, 1)


@dataclasses.dataclass(frozen=True)
class LabelledStep:
  """One step of a labelled trajectory.

  Attributes:
    text: the step the trajectory continues with.
    rating: its human rating, -1 (wrong), 0 (neutral), 1 (good), or None (not rated).
    completions: every rated candidate at this step as (text, rating), the chosen one included.
    human: the labeler wrote this step (phase 1), none of the candidates was chosen.
  """

  text: str
  rating: int | None
  completions: tuple[tuple[str, int | None], ...]
  human: bool = False


@dataclasses.dataclass(frozen=True)
class LabelledSolution:
  """One row: a solution to `problem_id`'s question with a human rating per step."""

  id: str  # "<file>:<line>"
  problem_id: str  # id of the problem (`load`) this row answers.
  question: str
  answer: str  # ground_truth_answer
  steps: tuple[LabelledStep, ...]
  finish_reason: str | None


def _rating(value, file, line, field) -> int | None:
  if value is not None and (isinstance(value, bool) or value not in RATINGS):
    raise rows.DataFormatError(file, line, field, f"expected -1, 0, 1 or null, got {value!r}")
  return value


def _step(raw, file, line: int, k: int) -> LabelledStep:
  field = f"label.steps[{k}]"
  if not isinstance(raw, dict):
    raise rows.DataFormatError(file, line, field, f"expected an object, got {type(raw).__name__}")
  completions = raw.get("completions")
  if not isinstance(completions, list):
    raise rows.DataFormatError(file, line, f"{field}.completions", "missing or not a list")
  cands = []
  for j, c in enumerate(completions):
    where = f"{field}.completions[{j}]"
    if not isinstance(c, dict) or not isinstance(c.get("text"), str):
      raise rows.DataFormatError(file, line, f"{where}.text", "missing: expected an object with text and rating")
    cands.append((c["text"], _rating(c.get("rating"), file, line, f"{where}.rating")))
  chosen = raw.get("chosen_completion")
  human = raw.get("human_completion")
  if chosen is not None:
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen < len(cands):
      raise rows.DataFormatError(file, line, f"{field}.chosen_completion",
                                 f"{chosen!r} is not an index of its {len(cands)} completions")
    return LabelledStep(*cands[chosen], completions=tuple(cands))
  if human is not None:
    # The labeler's own step (phase 1); the published files hold an object, older dumps a string.
    text = human if isinstance(human, str) else human.get("text") if isinstance(human, dict) else None
    if not isinstance(text, str):
      raise rows.DataFormatError(file, line, f"{field}.human_completion", "expected a string or an object with text")
    rating = None if isinstance(human, str) else _rating(human.get("rating"), file, line,
                                                          f"{field}.human_completion.rating")
    return LabelledStep(text, rating, completions=tuple(cands), human=True)
  if not cands:
    raise rows.DataFormatError(file, line, f"{field}.completions", "empty, and no completion chosen")
  # Nothing chosen: the labelling stopped here (phase 2: the first error, a single candidate).
  # The trajectory ends with the first candidate, whose rating is this step's label.
  return LabelledStep(*cands[0], completions=tuple(cands))


def _files(path: pathlib.Path, split: str) -> list[pathlib.Path]:
  return rows.files_of(path, split, None, _PATTERN, "PRM800K")


def labelled_solutions(path: pathlib.Path, split: str) -> list[LabelledSolution]:
  """Every row of the split's files (`path`: a phase*_{split}.jsonl file or their directory)."""
  out, first = [], {}
  for file in _files(path, split):
    for line, row in rows.read_jsonl(file):
      question = rows.text(row, "question.problem", file, line)
      answer = rows.answer_text(row, "question.ground_truth_answer", file, line)
      raw_steps = rows.get(row, "label.steps", list, file, line)
      pid = first.setdefault(question, f"{file.name}:{line}")
      out.append(LabelledSolution(
          id=f"{file.name}:{line}", problem_id=pid, question=question, answer=answer,
          steps=tuple(_step(s, file, line, k) for k, s in enumerate(raw_steps)),
          finish_reason=rows.get(row, "label.finish_reason", str, file, line, default=None)))
  return out


def load(path: pathlib.Path, split: str) -> list[P.Problem]:
  """The distinct questions of the split, in first-seen order, with their ground-truth answers."""
  problems = {}
  for s in labelled_solutions(path, split):
    if s.problem_id not in problems:
      problems[s.problem_id] = P.Problem(id=s.problem_id, question=s.question, answer=s.answer,
                                         metadata={P.SOURCE: SOURCE})
  return list(problems.values())
