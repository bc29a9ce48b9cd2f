"""Reading rows of published data files with errors that name the file, the line and the field."""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

_MISSING = object()


class DataFormatError(ValueError):
  """A data file row that does not have the published layout."""

  def __init__(self, path: str | os.PathLike, line: int | None, field: str | None, why: str):
    where = f"{path}:{line}" if line is not None else str(path)
    super().__init__(f"{where}: {f'field {field!r}: ' if field else ''}{why}")
    self.path, self.line, self.field = str(path), line, field


def read_jsonl(path: pathlib.Path) -> Iterator[tuple[int, dict]]:
  """(line number from 1, row) for every non-blank line; a line that is not a JSON object raises."""
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such data file")
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise DataFormatError(path, n, None, f"not valid JSON ({e.msg} at column {e.colno})") from None
      if not isinstance(row, dict):
        raise DataFormatError(path, n, None, f"expected a JSON object, got {type(row).__name__}")
      yield n, row


def read_json(path: pathlib.Path) -> dict:
  """One JSON object per file (Hendrycks MATH); errors name the file."""
  try:
    row = json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise DataFormatError(path, e.lineno, None, f"not valid JSON ({e.msg})") from None
  if not isinstance(row, dict):
    raise DataFormatError(path, None, None, f"expected a JSON object, got {type(row).__name__}")
  return row


def get(row: dict, field: str, kind: type | tuple[type, ...], path, line: int | None, *, default: Any = _MISSING):
  """row[a][b]... for field "a.b", checked to be of `kind` (bool never counts as int).

  A missing field (or None) returns `default` when one is given, else raises DataFormatError.
  """
  value: Any = row
  for key in field.split("."):
    value = value.get(key) if isinstance(value, dict) else None
    if value is None:
      break
  if value is None:
    if default is not _MISSING:
      return default
    raise DataFormatError(path, line, field, "missing")
  kinds = kind if isinstance(kind, tuple) else (kind,)
  if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
    names = " or ".join(k.__name__ for k in kinds)
    raise DataFormatError(path, line, field, f"expected {names}, got {type(value).__name__} {value!r:.60}")
  return value


def text(row: dict, field: str, path, line: int | None) -> str:
  """A required non-empty string field."""
  value = get(row, field, str, path, line)
  if not value.strip():
    raise DataFormatError(path, line, field, "empty")
  return value


def answer_text(row: dict, field: str, path, line: int | None) -> str:
  """A reference answer: a non-empty string, or an integer (AIME files store some as numbers)."""
  value = get(row, field, (str, int), path, line)
  value = str(value).strip()
  if not value:
    raise DataFormatError(path, line, field, "empty")
  return value


def files_of(path: pathlib.Path, split: str, names: dict[str, list[str]] | None, pattern: str | None,
             what: str) -> list[pathlib.Path]:
  """The files a split reads: `path` itself when it is a file; in a directory, the published
  file names of the split (`names[split]`) or the glob `pattern` formatted with the split."""
  if path.is_file():
    return [path]
  if not path.is_dir():
    raise FileNotFoundError(f"{path}: no such file or directory ({what})")
  if names is not None:
    if split not in names:
      raise ValueError(f"{what}: no {split!r} split; it has {sorted(names)}")
    files = [path / n for n in names[split]]
    absent = [f for f in files if not f.is_file()]
    if absent:
      raise FileNotFoundError(f"{what}: {', '.join(map(str, absent))} missing")
    return files
  files = sorted(path.glob(pattern.format(split=split)))
  if not files:
    raise FileNotFoundError(f"{what}: no file matches {path / pattern.format(split=split)}")
  return files
