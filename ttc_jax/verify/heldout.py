"""Held-out evaluation of a verifier: the training loss and metrics on examples it never saw.

Next to the model's BCE it reports two references that make the number readable:
`baseline_bce`, a constant prediction of the mean training target (what a verifier
that ignores the solution gets), and `entropy_floor`, the BCE of predicting every
soft target exactly (0 for hard ORM labels; > 0 for soft MC labels).
"""
from typing import Sequence

import numpy as np

from ttc_jax.train.evaluate import loss_sums
from ttc_jax.verify.losses import value_loss


def _bce(p: np.ndarray, t: np.ndarray) -> np.ndarray:
  p = np.clip(p, 1e-7, 1 - 1e-7)
  return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def evaluate_examples(model, params, examples: Sequence[dict], *, batch_size: int,
                      train_mean_target: float) -> dict:
  """Mean BCE / accuracy / abs_error over every target of `examples`, plus the two references."""
  if not examples:
    return {"targets": 0}
  sums = loss_sums(value_loss(model), params, examples, batch_size=batch_size)
  targets = np.concatenate([e["value_target"][e["value_mask"] > 0] for e in examples])
  n = sums.pop("weight")
  result = {"bce": sums.pop("loss_sum") / n, **{name: value / n for name, value in sums.items()}}
  result.update(targets=int(n), examples=len(examples), mean_target=float(targets.mean()),
                baseline_bce=float(_bce(np.full_like(targets, train_mean_target), targets).mean()),
                entropy_floor=float(_bce(targets, targets).mean()))
  return result


def mean_target(examples: Sequence[dict]) -> float:
  total = sum(float(e["value_target"][e["value_mask"] > 0].sum()) for e in examples)
  count = sum(int(e["value_mask"].sum()) for e in examples)
  return total / max(count, 1)
