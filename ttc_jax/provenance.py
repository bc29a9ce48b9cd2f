"""Which code made an artifact: git commit, written into every JSON result."""
import functools
import hashlib
import json
import os
import subprocess
from typing import Any

from ttc_jax import storage

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
  """HEAD of the checkout this package runs from, '+dirty' if it has changes; 'unknown' outside git."""
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True,
                            check=True, timeout=10).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO_ROOT,
                           capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    return commit + ("+dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def write_json(path: str, payload: dict[str, Any]) -> None:
  """Writes atomically (`storage.write_bytes`: local rename or one object upload), so a kill never leaves
  half a result."""
  storage.write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def fingerprint(value: Any) -> str:
  """A short stable hash of a JSON-able value (configs, input digests): the identity of what it made."""
  return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: str) -> str:
  """SHA-256 (16 hex digits) of a file's bytes: the identity of a single-file input (e.g. scores.jsonl)."""
  h = hashlib.sha256()
  with storage.open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()[:16]


def input_fingerprint(directory: str) -> str | None:
  """The identity of an artifact directory's content, from its manifest (shard digests where it has them),
  or None without one; the commit and time it was made at are left out (same content, same identity)."""
  path = os.path.join(directory, "manifest.json")
  if not storage.exists(path):
    return None
  manifest = read_json(path)
  return fingerprint({k: v for k, v in manifest.items() if k not in ("git_commit", "created")})


class CorruptFileError(ValueError):
  """A result file that exists but does not parse: the message names the file (and line)."""


def read_json(path: str, hint: str = "") -> Any:
  """The JSON value in `path`; a truncated or invalid file raises naming it (and `hint`: what remakes it)."""
  text = storage.read_text(path)
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise CorruptFileError(f"{path}: invalid JSON ({e}){'; ' + hint if hint else ''}") from None


def read_jsonl(path: str, hint: str = "") -> list[Any]:
  """One JSON value per non-blank line of `path`; a bad line raises naming the file and line number."""
  out = []
  with storage.open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError as e:
        raise CorruptFileError(f"{path}:{number}: invalid JSON line ({e}){'; ' + hint if hint else ''}") from None
  return out


def read_json_field(path: str, field: str) -> Any:
  """`field` of the JSON object in `path`, or None if the file does not exist (yet)."""
  if not storage.exists(path):
    return None
  return read_json(path).get(field)
