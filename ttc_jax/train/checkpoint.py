"""Orbax checkpoints of the train state together with the data iterator state.

Saves are asynchronous and atomic (Orbax writes to a temporary directory and
renames it on commit), so a kill mid-write leaves the previous step restorable.
The grain iterator state is captured at save time, so a resumed run reads
exactly the batches an uninterrupted run would.
"""
import os
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging


class Checkpointer:
  """Thin wrapper over `ocp.CheckpointManager` for (train state, data iterator)."""

  def __init__(self, directory: str, *, keep: int, save_every: int, async_save: bool = True):
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True,
                                           enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(directory, options=options)

  @property
  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_iter: Any | None, *, force: bool = False) -> bool:
    items = {"state": ocp.args.StandardSave(state)}
    if data_iter is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    return self._manager.save(step, args=ocp.args.Composite(**items), force=force)

  def restore(self, abstract_state: Any, data_iter: Any | None, step: int | None = None) -> tuple[Any, int]:
    """Restores state (laid out like `abstract_state`, shardings included) and the iterator in place."""
    step = self._manager.latest_step() if step is None else step
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iter is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    logging.info("Restored checkpoint at step %d from %s", step, self._manager.directory)
    return restored["state"], step

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def abstract_with_shardings(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs carrying target shardings: what Orbax restores into."""
  return jax.tree_util.tree_map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def restore_params(directory: str, abstract_params: Any, step: int | None = None) -> tuple[Any, int]:
  """Restores only the parameters of a training checkpoint (no optimizer state), resharded as asked.

  `abstract_params` holds ShapeDtypeStructs with the target shardings, so a
  checkpoint written on one mesh loads onto any other.
  """
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No committed checkpoint under {directory}: train first, or check the path")
  item = {"params": abstract_params}
  args = ocp.args.PyTreeRestore(item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
                                partial_restore=True)
  restored = manager.restore(step, args=ocp.args.Composite(state=args))
  manager.close()
  return restored["state"]["params"], step


def latest_step(directory: str) -> int | None:
  """The newest committed checkpoint step under `directory`, or None (no directory is created)."""
  if not os.path.isdir(directory):
    return None
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step()
  manager.close()
  return step
