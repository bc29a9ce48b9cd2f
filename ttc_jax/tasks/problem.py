"""One problem of any task: what every job, record writer and report may rely on.

Task-specific facts (MATH's level and subject, the synthetic task's num_steps / max_operand /
ops) live in `metadata`, so nothing downstream assumes a field one task has and another lacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# Metadata keys with one meaning across tasks (a task sets those it knows).
LEVEL = "level"  # int difficulty level as published (MATH: 1..5).
SUBJECT = "subject"  # e.g. "Precalculus".
SOURCE = "source"  # dataset name, e.g. "math500".


@dataclasses.dataclass(frozen=True)
class Problem:
  """A problem with its reference answer.

  Attributes:
    id: stable and unique within its task (MATH-500: unique_id; else the file and line).
    question: the problem statement as published.
    answer: the reference final answer, as the task's grader reads it.
    solution: the reference solution text, "" where the source has none.
    metadata: JSON-ready facts about the problem (LEVEL, SUBJECT, SOURCE, ...).
  """

  id: str
  question: str
  answer: str
  solution: str = ""
  metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
