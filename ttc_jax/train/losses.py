"""Loss functions for the shared training loop.

Every loss returns a `LossOutput` holding a *sum* over its targets and the
number of targets, so gradient accumulation over microbatches of any size is
exact: the step divides the summed gradient by the summed weight.
"""
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class LossOutput:
  loss_sum: jax.Array  # float32 scalar: sum of per-target losses.
  weight: jax.Array  # float32 scalar: number of targets in the sum.
  metrics: dict[str, jax.Array]  # Extra per-batch sums, divided by `weight` when logged.


LossFn = Callable[[Any, dict[str, jax.Array], jax.Array], LossOutput]


def next_token_loss(model) -> LossFn:
  """Cross-entropy of each masked token given the tokens before it.

  batch["tokens"]: int32[B, T]; batch["loss_mask"]: int32[B, T], 1 where token t
  is a target (predicted from position t-1).
  """

  def loss_fn(params, batch, rng):
    del rng  # The policy has no dropout; kept for losses that sample.
    tokens_BxT = batch["tokens"]
    out = model.apply(params, tokens_BxT[:, :-1])
    targets_BxT1 = tokens_BxT[:, 1:]
    mask_BxT1 = batch["loss_mask"][:, 1:].astype(jnp.float32)
    ce_BxT1 = optax.softmax_cross_entropy_with_integer_labels(out.logits_BxTxV, targets_BxT1)
    correct = (jnp.argmax(out.logits_BxTxV, -1) == targets_BxT1).astype(jnp.float32)
    return LossOutput(loss_sum=jnp.sum(ce_BxT1 * mask_BxT1), weight=jnp.sum(mask_BxT1),
                      metrics={"token_accuracy": jnp.sum(correct * mask_BxT1)})

  return loss_fn
