"""A training stage directory: one writer at a time, and its model fixed once it has checkpoints.

The lock is an advisory file `<stage>/.lock` holding the writer's host and pid,
created with O_EXCL. A lock whose pid is no longer alive on this host (a killed
run) is taken over with a warning; a live one, or one from another host (whose
pid cannot be checked from here), refuses with an error naming the holder.
"""
import contextlib
import json
import os
import socket
import time
from typing import Any, Iterator, Mapping

from absl import logging

from ttc_jax.provenance import read_json
from ttc_jax.train.checkpoint import latest_step

LOCK_NAME = ".lock"
_PARTIAL_LOCK_GRACE_S = 30  # A lock file still empty after this long was left by a writer that died creating it.


class StageError(RuntimeError):
  """A stage is in use by another run, or holds a model other than the one asked for."""


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Alive, owned by another user.
    return True
  return True


def _read_holder(path: str) -> dict[str, Any] | None:
  try:
    with open(path) as f:
      holder = json.load(f)
    return holder if isinstance(holder, dict) else None
  except (OSError, ValueError):
    return None


def _is_stale(path: str, holder: dict[str, Any] | None) -> bool:
  if holder is None:  # Being written right now, or its writer died between create and write.
    try:
      return time.time() - os.path.getmtime(path) > _PARTIAL_LOCK_GRACE_S
    except FileNotFoundError:
      return True
  return holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", -1)))


def acquire(stage_dir: str, what: str) -> str:
  """Takes `<stage_dir>/.lock` for this process, or raises StageError naming the holder; returns its path."""
  path = os.path.join(stage_dir, LOCK_NAME)
  me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
  for _ in range(3):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _read_holder(path)
      if not _is_stale(path, holder):
        who = (f"pid {holder.get('pid')} on host {holder.get('host')} (since {holder.get('since')})" if holder
               else "a process that is creating it right now")
        raise StageError(f"{what} ({stage_dir}) is in use by {who}: one run per stage at a time. Wait for it to "
                         f"finish or stop it; if it is gone (e.g. on another host), delete {path}") from None
      logging.warning("Taking over the stale lock of %s: %s (its process is gone)", what,
                      f"pid {holder.get('pid')} on host {holder.get('host')}" if holder else "an empty lock file")
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
      continue
    with os.fdopen(fd, "w") as f:
      json.dump(me, f)
    return path
  raise StageError(f"{what} ({stage_dir}): could not take {path}; another run keeps taking it")


def release(path: str) -> None:
  """Removes the lock if this process still holds it."""
  holder = _read_holder(path)
  if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)


@contextlib.contextmanager
def locked(stage_dir: str, what: str, enabled: bool = True) -> Iterator[None]:
  """Holds the stage's lock for the with-block (`enabled=False`: a no-op, e.g. on non-lead hosts)."""
  path = acquire(stage_dir, what) if enabled else None
  try:
    yield
  finally:
    if path is not None:
      release(path)


def check_model_config(stage_dir: str, model: Mapping[str, Any], what: str, checkpoints: str) -> None:
  """Refuses to reuse a stage with checkpoints for a different model, naming every differing field.

  Called before anything in the stage is written, so the finished stage stays usable.
  """
  path = os.path.join(stage_dir, "model_config.json")
  if not os.path.exists(path) or latest_step(checkpoints) is None:
    return
  old = read_json(path, "it records the model of the stage's checkpoints")
  model = json.loads(json.dumps(dict(model)))  # Tuples read back as lists.
  diffs = [f"model.{k}: {old.get(k, '(unset)')!r} in the stage, {model.get(k, '(unset)')!r} now"
           for k in sorted(set(old) | set(model)) if old.get(k) != model.get(k)]
  if diffs:
    raise StageError(f"{what} ({stage_dir}) already holds checkpoints of another model ({'; '.join(diffs)}). "
                     "Nothing was changed: train into another stage or workdir, or set the model back")
