"""GSM8K (Cobbe et al. 2021): `train.jsonl` / `test.jsonl` (7,473 / 1,319 rows).

Row: {"question", "answer"}; the answer field is the worked solution, with calculator notes
`<<48/2=24>>`, one step per line, and a last line `#### 72`. The reference answer is the text
after `#### ` with thousands commas removed ("1,234" -> "1234"); the solution keeps the steps
without the notes. The id is "<file name>:<line>".
"""

from __future__ import annotations

import pathlib
import re

from ttc_jax.tasks import problem as P
from ttc_jax.tasks.loaders import rows

SOURCE = "gsm8k"
_NOTE = re.compile(r"<<[^>]*>>")
_FINAL = "#### "


def parse_answer(worked: str, file, line: int) -> tuple[str, str]:
  """(final answer, solution steps without calculator notes) of a GSM8K answer field."""
  body, sep, final = worked.rpartition(_FINAL)
  final = final.strip().replace(",", "")
  if not sep or not final or "\n" in final:
    raise rows.DataFormatError(file, line, "answer", f"no final '{_FINAL}N' line in {worked[-60:]!r}")
  steps = [_NOTE.sub("", s).strip() for s in body.strip().split("\n")]
  return final, "\n".join(s for s in steps if s)


def load(path: pathlib.Path, split: str) -> list[P.Problem]:
  """Problems of `path`: a jsonl file, or a directory holding {split}.jsonl."""
  out = []
  for file in rows.files_of(path, split, {"train": ["train.jsonl"], "test": ["test.jsonl"]}, None, "GSM8K"):
    for line, row in rows.read_jsonl(file):
      answer, solution = parse_answer(rows.text(row, "answer", file, line), file, line)
      out.append(P.Problem(id=f"{file.name}:{line}", question=rows.text(row, "question", file, line),
                           answer=answer, solution=solution, metadata={P.SOURCE: SOURCE}))
  return out
