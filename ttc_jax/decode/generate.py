"""Text in, graded-ready text out: chunks prompts into fixed-shape sampler calls."""
import dataclasses
from typing import Sequence

import jax

from ttc_jax.decode.prompts import DEFAULT_BUCKETS, left_pad
from ttc_jax.decode.sampler import jit_sample, jit_sample_after_prefix
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
    results += _generations(tokenizer, out, num_samples, len(chunk))
  return results


def generate_after_prefix(model, params, tokenizer, prefixes: Sequence[Sequence[int]],
                          suffixes: Sequence[Sequence[Sequence[int]]], rng: jax.Array, *, cfg: SamplingConfig,
                          batch_size: int, buckets: Sequence[int] = DEFAULT_BUCKETS,
                          step_format: StepFormat = LINE_STEPS) -> list[list[Generation]]:
  """One generation per row: problem p's row n continues the ids prefixes[p] + suffixes[p][n].

  Every problem has the same number N of rows. Its prefix ([bos] + ..., as `encode_prompt`
  gives) is stored once and read by its N rows (`decode.sampler.sample_after_prefix`); the
  caller checks that the two parts encode what the whole prompt encodes. Problems go to the
  device `batch_size` at a time (batch_size * N rows a call), chunk i with key fold_in(rng, i)
  as in `generate`: with as many rows a call, each row draws the key it draws there.
  """
  num_rows = {len(rows) for rows in suffixes}
  if len(num_rows) > 1:
    raise ValueError(f"generate_after_prefix: problems have different numbers of rows {sorted(num_rows)}")
  n = num_rows.pop() if num_rows else 0
  stop = step_format.rule(tokenizer, model.cfg.vocab_size)
  sample_fn = jit_sample_after_prefix(model, cfg, stop, tokenizer.pad_id)
  results: list[list[Generation]] = []
  call_problems = padded_rows(batch_size)
  for chunk_index, start in enumerate(range(0, len(prefixes), batch_size)):
    chunk = prefixes[start:start + batch_size]
    rests = [rest for rows in suffixes[start:start + batch_size] for rest in rows]
    prefix = place_rows(left_pad(chunk, tokenizer.pad_id, buckets, batch_size=call_problems))
    suffix = place_rows(left_pad(rests, tokenizer.pad_id, buckets, batch_size=call_problems * n))
    out = sample_fn(params, *prefix, *suffix, jax.random.fold_in(rng, chunk_index))
    results += _generations(tokenizer, out, n, len(chunk))
  return results


def _generations(tokenizer, out, num_samples: int, num_prompts: int) -> list[list[Generation]]:
  """The first `num_prompts` prompts' generations from a sampler call's rows (num_samples rows a prompt)."""
  tokens, lengths, reasons = fetch((out.tokens_BxN, out.lengths_B, out.stop_reason_B))

  def one(r):
    ids = tokens[r, :lengths[r]].tolist()
    return Generation(text=tokenizer.decode(ids), num_tokens=int(lengths[r]), stop_reason=int(reasons[r]),
                      token_ids=tuple(ids))

  return [[one(i * num_samples + j) for j in range(num_samples)] for i in range(num_prompts)]
