"""Orbax checkpoints of the train state together with the data iterator state.

Saves are asynchronous and atomic (Orbax writes to a temporary directory and
renames it on commit locally; on gs:// it writes the step in place and marks it
committed with a last `commit_success.txt` object, as object stores cannot rename),
so a kill mid-write leaves the previous step restorable.
The grain iterator state is captured at save time, so a resumed run reads
exactly the batches an uninterrupted run would.

Failures never hang and always name the path: the directory is probed for
writes (and free space) before training starts and before every save, an error
in Orbax's background save thread is raised on the main thread at the next
step, and waiting for a save is bounded by `timeout_s`.
A checkpoint that does not restore (a missing blob or `_METADATA`) is moved
aside to `<dir>.damaged/` and the newest older step that restores is used.
"""
import os
import shutil
import socket
import tempfile
import threading
import time
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from ttc_jax import storage


class CheckpointError(RuntimeError):
  """A checkpoint could not be written or read; the message names the directory and step."""


def _brief(e: BaseException) -> str:
  """The first line of an error, bounded: Orbax errors can run to hundreds of lines."""
  lines = [line for line in str(e).splitlines() if line.strip()]
  text = lines[0] if lines else ""
  text = text if len(text) <= 300 else text[:300] + "..."
  return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _dotted(path) -> str:
  return ".".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def tensor_mismatches(step_dir: str, abstract: Any, limit: int = 3) -> str:
  """Names the tensors of `abstract` whose stored shape differs or that the step lacks ("" if none, or unreadable).

  Orbax's own errors name neither the tensor nor the checkpoint.
  """
  try:
    stored = ocp.PyTreeCheckpointHandler().metadata(epath.Path(step_dir) / "state").tree
  except Exception:  # pylint: disable=broad-except
    return ""
  found = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(abstract)[0]:
    node = stored
    for k in path:
      key = getattr(k, "key", getattr(k, "name", getattr(k, "idx", None)))
      if isinstance(node, dict):
        node = node.get(key, node.get(str(key)))
      elif isinstance(node, (list, tuple)) and isinstance(key, int) and key < len(node):
        node = node[key]
      else:
        node = None
      if node is None:
        break
    if node is None:
      found.append(f"{_dotted(path)} missing")
    elif hasattr(node, "shape") and tuple(node.shape) != tuple(leaf.shape):
      found.append(f"{_dotted(path)} stored {tuple(node.shape)}, wanted {tuple(leaf.shape)}")
  if not found:
    return ""
  more = f" and {len(found) - limit} more" if len(found) > limit else ""
  return f"tensors that differ: {'; '.join(found[:limit])}{more}"


def _restore_failure(step_dir: str, abstract: Any, e: BaseException) -> str:
  mismatches = tensor_mismatches(step_dir, abstract)
  return f"{_brief(e)}{'; ' + mismatches if mismatches else ''}"


def check_writable(directory: str, step: int | None = None) -> None:
  """Creates `directory` and writes a probe file in it, so a read-only folder fails on the main thread."""
  try:
    if storage.is_remote(directory):  # One small object, written and deleted: the bucket takes writes.
      # Named per host and process: every host of a slice probes the same folder at once.
      probe = storage.join(directory, f".write-probe-{socket.gethostname()}-{os.getpid()}")
      storage.write_bytes(probe, b"probe")
      storage.remove(probe)
      return
    os.makedirs(directory, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
    try:
      os.write(fd, b"probe")
    finally:
      os.close(fd)
      os.remove(probe)
  except OSError as e:
    when = f" (saving step {step})" if step is not None else ""
    raise CheckpointError(f"Checkpoint directory {directory} is not writable{when}: {_brief(e)}. Fix its "
                          "permissions, free disk space or remove what is in the way, then re-run to resume") from None


def check_free_space(directory: str, nbytes: int, step: int) -> None:
  """Raises CheckpointError when the disk under `directory` has less room than a checkpoint of `nbytes`."""
  if storage.is_remote(directory):  # A bucket has no free-space figure to check.
    return
  free = shutil.disk_usage(directory).free
  if free < nbytes:
    raise CheckpointError(f"Not enough disk space under {directory} for the checkpoint of step {step}: it needs about "
                          f"{nbytes / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free. Free some space and re-run to "
                          "resume from the last committed step")


class Checkpointer:
  """Thin wrapper over `ocp.CheckpointManager` for (train state, data iterator).

  `timeout_s` bounds every wait for an in-flight save: past it, `CheckpointError`.
  """

  def __init__(self, directory: str, *, keep: int, save_every: int, async_save: bool = True,
               timeout_s: float = 1800.0):
    check_writable(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True,
                                           enable_async_checkpointing=async_save)
    self._directory = directory
    self._timeout_s = timeout_s
    self._in_flight: int | None = None  # The step whose (async) save was started last.
    self._manager = ocp.CheckpointManager(directory, options=options)

  @property
  def directory(self) -> str:
    return self._directory

  @property
  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def _save_failed(self, step: int | None, e: BaseException) -> CheckpointError:
    steps = sorted({s for s in (self._in_flight, step) if s is not None})
    which = "of step " + " or ".join(map(str, steps)) if steps else "in flight"
    return CheckpointError(f"Saving the checkpoint {which} under {self._directory} failed: {_brief(e)}. "
                           "The last committed step is kept; fix the disk (permissions, space) and re-run to resume")

  def save(self, step: int, state: Any, data_iter: Any | None, *, force: bool = False) -> bool:
    """Starts saving `step`; an error of the previous async save is raised here, as CheckpointError."""
    items = {"state": ocp.args.StandardSave(state)}
    if data_iter is not None:
      items["data"] = grain.checkpoint.CheckpointSave(data_iter)
    self.wait()  # Bounded: Orbax would otherwise wait for the previous save without a limit.
    # Orbax reports a folder it cannot write only from its save threads, and the main thread then
    # waits out its 300 s coordination timeout: check here, where the error can name the step.
    check_writable(self._directory, step)
    nbytes = sum(getattr(x, "nbytes", 0) for x in jax.tree_util.tree_leaves(state))
    check_free_space(self._directory, nbytes, step)
    try:
      saved = self._manager.save(step, args=ocp.args.Composite(**items), force=force)
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_failed(step, e) from e
    if saved:
      self._in_flight = step
    return saved

  def check(self) -> None:
    """Raises CheckpointError if a background save has failed; cheap, call it every step."""
    try:
      self._manager.check_for_errors()
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_failed(self._in_flight, e) from e
    if self._in_flight is not None and not self._manager.is_saving_in_progress():
      self.wait()  # Finished (or failed): returns at once, raising a failure of the commit thread.

  def restore(self, abstract_state: Any, data_iter: Any | None, step: int | None = None) -> tuple[Any, int]:
    """Restores state (laid out like `abstract_state`, shardings included) and the iterator in place.

    Without `step`, tries the committed steps newest first: one that fails to restore is logged as a
    warning and moved to `<dir>.damaged/<step>` once an older step has restored (so a re-save of that
    step succeeds). If none restores, raises CheckpointError naming the directory and nothing is moved.
    """
    steps = sorted(self._manager.all_steps(), reverse=True) if step is None else [step]
    failed = []
    for s in steps:
      items = {"state": ocp.args.StandardRestore(abstract_state)}
      if data_iter is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
      try:
        restored = self._manager.restore(s, args=ocp.args.Composite(**items))
      except Exception as e:  # pylint: disable=broad-except
        step_dir = os.path.join(self._directory, str(s))
        failed.append((s, _restore_failure(step_dir, abstract_state, e)))
        logging.warning("Checkpoint %s does not restore (%s); skipping step %d", step_dir, failed[-1][1], s)
        continue
      if failed:
        self._move_aside([f for f, _ in failed])
        logging.warning("Resuming from step %d of %s: skipped damaged step(s) %s (moved to %s)", s, self._directory,
                        ", ".join(str(f) for f, _ in failed), self._directory + ".damaged")
      logging.info("Restored checkpoint at step %d from %s", s, self._directory)
      return restored["state"], s
    details = "; ".join(f"step {s}: {why}" for s, why in failed)
    raise CheckpointError(f"No checkpoint under {self._directory} restores ({details or 'no committed step'}). If the "
                          "model config changed, use another stage; otherwise move the directory away to start over")

  def _move_aside(self, steps: list[int]) -> None:
    self.wait()
    if jax.process_index() == 0:  # One host moves (the folder is shared); the others wait for it.
      damaged = self._directory + ".damaged"
      storage.makedirs(damaged)
      for s in steps:
        target = os.path.join(damaged, str(s))
        if storage.exists(target):
          target = f"{target}.{int(time.time())}"
        storage.replace(os.path.join(self._directory, str(s)), target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("ttc_jax.checkpoint_move_aside")
    self._manager.reload()

  def wait(self) -> None:
    """Waits for in-flight saves, at most `timeout_s`; a failed or stuck save raises CheckpointError."""
    if self._in_flight is None:
      return
    outcome: list[BaseException | None] = []

    def wait_in_background():
      try:
        self._manager.wait_until_finished()
        outcome.append(None)
      except BaseException as e:  # pylint: disable=broad-except
        outcome.append(e)

    waiter = threading.Thread(target=wait_in_background, name="checkpoint_wait", daemon=True)
    waiter.start()
    waiter.join(self._timeout_s)
    step, self._in_flight = self._in_flight, None
    if not outcome:
      raise CheckpointError(f"Saving the checkpoint of step {step} under {self._directory} did not finish within "
                            f"{self._timeout_s:.0f} s; the disk may be full, read-only or hung")
    if outcome[0] is not None:
      raise self._save_failed(step, outcome[0]) from outcome[0]

  def close(self) -> None:
    try:
      self.wait()
    finally:
      try:
        self._manager.close()
      except Exception as e:  # pylint: disable=broad-except
        # Orbax re-raises a save error that wait() has already reported (named, as CheckpointError).
        logging.warning("Closing the checkpoints under %s: %s", self._directory, _brief(e))


def abstract_with_shardings(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs carrying target shardings: what Orbax restores into."""
  return jax.tree_util.tree_map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def restore_params(directory: str, abstract_params: Any, step: int | None = None) -> tuple[Any, int]:
  """Restores only the parameters of a training checkpoint (no optimizer state), resharded as asked.

  `abstract_params` holds ShapeDtypeStructs with the target shardings, so a
  checkpoint written on one mesh loads onto any other. A step that does not
  restore raises CheckpointError naming it: loading a finished model never falls
  back to an older step silently (re-running its training job does, with a warning).
  """
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No committed checkpoint under {directory}: train first, or check the path")
  item = {"params": abstract_params}
  step_dir = os.path.join(directory, str(step))
  mismatches = tensor_mismatches(step_dir, item)
  if mismatches:  # A partial restore would skip a missing tensor silently.
    manager.close()
    raise CheckpointError(f"Checkpoint {step_dir} does not hold the model asked for ({mismatches}); check the model "
                          "config (model_config.json) or the path")
  args = ocp.args.PyTreeRestore(item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
                                partial_restore=True)
  try:
    restored = manager.restore(step, args=ocp.args.Composite(state=args))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f"Checkpoint {step_dir} does not restore ({_restore_failure(step_dir, item, e)}); re-run the "
                          "training job of this stage to fall back to an older step, or use another checkpoint") from e
  finally:
    manager.close()
  return restored["state"]["params"], step


def latest_step(directory: str) -> int | None:
  """The newest committed checkpoint step under `directory`, or None (no directory is created)."""
  if not storage.isdir(directory):
    return None
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step()
  manager.close()
  return step
