"""AIME 2024 (HuggingFaceH4/aime_2024): one parquet file, 30 rows.

Columns: id (int), problem, solution, answer, url, year. The id is the dataset's own `id`.
Read with pyarrow (imported here only).
"""

from __future__ import annotations

import pathlib

from ttc_jax.tasks import problem as P
from ttc_jax.tasks.loaders import rows

SOURCE = "aime2024"


def load(path: pathlib.Path, split: str) -> list[P.Problem]:
  """Problems of `path` (a .parquet file, or a directory of them); AIME has only a test split.

  Errors name the file and the row (from 1) as the line.
  """
  import pyarrow.parquet as pq  # Lazy: only AIME 2024 is stored as parquet.

  if split != "test":
    raise ValueError(f"AIME 2024 has only a test split, got split={split!r}")
  out, seen = [], {}
  for file in rows.files_of(path, split, None, "**/*.parquet", "AIME 2024"):
    try:
      table = pq.read_table(file)
    except Exception as e:  # pyarrow raises ArrowInvalid and friends on a file that is not parquet.
      raise rows.DataFormatError(file, None, None, f"not a parquet file ({e})") from None
    for n, row in enumerate(table.to_pylist(), 1):
      pid = str(rows.get(row, "id", (int, str), file, n))
      if pid in seen:
        raise rows.DataFormatError(file, n, "id", f"{pid!r} repeats row {seen[pid]}")
      seen[pid] = n
      meta = {P.SOURCE: SOURCE}
      for key in ("url", "year"):
        value = rows.get(row, key, (str, int), file, n, default=None)
        if value is not None:
          meta[key] = value
      out.append(P.Problem(id=pid, question=rows.text(row, "problem", file, n),
                           answer=rows.answer_text(row, "answer", file, n),
                           solution=rows.get(row, "solution", str, file, n, default=""), metadata=meta))
  return out
