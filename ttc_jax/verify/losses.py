"""Value-head loss for PRM / ORM training (a `train.LossFn` for the shared loop)."""
import jax
import jax.numpy as jnp
import optax

from ttc_jax.train.losses import LossFn, LossOutput


def value_loss(model) -> LossFn:
  """Binary cross-entropy between sigmoid(value) and soft targets at masked positions.

  batch["tokens"]: int32[B, T]; batch["value_mask"]: int32[B, T] (1 at targets);
  batch["value_target"]: float32[B, T] in [0, 1] (MC step labels or correctness).
  Returns sums over targets (the step divides by `weight`); metrics:
    abs_error: |sigmoid(value) - target|, accuracy: (value > 0) == (target > 0.5).
  """

  def loss_fn(params, batch, rng):
    del rng  # No dropout.
    values_BxT = model.apply(params, batch["tokens"]).values_BxT
    target_BxT = batch["value_target"].astype(jnp.float32)
    mask_BxT = batch["value_mask"].astype(jnp.float32)
    bce_BxT = optax.sigmoid_binary_cross_entropy(values_BxT, target_BxT)
    prob_BxT = jax.nn.sigmoid(values_BxT)
    agree_BxT = ((values_BxT > 0) == (target_BxT > 0.5)).astype(jnp.float32)
    return LossOutput(loss_sum=jnp.sum(bce_BxT * mask_BxT), weight=jnp.sum(mask_BxT),
                      metrics={"abs_error": jnp.sum(jnp.abs(prob_BxT - target_BxT) * mask_BxT),
                               "accuracy": jnp.sum(agree_BxT * mask_BxT)})

  return loss_fn
