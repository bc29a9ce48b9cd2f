"""MATH (Hendrycks et al. 2021): one JSON file per problem, `{split}/{subject}/{n}.json`.

File: {"problem", "level": "Level 5", "type": "Precalculus", "solution"}. There is no answer
field: the answer is the last `\\boxed{...}` / `\\fbox{...}` of the solution, braces matched.
The id is the path under the dataset root, "test/precalculus/807.json" (MATH-500's unique_id).
A few published problems have "Level ?": they get no level.
"""

from __future__ import annotations

import pathlib
import re

from ttc_jax.tasks import problem as P
from ttc_jax.tasks.boxed import last_boxed
from ttc_jax.tasks.loaders import rows

SOURCE = "math"
_LEVEL = re.compile(r"Level (\d+)|Level \?")


def _number(file: pathlib.Path) -> tuple:
  # 10.json after 9.json: the published files are numbered, not zero-padded.
  return (file.parent.name, int(file.stem) if file.stem.isdigit() else float("inf"), file.stem)


def load_file(file: pathlib.Path) -> P.Problem:
  """One problem file; its id is its last three path parts (split/subject/n.json)."""
  row = rows.read_json(file)
  solution = rows.text(row, "solution", file, None)
  answer = last_boxed(solution)
  if not answer:
    raise rows.DataFormatError(file, None, "solution", "no \\boxed{...} or \\fbox{...} answer with matched braces")
  level_text = rows.text(row, "level", file, None)
  m = _LEVEL.fullmatch(level_text.strip())
  if not m:
    raise rows.DataFormatError(file, None, "level", f"expected 'Level N' (or 'Level ?'), got {level_text!r}")
  meta = {P.SOURCE: SOURCE, P.SUBJECT: rows.text(row, "type", file, None)}
  if m.group(1):
    meta[P.LEVEL] = int(m.group(1))
  return P.Problem(id="/".join(file.parts[-3:]), question=rows.text(row, "problem", file, None), answer=answer,
                   solution=solution, metadata=meta)


def load(path: pathlib.Path, split: str) -> list[P.Problem]:
  """Problems of a split: `path` is the dataset root (holding train/ and test/) or one problem file."""
  files = rows.files_of(path, split, None, "{split}/*/*.json", "MATH")
  return [load_file(f) for f in sorted(files, key=_number)]
