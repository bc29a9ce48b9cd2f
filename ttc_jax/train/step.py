"""One pure, jitted update step shared by every model."""
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ttc_jax.parallel import batch_sharding, replicated
from ttc_jax.train.losses import LossFn, LossOutput
from ttc_jax.train.state import TrainState


def _split_microbatches(batch: dict[str, jax.Array], n: int) -> dict[str, jax.Array]:
  # [B, ...] -> [n, B/n, ...]; strided so every microbatch keeps the batch sharding.
  return jax.tree_util.tree_map(lambda x: x.reshape(x.shape[0] // n, n, *x.shape[1:]).swapaxes(0, 1), batch)


def _grads(loss_fn: LossFn, params, batch, rng, accum_steps: int) -> tuple[Any, LossOutput]:
  grad_fn = jax.grad(lambda p, b: (lambda o: (o.loss_sum, o))(loss_fn(p, b, rng)), has_aux=True)
  if accum_steps == 1:
    return grad_fn(params, batch)

  def body(carry, micro):
    grads, out = grad_fn(params, micro)
    return jax.tree_util.tree_map(jnp.add, carry, (grads, out)), None

  micro = _split_microbatches(batch, accum_steps)
  first = jax.tree_util.tree_map(lambda x: x[0], micro)
  zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(grad_fn, params, first))
  (grads, out), _ = jax.lax.scan(body, zeros, micro)
  return grads, out


def train_step(state: TrainState, batch: dict[str, jax.Array], base_rng: jax.Array, *, loss_fn: LossFn,
               tx: optax.GradientTransformation, schedule: optax.Schedule, accum_steps: int):
  """Returns (new state, metrics). The step's randomness is fold_in(base_rng, step)."""
  rng = jax.random.fold_in(base_rng, state.step)
  grads, out = _grads(loss_fn, state.params, batch, rng, accum_steps)
  weight = jnp.maximum(out.weight, 1.0)
  grads = jax.tree_util.tree_map(lambda g: g / weight, grads)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  loss = out.loss_sum / weight
  grad_norm = optax.tree.norm(grads)
  metrics = {"loss": loss, "grad_norm": grad_norm, "learning_rate": schedule(state.step),
             "targets": out.weight, "finite": jnp.isfinite(loss) & jnp.isfinite(grad_norm)}
  metrics.update({k: v / weight for k, v in out.metrics.items()})
  return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def jit_train_step(loss_fn: LossFn, tx, schedule, accum_steps: int, shardings: TrainState, mesh: Mesh):
  """Jitted once, with explicit shardings and the old state donated (updated in place)."""
  step = functools.partial(train_step, loss_fn=loss_fn, tx=tx, schedule=schedule, accum_steps=accum_steps)
  return jax.jit(step, in_shardings=(shardings, batch_sharding(mesh), replicated(mesh)),
                 out_shardings=(shardings, replicated(mesh)), donate_argnums=(0,))
