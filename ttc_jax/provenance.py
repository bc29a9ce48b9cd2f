"""Which code made an artifact: git commit, written into every JSON result."""
import functools
import json
import os
import subprocess
from typing import Any

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
  """Writes atomically (temp file + rename), so a kill never leaves half a result."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(payload, f, indent=2, sort_keys=False)
    f.write("\n")
  os.replace(tmp, path)


def read_json_field(path: str, field: str) -> Any:
  """`field` of the JSON object in `path`, or None if the file does not exist (yet)."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f).get(field)
