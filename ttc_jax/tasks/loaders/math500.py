"""MATH-500 (`test.jsonl`, 500 rows; the same problems as PRM800K's math_splits test set).

Row: {"problem", "solution", "answer", "subject", "level": int, "unique_id": "test/<subject>/<n>.json"}.
The id is `unique_id`, which is also the problem's Hendrycks MATH path (`hendrycks_math` ids match).
"""

from __future__ import annotations

import pathlib

from ttc_jax.tasks import problem as P
from ttc_jax.tasks.loaders import rows

SOURCE = "math500"


def load(path: pathlib.Path, split: str) -> list[P.Problem]:
  """Problems of `path` (the jsonl file, or a directory holding test.jsonl); only a test split exists."""
  if split != "test":
    raise ValueError(f"MATH-500 has only a test split, got split={split!r}")
  out, seen = [], {}
  for file in rows.files_of(path, split, {"test": ["test.jsonl"]}, None, "MATH-500"):
    for line, row in rows.read_jsonl(file):
      pid = rows.text(row, "unique_id", file, line)
      if pid in seen:
        raise rows.DataFormatError(file, line, "unique_id", f"{pid!r} repeats line {seen[pid]}")
      seen[pid] = line
      meta = {P.SOURCE: SOURCE}
      level = rows.get(row, "level", int, file, line, default=None)
      subject = rows.get(row, "subject", str, file, line, default=None)
      if level is not None:
        meta[P.LEVEL] = level
      if subject is not None:
        meta[P.SUBJECT] = subject
      out.append(P.Problem(id=pid, question=rows.text(row, "problem", file, line),
                           answer=rows.answer_text(row, "answer", file, line),
                           solution=rows.get(row, "solution", str, file, line, default=""), metadata=meta))
  return out
