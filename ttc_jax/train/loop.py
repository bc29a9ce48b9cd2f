"""The one training loop: policy, PRM/ORM and revision model differ only in loss and batches.

Resumes from the latest committed checkpoint that restores (state + data iterator), reads
metrics one step late so the host never stalls dispatch, stops on a non-finite
loss before anything non-finite is checkpointed, stops at the next step when a
background save fails (`CheckpointError`), and saves at the end.
"""
import os
from typing import Any, Callable, Iterator

import flax.linen as nn
import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

from ttc_jax import storage
from ttc_jax.models.config import ModelConfig
from ttc_jax.parallel import RULES, activate, data_parallel_size, host_batch_to_global, logical_shardings
from ttc_jax.train import memory
from ttc_jax.train.checkpoint import Checkpointer, abstract_with_shardings
from ttc_jax.train.config import TrainConfig
from ttc_jax.train.losses import LossFn
from ttc_jax.train.metrics import InputWaitTimer, MetricsWriter
from ttc_jax.train.optimizer import make_optimizer
from ttc_jax.train.state import TrainState, create_state, state_shardings
from ttc_jax.train.step import jit_train_step

StepCallback = Callable[[int, TrainState, "Checkpointer"], None]


class NonFiniteLossError(FloatingPointError):
  pass


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(storage.abspath(workdir), "checkpoints")


def train(*, init_fn: Callable[[jax.Array], Any], loss_fn: LossFn, cfg: TrainConfig, data_iter: Iterator,
          mesh: Mesh, workdir: str, seed: int, rules=RULES, on_step_end: StepCallback | None = None,
          initial_params: Callable[[Any], Any] | None = None, model_cfg: ModelConfig | None = None) -> TrainState:
  """Trains to `cfg.steps`, resuming if `workdir` holds checkpoints.

  Args:
    init_fn: rng -> params with logical partitioning metadata (e.g. `model.init`);
      only run when there is no checkpoint to resume from.
    loss_fn: (params, batch, rng) -> LossOutput.
    data_iter: a grain DatasetIterator of host-local batches (its state is checkpointed).
    on_step_end: optional hook called after each step is dispatched (profiling, tests).
    initial_params: optional `param_shardings -> params` used instead of `init_fn`'s
      values when starting fresh (e.g. a reward model initialised from the policy);
      `init_fn` still defines the parameter tree and its shardings.
    model_cfg: the model's config, for the memory check before anything is compiled
      (`memory.check_fits`); without it only the train state is counted.
  Returns:
    The final train state (sharded over `mesh`).
  """
  tx, schedule = make_optimizer(cfg)
  base_rng = jax.random.key(seed)
  init_rng, step_rng = jax.random.split(base_rng)
  boxed = jax.eval_shape(init_fn, init_rng)
  param_shardings = logical_shardings(boxed, mesh, rules)
  shardings = state_shardings(tx, nn.unbox(boxed), param_shardings, mesh)
  _check_memory(boxed, tx, shardings, cfg, model_cfg, mesh)
  ckpt = Checkpointer(checkpoint_dir(workdir), keep=cfg.keep_checkpoints, save_every=cfg.checkpoint_every,
                      async_save=cfg.async_checkpoint, timeout_s=cfg.checkpoint_timeout_s)

  # Created outside `activate`: flax's DenseGeneral init reshapes kernels, which
  # clashes with activation sharding hints.
  if ckpt.latest_step is not None and ckpt.latest_step > cfg.steps:
    ckpt.close()
    raise ValueError(f"{checkpoint_dir(workdir)} holds a checkpoint at step {ckpt.latest_step}, past "
                     f"train.steps={cfg.steps}: this directory belongs to a longer run; use another workdir / stage")
  if ckpt.latest_step is not None:
    abstract = jax.eval_shape(lambda p: TrainState(step=np.int32(0), params=p, opt_state=tx.init(p)), nn.unbox(boxed))
    try:  # Falls back past a damaged newest step, with a warning naming it.
      state, start = ckpt.restore(abstract_with_shardings(abstract, shardings), data_iter)
    except BaseException:
      _close_quietly(ckpt)
      raise
  else:
    if initial_params is not None:
      params = initial_params(param_shardings)
    else:
      params = jax.jit(lambda r: nn.unbox(init_fn(r)), out_shardings=param_shardings)(init_rng)
    state, start = create_state(params, tx, shardings), 0
  if start >= cfg.steps:
    logging.info("Training already finished at step %d; nothing to do.", start)
    ckpt.close()
    return state

  with activate(mesh, rules):
    step_fn = jit_train_step(loss_fn, tx, schedule, cfg.grad_accum_steps, shardings, mesh)
    writer = MetricsWriter(workdir, resume_step=start, total_steps=cfg.steps)
    pending = None  # (step, device metrics) of the step before, read one step late.
    timer = InputWaitTimer()
    log = lambda step, metrics: _check_and_log(step, metrics, cfg, writer, timer)
    try:
      for step in range(start + 1, cfg.steps + 1):
        with timer.waiting():
          batch = host_batch_to_global(next(data_iter), mesh, rules)
        state, metrics = step_fn(state, batch, step_rng)
        if on_step_end is not None:
          on_step_end(step, state, ckpt)
        ckpt.check()  # A failed background save stops the run now, not at exit.
        if pending is not None:
          log(*pending)
        pending = (step, metrics)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
          log(*pending)  # Never checkpoint a non-finite state.
          pending = None
          writer.flush()  # The log reaches the step being checkpointed (on a bucket, an upload), so a kill loses none.
          ckpt.save(step, state, data_iter, force=step == cfg.steps)
      if pending is not None:
        log(*pending)
    except BaseException:
      _close_quietly(ckpt)  # Still commits in-flight saves; the first error is the one reported.
      raise
    else:
      ckpt.close()  # Waits for in-flight saves: finished work is never lost.
    finally:
      writer.close()
  return state


def _check_memory(boxed, tx, shardings: TrainState, cfg: TrainConfig, model_cfg: ModelConfig | None, mesh: Mesh):
  """Raises memory.TrainMemoryError, before any compile, when the step cannot fit on a device."""
  params = nn.unbox(boxed)
  param_bytes = memory.per_device_bytes(params, shardings.params)
  opt_bytes = memory.per_device_bytes(jax.eval_shape(tx.init, params), shardings.opt_state)
  limit = memory.device_limit_bytes(cfg)
  est = memory.check_fits(model_cfg, cfg, params=param_bytes, optimizer=opt_bytes,
                          data_parallel=data_parallel_size(mesh), tensor_parallel=mesh.shape.get("tensor", 1),
                          limit=limit)
  logging.info("Training memory per device, estimated: %s%s", est.describe(),
               f" of {limit / memory.GIB:.1f} GiB" if limit else "")


def _close_quietly(ckpt: Checkpointer) -> None:
  try:
    ckpt.close()
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("While stopping on an earlier error: %s", e)


def _check_and_log(step: int, metrics: dict[str, jax.Array], cfg: TrainConfig, writer: MetricsWriter,
                   timer: InputWaitTimer) -> None:
  host = jax.device_get(metrics)
  if not host["finite"]:
    raise NonFiniteLossError(
        f"Non-finite loss at step {step} (loss={host['loss']}, grad_norm={host['grad_norm']}); "
        "stopping before it is checkpointed. Lower train.learning_rate or check the data.")
  if step % cfg.log_every == 0 or step == cfg.steps:
    writer.write(step, {**{k: v for k, v in host.items() if k != "finite"}, **timer.take()})
