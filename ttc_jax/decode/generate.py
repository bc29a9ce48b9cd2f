"""Text in, graded-ready text out: chunks prompts into fixed-shape sampler calls."""
import dataclasses
from typing import Sequence

import jax
import numpy as np

from ttc_jax.decode.prompts import DEFAULT_BUCKETS, left_pad
from ttc_jax.decode.sampler import jit_sample
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.parallel.batches import fetch, padded_rows, place_rows
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat


@dataclasses.dataclass(frozen=True)
class Generation:
  text: str  # Decoded new tokens, stop token included (EOS is dropped by decoding).
  num_tokens: int  # New tokens sampled, stop token included.
  stop_reason: int  # decode.STOP_*.
  token_ids: tuple[int, ...] = ()  # The new tokens themselves: steps are split from these, not from re-encoding.


def encode_prompt(tokenizer, prompt: str) -> list[int]:
  """Prompt ids exactly as in training examples: [bos] + encode(prompt) (no bos where the tokenizer has none)."""
  return tokenizer.prompt_ids(prompt)


def generate(model, params, tokenizer, prompts: Sequence[str], rng: jax.Array, *, num_samples: int,
             cfg: SamplingConfig, batch_size: int, buckets: Sequence[int] = DEFAULT_BUCKETS,
             step_format: StepFormat = LINE_STEPS, shared_prefix: bool = True) -> list[list[Generation]]:
  """`num_samples` generations for every prompt.

  Prompts go to the device `batch_size` at a time (the last chunk is padded
  with empty rows, so every call has one shape per length bucket). Chunk i
  uses key fold_in(rng, i): results do not depend on anything but the inputs.
  `step_format` ends a row at a step when cfg.stop_at_newline is set.
  Under a mesh (`jax.set_mesh`) each call's rows are split over its data axis, padded to a multiple
  of the data-parallel size (`parallel.batches`); the generations are the same as on one device.
  `shared_prefix`: a prompt's samples read one stored copy of its keys and values (`decode.sampler.sample`).
  """
  return generate_from_ids(model, params, tokenizer, [encode_prompt(tokenizer, p) for p in prompts], rng,
                           num_samples=num_samples, cfg=cfg, batch_size=batch_size, buckets=buckets,
                           step_format=step_format, shared_prefix=shared_prefix)


def generate_from_ids(model, params, tokenizer, encoded: Sequence[Sequence[int]], rng: jax.Array, *,
                      num_samples: int, cfg: SamplingConfig, batch_size: int,
                      buckets: Sequence[int] = DEFAULT_BUCKETS, step_format: StepFormat = LINE_STEPS,
                      shared_prefix: bool = True) -> list[list[Generation]]:
  """`generate` for prompts already encoded (a chat template's ids, which must not be re-tokenised)."""
  stop = step_format.rule(tokenizer, model.cfg.vocab_size)
  sample_fn = jit_sample(model, num_samples, cfg, stop, tokenizer.pad_id, shared_prefix=shared_prefix)
  results: list[list[Generation]] = []
  call_rows = padded_rows(batch_size)
  for chunk_index, start in enumerate(range(0, len(encoded), batch_size)):
    chunk = encoded[start:start + batch_size]
    tokens, valid = place_rows(left_pad(chunk, tokenizer.pad_id, buckets, batch_size=call_rows))
    out = sample_fn(params, tokens, valid, jax.random.fold_in(rng, chunk_index))
    out = fetch((out.tokens_BxN, out.lengths_B, out.stop_reason_B))
    rows = out[0].reshape(call_rows, num_samples, -1)
    lengths = out[1].reshape(call_rows, num_samples)
    reasons = out[2].reshape(call_rows, num_samples)
    for i in range(len(chunk)):
      results.append([Generation(text=tokenizer.decode(rows[i, j, :lengths[i, j]].tolist()),
                                 num_tokens=int(lengths[i, j]), stop_reason=int(reasons[i, j]),
                                 token_ids=tuple(int(t) for t in rows[i, j, :lengths[i, j]]))
                      for j in range(num_samples)])
  return results
