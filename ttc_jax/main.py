"""Entry point for every job.

  python -m ttc_jax.main --config=configs/policy.py[:smoke] --workdir=DIR [--config.train.steps=100]

`config.job` selects the job (see ttc_jax/jobs/__init__.py). The config is
locked, so a mistyped `--config.x.y` override fails at flag parsing.
"""
import logging as std_logging
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Job config file (ml_collections).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for this job's inputs and outputs.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(std_logging.Filter):
  """Orbax and grain log every save and restore at INFO; keep the console to our progress lines."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    noisy = ("orbax", "grain", "tensorflow_datasets", "absl/logging")
    return record.levelno >= std_logging.WARNING or not any(n in record.pathname for n in noisy)


def main(argv):
  del argv
  logging.get_absl_handler().addFilter(_QuietLibraries())
  config = _CONFIG.value
  from ttc_jax.jobs import get_job  # After flag parsing: --help stays fast.
  run = get_job(config.get("job", ""))
  os.makedirs(_WORKDIR.value, exist_ok=True)
  logging.info("Job %s, workdir %s", config.job, os.path.abspath(_WORKDIR.value))
  run(config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
