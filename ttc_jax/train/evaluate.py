"""A training loss summed over fixed examples (held-out evaluation), in fixed-shape batches."""
from typing import Sequence

import jax
import numpy as np

from ttc_jax.train.losses import LossFn


def loss_sums(loss_fn: LossFn, params, examples: Sequence[dict[str, np.ndarray]], *, batch_size: int
              ) -> dict[str, float]:
  """{"loss_sum", "weight", <metric>: sum} of `loss_fn` over `examples` (dicts of [T] arrays).

  The last batch is filled with all-zero rows: their mask is 0, so they add nothing.
  Divide by "weight" for means. `loss_fn` is jitted once per call site (pass the same
  function object to reuse the compilation).
  """
  if not examples:
    return {"loss_sum": 0.0, "weight": 0.0}
  jitted = jax.jit(loss_fn)
  empty = {k: np.zeros_like(v) for k, v in examples[0].items()}
  rows = list(examples) + [empty] * (-len(examples) % batch_size)
  pending = []  # Dispatch every batch before reading any back.
  for start in range(0, len(rows), batch_size):
    batch = {k: np.stack([r[k] for r in rows[start:start + batch_size]]) for k in empty}
    pending.append(jitted(params, batch, None))
  sums: dict[str, float] = {"loss_sum": 0.0, "weight": 0.0}
  for out in jax.device_get(pending):
    for name, value in [("loss_sum", out.loss_sum), ("weight", out.weight), *out.metrics.items()]:
      sums[name] = sums.get(name, 0.0) + float(value)
  return sums
