"""AIME 2025 (opencompass/AIME2025): `aime2025-I.jsonl` and `aime2025-II.jsonl`, 15 rows each.

Row: {"question", "answer"}. The id is "<file name>:<line>".
"""

from __future__ import annotations

import pathlib

from ttc_jax.tasks import problem as P
from ttc_jax.tasks.loaders import rows

SOURCE = "aime2025"
FILES = ["aime2025-I.jsonl", "aime2025-II.jsonl"]


def load(path: pathlib.Path, split: str) -> list[P.Problem]:
  """Problems of `path` (one jsonl file, or the directory holding both); only a test split exists."""
  if split != "test":
    raise ValueError(f"AIME 2025 has only a test split, got split={split!r}")
  out = []
  for file in rows.files_of(path, split, {"test": FILES}, None, "AIME 2025"):
    for line, row in rows.read_jsonl(file):
      out.append(P.Problem(id=f"{file.name}:{line}", question=rows.text(row, "question", file, line),
                           answer=rows.answer_text(row, "answer", file, line),
                           metadata={P.SOURCE: SOURCE, "exam": file.stem.removeprefix("aime2025-")}))
  return out
