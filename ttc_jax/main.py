"""Entry point for every job.

  python -m ttc_jax.main --config=configs/policy.py[:smoke] --workdir=DIR [--config.train.steps=100]

`config.job` selects the job (see ttc_jax/jobs/__init__.py). The config is
locked, so a mistyped `--config.x.y` override fails at flag parsing, with its
dotted name. The workdir is not created here: jobs create what they write once
their config is validated, and a failed job whose workdir is new leaves no
empty folders behind. A failure ends the process with a one-paragraph message
(after the traceback, except for errors that name their cause: checkpoint, stage,
non-finite loss); it never waits on stuck background threads.

The workdir may be a local path or a gs:// URL (`ttc_jax.storage`); an unsupported scheme, a
malformed URL or missing credentials fail here, naming the path, before any job code runs.
"""
import importlib.util
import logging as std_logging
import os
import sys
import threading
import time
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Job config file (ml_collections).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for this job's inputs and outputs.")
flags.mark_flags_as_required(["config", "workdir"])

_THREAD_GRACE_S = 10  # Seconds a failed job's leftover threads get, in all, before the process exits anyway.


class _QuietLibraries(std_logging.Filter):
  """Orbax and grain log every save and restore at INFO; keep the console to our progress lines."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    noisy = ("orbax", "grain", "tensorflow_datasets", "absl/logging")
    return record.levelno >= std_logging.WARNING or not any(n in record.pathname for n in noisy)


def _config_arg(argv: list[str]) -> str | None:
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      return a.split("=", 1)[1]
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _load_config(spec: str):
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_ttc_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def _override_error(argv: list[str], error: Exception) -> str:
  """One paragraph for a failed `--config...` flag, naming the override and its dotted field."""
  from ttc_jax import config_parsing
  spec = _config_arg(argv)
  try:
    config = _load_config(spec) if spec else None
  except Exception as e:  # pylint: disable=broad-except
    return f"Config file {spec!r} could not be loaded: {type(e).__name__}: {e}"
  for a in argv[1:]:
    name = a.split("=", 1)[0]
    if not name.startswith(("--config.", "--noconfig.")) or config is None:
      continue
    problem = config_parsing.unknown_override(config, name.split(".", 1)[1])
    if problem:
      return f"{problem} (from {a}; config {spec})"
  first = " ".join(str(error).split())
  return f"Bad command-line config override ({type(error).__name__}: {first}); config {spec}"


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.stderr.write(f"FATAL Flags parsing error: {' '.join(str(e).split())}\n")
  except (AttributeError, KeyError, IndexError, TypeError, ValueError) as e:
    sys.stderr.write(f"FATAL {_override_error(argv, e)}\n")
  sys.stderr.flush()
  sys.exit(1)


def _prune_empty_dirs(root: str) -> None:
  """Removes the empty folders under (and including) `root`, bottom-up; any file keeps its folders."""
  for path, _, _ in sorted(os.walk(root, topdown=False), key=lambda t: -t[0].count(os.sep)):
    try:
      os.rmdir(path)
    except OSError:
      pass


def _check_workdir(workdir: str) -> str:
  """The workdir, checked by `storage.check_path`; a bad one ends the process with a one-line error."""
  from ttc_jax import storage
  try:
    return storage.check_path(workdir, "--workdir")
  except storage.StorageError as e:
    sys.stderr.write(f"FATAL {e}\n")
    sys.stderr.flush()
    sys.exit(1)


def _exit_failed(job: str, workdir: str, error: BaseException) -> None:
  from ttc_jax.train import NonFiniteLossError
  from ttc_jax.train.checkpoint import CheckpointError
  from ttc_jax.train.stage import StageError
  if not isinstance(error, (CheckpointError, StageError, NonFiniteLossError)):  # Those say all there is to say.
    traceback.print_exception(error)
  message = " ".join(str(error).split()) or type(error).__name__
  sys.stderr.write(f"\nFATAL job {job!r} (workdir {workdir}) failed: {type(error).__name__}: {message}\n")
  sys.stderr.flush()
  # Orbax leaves non-daemon threads waiting (up to minutes) after a failed save; exit without them.
  deadline = time.monotonic() + _THREAD_GRACE_S
  for t in threading.enumerate():
    if t is not threading.current_thread() and not t.daemon:
      t.join(max(0.0, deadline - time.monotonic()))
  logging.flush()
  os._exit(1)


def main(argv):
  del argv
  logging.get_absl_handler().addFilter(_QuietLibraries())
  config = _CONFIG.value
  workdir = _check_workdir(_WORKDIR.value)
  from ttc_jax import storage
  existed = storage.is_remote(workdir) or os.path.exists(workdir)  # A bucket leaves no empty folders behind.
  job = config.get("job", "")
  try:
    from ttc_jax.jobs import get_job  # After flag parsing: --help stays fast.
    run = get_job(job)
    logging.info("Job %s, workdir %s", job, storage.abspath(workdir))
    run(config, workdir)
  except Exception as e:  # pylint: disable=broad-except
    if not existed:
      _prune_empty_dirs(workdir)
    _exit_failed(job, workdir, e)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
