"""Checkpoint write failures injected for tests (tests may run as root, where chmod stops nothing).

  python -m ttc_jax.testing.faults --unwritable=DIR/policy/checkpoints --config=configs/policy.py:smoke --workdir=DIR

runs `ttc_jax.main` with that folder read-only for this process: creating a
file or folder under it raises PermissionError, as `chmod a-w` would for a
normal user; reading still works.
"""
import contextlib
import os
import runpy
import sys


def _denied(path) -> PermissionError:
  return PermissionError(13, "Permission denied (injected)", str(path))


@contextlib.contextmanager
def unwritable(folder: str):
  """Within the block, creating anything under `folder` (os.mkdir, os.open for writing) raises PermissionError."""
  root = os.path.abspath(folder) + os.sep
  mkdir, open_ = os.mkdir, os.open
  writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

  def inside(path) -> bool:
    return os.path.abspath(os.fspath(path)).startswith(root)

  def guarded_mkdir(path, *args, **kwargs):
    if inside(path):
      raise _denied(path)
    return mkdir(path, *args, **kwargs)

  def guarded_open(path, flags, *args, **kwargs):
    if flags & writes and inside(path):
      raise _denied(path)
    return open_(path, flags, *args, **kwargs)

  os.mkdir, os.open = guarded_mkdir, guarded_open
  try:
    yield
  finally:
    os.mkdir, os.open = mkdir, open_


@contextlib.contextmanager
def failing_commit(step: int):
  """Within the block, committing step `step` (the rename in Orbax's background thread) raises PermissionError."""
  from orbax.checkpoint._src.path import atomicity
  cls = atomicity.AtomicRenameTemporaryPath
  original = cls.finalize

  async def finalize_or_fail(self, *args, **kwargs):
    if self._final_path.name == str(step):  # pylint: disable=protected-access
      raise _denied(self._final_path)  # pylint: disable=protected-access
    return await original(self, *args, **kwargs)

  cls.finalize = finalize_or_fail
  try:
    yield
  finally:
    cls.finalize = original


if __name__ == "__main__":
  flag = "--unwritable="
  folders = [a[len(flag):] for a in sys.argv[1:] if a.startswith(flag)]
  sys.argv = [a for a in sys.argv if not a.startswith(flag)]
  with contextlib.ExitStack() as stack:
    for folder in folders:
      stack.enter_context(unwritable(folder))
    runpy.run_module("ttc_jax.main", run_name="__main__", alter_sys=True)
