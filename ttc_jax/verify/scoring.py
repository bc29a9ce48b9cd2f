"""Scoring solutions with a verifier: per-step probabilities, then one score per solution.

  scores = score_steps(model, params, tokenizer, prompts, step_lists, batch_size=64)
  best = max(range(n), key=lambda i: aggregate(scores[i], "last"))
  scores = score_steps(qwen.model, qwen.params, qwen.tokenizer, questions, step_lists, batch_size=8,
                       fmt=get_format("qwen_prm"))   # an off-the-shelf PRM (verify.formats)

Fixed shapes: rows go to the device `batch_size` at a time (short chunks padded
with empty rows), right-padded to a length bucket, so one compiled function per
(batch_size, bucket) serves every call. Rows are independent and attention is
causal, so a solution's scores do not depend on what it is batched with. Under a mesh
(`jax.set_mesh`) the rows of a call are split over its data axis (`parallel.batches`).
"""
import functools
import math
from typing import Sequence

import jax
import numpy as np

from ttc_jax.decode.prompts import DEFAULT_BUCKETS, bucket_length
from ttc_jax.parallel.batches import fetch, padded_rows, place_rows
from ttc_jax.verify.formats import TtcFormat, VerifierFormat
from ttc_jax.verify.heads import Reader

AGGREGATIONS = ("last", "min", "prod")


@functools.lru_cache(maxsize=16)
def _jit_probs(model, reader: Reader):
  """float32[B, K] step probabilities at read positions; cached per (model, head) to reuse compilations."""
  return jax.jit(lambda params, tokens_BxL, read_BxK: reader.probs(model.apply(params, tokens_BxL, read_BxK=read_BxK)))


def _reads_bucket(n: int) -> int:
  return max(8, 1 << (n - 1).bit_length())  # Powers of two: few compilations however many steps.


def score_steps(model, params, tokenizer, prompts: Sequence[str], step_lists: Sequence[Sequence[str]], *,
                batch_size: int, buckets: Sequence[int] = DEFAULT_BUCKETS,
                fmt: VerifierFormat = TtcFormat()) -> list[list[float]]:
  """Verifier probability at the end of every step of every solution.

  Args:
    model: a `Transformer` with the head `fmt` reads (this project's: scalar_head=True).
    prompts: one per solution, repeated as needed: the policy's prompt text
      (`synthetic.prompt_text`) for the `ttc` format, the question for off-the-shelf formats.
    step_lists: the solutions as step texts without delimiters (partial solutions are fine).
    batch_size: rows per device call.
    fmt: the verifier's input layout and head (`verify.formats`).
  Returns:
    scores[i][j] = P(correct | prompts[i], step_lists[i][:j+1]), floats in [0, 1];
    [] for a solution with no steps.
  """
  reader = fmt.reader(tokenizer)
  reader.check_model(model.cfg)
  if len(prompts) != len(step_lists):
    raise ValueError(f"{len(prompts)} prompts but {len(step_lists)} step lists")
  encoded = [fmt.encode(tokenizer, p, s) for p, s in zip(prompts, step_lists)]
  # Similar lengths share a chunk, so few rows pay for a long bucket.
  order = sorted((i for i, (_, ends) in enumerate(encoded) if ends), key=lambda i: len(encoded[i][0]))
  probs_fn = _jit_probs(model, reader)
  call_rows = padded_rows(batch_size)
  pending = []  # Dispatch every chunk before reading any back: the device never waits on the host.
  for start in range(0, len(order), batch_size):
    chunk = order[start:start + batch_size]
    length = bucket_length(max(len(encoded[i][0]) for i in chunk), buckets)
    tokens_BxL = np.full((call_rows, length), tokenizer.pad_id, np.int32)
    reads_BxK = np.zeros((call_rows, _reads_bucket(max(len(encoded[i][1]) for i in chunk))), np.int32)
    for row, i in enumerate(chunk):
      tokens_BxL[row, :len(encoded[i][0])] = encoded[i][0]
      reads_BxK[row, :len(encoded[i][1])] = encoded[i][1]
    pending.append((chunk, probs_fn(params, *place_rows((tokens_BxL, reads_BxK)))))
  scores: list[list[float]] = [[] for _ in encoded]
  for chunk, probs in pending:
    probs_BxK = fetch(probs)
    for row, i in enumerate(chunk):
      scores[i] = probs_BxK[row, :len(encoded[i][1])].astype(float).tolist()
  return scores


def aggregate(step_scores: Sequence[float], how: str = "last") -> float:
  """One score per solution from its step scores; no steps -> 0.0.

  "last" (the paper's choice with soft MC labels): the prediction at the final step;
  "min" / "prod": the weakest step / the product over steps.
  """
  if how not in AGGREGATIONS:
    raise ValueError(f"aggregation {how!r} must be one of {AGGREGATIONS}")
  if not step_scores:
    return 0.0
  if how == "last":
    return float(step_scores[-1])
  if how == "min":
    return float(min(step_scores))
  return float(math.prod(step_scores))
