"""A training stage directory: one writer at a time (`<stage>/.lock`, `ttc_jax.locks`), and its model
fixed once it has checkpoints."""
import json
import os
from typing import Any, Mapping

from ttc_jax import locks, storage
from ttc_jax.provenance import read_json
from ttc_jax.train.checkpoint import latest_step

LOCK_NAME = ".lock"
# Model fields that change how the same parameters are computed (memory, speed), not the model:
# a run may resume with other values (and stages written before a field existed lack it).
HOW_COMPUTED = ("remat", "attention_impl", "decode_attention_impl")
StageError = locks.LockError  # A stage in use by another run, or holding a model other than the one asked for.


def acquire(stage_dir: str, what: str) -> str:
  """Takes `<stage_dir>/.lock` for this process, or raises StageError naming the holder; returns its path."""
  return locks.acquire(os.path.join(stage_dir, LOCK_NAME), f"{what} ({stage_dir})")


release = locks.release


def locked(stage_dir: str, what: str, enabled: bool = True):
  """Holds the stage's lock for the with-block (`enabled=False`: a no-op, e.g. on non-lead hosts)."""
  return locks.locked(os.path.join(stage_dir, LOCK_NAME), f"{what} ({stage_dir})", enabled)


def check_model_config(stage_dir: str, model: Mapping[str, Any], what: str, checkpoints: str) -> None:
  """Refuses to reuse a stage with checkpoints for a different model, naming every differing field.

  Called before anything in the stage is written, so the finished stage stays usable.
  """
  path = os.path.join(stage_dir, "model_config.json")
  if not storage.exists(path) or latest_step(checkpoints) is None:
    return
  old = read_json(path, "it records the model of the stage's checkpoints")
  model = json.loads(json.dumps(dict(model)))  # Tuples read back as lists.
  diffs = [f"model.{k}: {old.get(k, '(unset)')!r} in the stage, {model.get(k, '(unset)')!r} now"
           for k in sorted(set(old) | set(model) - set(HOW_COMPUTED)) if old.get(k) != model.get(k)]
  if diffs:
    raise StageError(f"{what} ({stage_dir}) already holds checkpoints of another model ({'; '.join(diffs)}). "
                     "Nothing was changed: train into another stage or workdir, or set the model back")
