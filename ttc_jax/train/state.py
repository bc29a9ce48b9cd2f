"""The train state pytree and its sharded creation."""
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ttc_jax.parallel import replicated


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied.
  params: Any
  opt_state: Any


def state_shardings(tx: optax.GradientTransformation, params_abstract: Any, param_shardings: Any,
                    mesh: Mesh) -> TrainState:
  """Shardings for the whole state: optimizer moments follow their parameter."""
  opt_abstract = jax.eval_shape(tx.init, params_abstract)
  opt_shardings = optax.tree_map_params(
      tx, lambda _, sharding: sharding, opt_abstract, param_shardings,
      transform_non_params=lambda _: replicated(mesh))
  return TrainState(step=replicated(mesh), params=param_shardings, opt_state=opt_shardings)


def create_state(params: Any, tx: optax.GradientTransformation, shardings: TrainState) -> TrainState:
  """Builds the optimizer state directly in its sharded layout."""
  init = jax.jit(lambda p: TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=tx.init(p)),
                 out_shardings=shardings)
  return init(params)
