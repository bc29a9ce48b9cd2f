"""Left-padding prompts into a few length buckets so nothing recompiles per problem."""
from typing import Sequence

import numpy as np

DEFAULT_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048)


def bucket_length(n: int, buckets: Sequence[int] = DEFAULT_BUCKETS) -> int:
  for b in buckets:
    if n <= b:
      return b
  raise ValueError(f"prompt of {n} tokens is longer than the largest bucket {max(buckets)}")


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, buckets: Sequence[int] = DEFAULT_BUCKETS,
             batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Returns (tokens int32[B, L], valid bool[B, L]) with L the bucket of the longest prompt.

  With `batch_size`, adds all-padding rows up to it (a fixed batch shape);
  those rows produce output that callers drop.
  """
  rows = len(prompts) if batch_size is None else batch_size
  if rows < len(prompts):
    raise ValueError(f"{len(prompts)} prompts do not fit batch_size={batch_size}")
  length = bucket_length(max(len(p) for p in prompts), buckets)
  tokens = np.full((rows, length), pad_id, np.int32)
  valid = np.zeros((rows, length), bool)
  for i, p in enumerate(prompts):
    if len(p):
      tokens[i, length - len(p):] = p
      valid[i, length - len(p):] = True
  return tokens, valid
