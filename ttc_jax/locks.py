"""One writer at a time: an advisory lock file holding the writer's host and pid.

The lock is created only if absent (`storage.create_exclusive`: O_EXCL locally, a GCS upload with
`ifGenerationMatch=0` on object storage), so one writer wins even among the hosts sharing a gs:// workdir. A lock whose pid is no longer alive on this host (a killed
run) is taken over with a warning; a live one, or one from another host (whose pid cannot be
checked from here), refuses with an error naming the holder. Training stages hold
`<stage>/.lock` (`train.stage`); sharded artifacts `<artifact>.lock` beside their folder
(`shards.run_sharded`), so moving a stale artifact aside does not move its lock.
"""
import contextlib
import json
import os
import socket
import time
from typing import Any, Iterator

from absl import logging

from ttc_jax import storage

LOCK_NAME = ".lock"
_PARTIAL_LOCK_GRACE_S = 30  # A lock file still empty after this long was left by a writer that died creating it.


class LockError(RuntimeError):
  """What the lock guards is in use by another run (train.stage also raises it for a changed model)."""


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
    holder = json.loads(storage.read_text(path))
    return holder if isinstance(holder, dict) else None
  except (OSError, ValueError):
    return None


def _is_stale(path: str, holder: dict[str, Any] | None) -> bool:
  if holder is None:  # Being written right now, or its writer died between create and write.
    try:
      return time.time() - storage.getmtime(path) > _PARTIAL_LOCK_GRACE_S
    except FileNotFoundError:
      return True
  return holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", -1)))


def acquire(path: str, what: str) -> str:
  """Takes the lock file `path` for this process, or raises LockError naming the holder; returns `path`."""
  me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
  for _ in range(3):
    try:
      storage.create_exclusive(path, json.dumps(me).encode())
    except FileExistsError:
      holder = _read_holder(path)
      if not _is_stale(path, holder):
        who = (f"pid {holder.get('pid')} on host {holder.get('host')} (since {holder.get('since')})" if holder
               else "a process that is creating it right now")
        raise LockError(f"{what} is in use by {who}: one writer at a time. Wait for it to finish or stop it; if "
                        f"it is gone (e.g. on another host), delete {path}") from None
      logging.warning("Taking over the stale lock of %s: %s (its process is gone)", what,
                      f"pid {holder.get('pid')} on host {holder.get('host')}" if holder else "an empty lock file")
      with contextlib.suppress(FileNotFoundError):
        storage.remove(path)
      continue
    return path
  raise LockError(f"{what}: could not take {path}; another run keeps taking it")


def release(path: str) -> None:
  """Removes the lock if this process still holds it."""
  holder = _read_holder(path)
  if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
    with contextlib.suppress(FileNotFoundError):
      storage.remove(path)


@contextlib.contextmanager
def locked(path: str, what: str, enabled: bool = True) -> Iterator[None]:
  """Holds the lock file `path` for the with-block (`enabled=False`: a no-op, e.g. on non-lead hosts)."""
  path = acquire(path, what) if enabled else None
  try:
    yield
  finally:
    if path is not None:
      release(path)
