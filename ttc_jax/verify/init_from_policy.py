"""A verifier starts as the policy: every shared parameter is copied, only `value_head` is new.

The verifier has the policy's ModelConfig with `scalar_head=True, lm_head=False`,
so its tree is the policy's (minus an untied `unembed`) plus `value_head`.
"""
from typing import Any, Callable

import flax.linen as nn
import jax
from absl import logging
from flax import traverse_util

from ttc_jax import export


def overlay_params(fresh: Any, policy: Any) -> tuple[Any, list[str]]:
  """`fresh` with every leaf that `policy` also has replaced by the policy's value.

  Copied leaves take the sharding of the `fresh` leaf they replace (the verifier's
  layout). Returns (params, names of the leaves kept from `fresh`). A shared leaf
  whose shape or dtype differs raises: the two models would not be the same network.
  """
  fresh_flat = traverse_util.flatten_dict(fresh, sep="/")
  policy_flat = traverse_util.flatten_dict(policy, sep="/")
  out, kept = {}, []
  for name, leaf in fresh_flat.items():
    if name not in policy_flat:
      out[name] = leaf
      kept.append(name)
      continue
    src = policy_flat[name]
    if src.shape != leaf.shape or src.dtype != leaf.dtype:
      raise ValueError(f"policy parameter {name} is {src.dtype}{list(src.shape)} but the verifier's is "
                       f"{leaf.dtype}{list(leaf.shape)}: the verifier must share the policy's model config")
    out[name] = jax.device_put(src, leaf.sharding)
  return traverse_util.unflatten_dict(out, sep="/"), kept


def policy_initializer(policy_path: str, mesh, init_fn: Callable[[jax.Array], Any], rng: jax.Array
                       ) -> Callable[[Any], Any]:
  """`initial_params` for `train.train`: param_shardings -> verifier params copied from the policy.

  The verifier tree is created sharded (`init_fn` jitted with `out_shardings`), then
  every leaf the policy has is overwritten; `value_head` keeps its fresh init. The
  policy (a stage or export directory) is loaded only when called, i.e. only when
  training starts fresh, never on resume.
  """

  def initial_params(param_shardings):
    fresh = jax.jit(lambda r: nn.unbox(init_fn(r)), out_shardings=param_shardings)(rng)
    policy = export.load_model(policy_path, mesh)
    params, kept = overlay_params(fresh, policy.params)
    logging.info("Initialised from the policy at %s (step %s); new parameters: %s", policy_path,
                 policy.manifest.get("step"), ", ".join(kept))
    return params

  return initial_params
