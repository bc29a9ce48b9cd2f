"""Batched sampling: one jitted prefill, then a `lax.while_loop` of one-token steps.

Everything stays on the device: token buffers have fixed shapes
[rows, max_new_tokens], rows stop independently (EOS, end of a step, or the
length limit) and the loop ends when all rows have stopped. n samples per
prompt share a single prompt prefill; by default they also share its stored keys and values
(`models.kv_cache.SharedPrefix`), so the prompt is held and read once, not n times.
`sample_after_prefix` shares a prefix among rows whose prompts then differ (revision chains:
one question, each chain's own previous attempts).
What stops a row is one `StopRule` (tokenization.steps): per-vocabulary tables
passed in as arrays, so the loop gathers from them instead of comparing ids.
"""
import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampling import SamplingConfig, choose_tokens
from ttc_jax.models import Transformer, init_cache, repeat_rows, unstack_layers
from ttc_jax.models.kv_cache import KVCache, share_prefix
from ttc_jax.tokenization.steps import StopRule, WithStopRule

# STOP_NEWLINE: the step delimiter ended the row (whatever its text; STOP_STEP is the same).
STOP_NONE, STOP_EOS, STOP_NEWLINE, STOP_LENGTH = 0, 1, 2, 3
STOP_STEP = STOP_NEWLINE
STOP_NAMES = {STOP_NONE: "none", STOP_EOS: "eos", STOP_NEWLINE: "step", STOP_LENGTH: "length"}


@flax.struct.dataclass
class SampleOutput:
  tokens_BxN: jax.Array  # int32 new tokens, pad after the stop token (the stop token is kept).
  lengths_B: jax.Array  # int32 number of new tokens, stop token included.
  stop_reason_B: jax.Array  # int32 STOP_EOS / STOP_NEWLINE / STOP_LENGTH.
  cache: Any  # KVCache after the last token (for continuing generation), or None.
  logits_BxV: Any = None  # float32 next-token logits after the last token (with the cache), or None.
  step_ends_BxR: Any = None  # int32 (with `steps`): length of the row after each of its steps, 0 for steps not taken.


@dataclasses.dataclass(frozen=True)
class StepLimits:
  """Whole solutions in one decode call, cut into steps as search cuts them (static).

  A row stops at EOS, at the end of its `max_steps`-th step, at the end of a step that leaves
  no room for another (length + max_step_tokens > max_new_tokens), or when a step reaches
  `max_step_tokens` tokens without ending (STOP_LENGTH: a truncated step). The step rule
  looks back only within a step, as when every step is its own decode call.
  """
  max_steps: int
  max_step_tokens: int


@flax.struct.dataclass
class _LoopState:
  step: jax.Array  # int32 scalar: tokens generated so far.
  tokens_BxN: jax.Array  # int32 output buffer.
  done_B: jax.Array  # bool: row has stopped.
  stop_reason_B: jax.Array  # int32
  lengths_B: jax.Array  # int32 tokens generated per row, stop token included.
  logits_BxV: jax.Array  # float32 next-token logits of every row.
  positions_B: jax.Array  # int32 RoPE position of the next token.
  cache: KVCache
  rng: jax.Array
  prev_B: jax.Array  # int32 previous sampled token of the row (-1 before the first): the two-token step rule.
  steps_B: jax.Array  # int32 steps ended so far (with StepLimits).
  step_len_B: jax.Array  # int32 tokens of the row's current step (with StepLimits).
  step_ends_BxR: jax.Array  # int32 [B, max_steps] (with StepLimits; [B, 0] without).


def prompt_positions(valid_BxP: jax.Array) -> jax.Array:
  """RoPE positions for left-padded prompts: 0 at each row's first real token."""
  return jnp.maximum(jnp.cumsum(valid_BxP, axis=1) - 1, 0).astype(jnp.int32)


def prefill(model: Transformer, params, prompts_BxP: jax.Array, valid_BxP: jax.Array, cache_len: int):
  """Encodes left-padded prompts into a fresh cache; returns (last-token logits, positions, cache)."""
  cache = init_cache(model.cfg, prompts_BxP.shape[0], cache_len, fresh=True)
  return extend(model, params, prompts_BxP, valid_BxP, cache, jnp.zeros((prompts_BxP.shape[0],), jnp.int32))


def extend(model: Transformer, params, tokens_BxT: jax.Array, valid_BxT: jax.Array, cache: KVCache,
           start_B: jax.Array):
  """Encodes left-padded tokens after each row's context in `cache`, the row's first real one at RoPE
  position start_B[b]; returns (last-token logits, next positions, cache).

  A row with no real token keeps its context and position; its logits are not its own.
  """
  last_Bx1 = jnp.full((tokens_BxT.shape[0], 1), tokens_BxT.shape[1] - 1, jnp.int32)  # Left-padded: last is real.
  positions_BxT = start_B[:, None] + prompt_positions(valid_BxT)
  out = model.apply(params, tokens_BxT, positions_BxT, valid_BxT, cache, read_BxK=last_Bx1)
  next_pos_B = (start_B + jnp.sum(valid_BxT, axis=1)).astype(jnp.int32)
  return out.logits_BxTxV[:, 0], next_pos_B, out.cache


def decode(model: Transformer, params, logits_BxV, positions_B, cache: KVCache, rng: jax.Array, *,
           cfg: SamplingConfig, stop: StopRule, pad_id: int, return_cache: bool = False,
           done_B: jax.Array | None = None, steps: StepLimits | None = None) -> SampleOutput:
  """Generates up to cfg.max_new_tokens per row from already-encoded context.

  `stop` says which tokens are EOS and which end a step (the latter only with
  cfg.stop_at_newline). `done_B` (bool) marks rows that sample nothing (length 0,
  STOP_NONE): search keeps finished beams in the batch without extending them.
  `steps` (with cfg.stop_at_newline) samples many steps per row and records where each
  ended (`StepLimits`; best-of-N search).
  """
  b = logits_BxV.shape[0]
  n = cfg.max_new_tokens
  num_steps = steps.max_steps if steps else 0
  params = unstack_layers(params)  # Once, outside the loop: no step copies a layer out of the stack.

  def cond(s: _LoopState):
    return (s.step < n) & ~jnp.all(s.done_B)

  def body(s: _LoopState):
    token_B = choose_tokens(s.logits_BxV, jax.random.fold_in(s.rng, s.step), cfg)
    active_B = ~s.done_B
    token_B = jnp.where(active_B, token_B, pad_id)
    tokens = jax.lax.dynamic_update_slice_in_dim(s.tokens_BxN, token_B[:, None], s.step, axis=1)
    hit_eos = active_B & stop.is_eos(token_B)
    step_end = active_B & ~hit_eos & stop.ends_step(s.prev_B, token_B) & cfg.stop_at_newline
    length_B = s.lengths_B + active_B.astype(jnp.int32)
    if steps:  # Static. A step end stops the row only after its last step, or with no room for another.
      hit_newline = step_end & ((s.steps_B + 1 >= steps.max_steps) | (length_B + steps.max_step_tokens > n))
      cut_B = s.step_len_B + 1 >= steps.max_step_tokens
    else:
      hit_newline, cut_B = step_end, s.step + 1 >= n
    hit_length = active_B & ~hit_eos & ~step_end & cut_B
    reason = jnp.select([hit_eos, hit_newline, hit_length], [STOP_EOS, STOP_NEWLINE, STOP_LENGTH], s.stop_reason_B)
    ended_B = step_end | hit_eos | hit_length  # The row's current step ended with this token.
    step_ends = jnp.where((jnp.arange(num_steps) == s.steps_B[:, None]) & ended_B[:, None], length_B[:, None],
                          s.step_ends_BxR)
    # Feed the token so the next logits (and the cache) include it; rows already done write an
    # invalid slot at their own index, which does not move (the row's next write reuses the slot).
    out = model.apply(params, token_B[:, None], s.positions_B[:, None], active_B[:, None], s.cache)
    return _LoopState(step=s.step + 1, tokens_BxN=tokens, done_B=s.done_B | hit_eos | hit_newline | hit_length,
                      stop_reason_B=reason, lengths_B=length_B,
                      # A stopped row keeps the logits that follow its stop token (search continues from them).
                      logits_BxV=jnp.where(active_B[:, None], out.logits_BxTxV[:, -1], s.logits_BxV),
                      positions_B=s.positions_B + active_B.astype(jnp.int32), cache=out.cache, rng=s.rng,
                      # A step's first token has no previous one (as when each step is its own call).
                      prev_B=jnp.where(step_end, -1, jnp.where(active_B, token_B, s.prev_B)),
                      steps_B=s.steps_B + ended_B.astype(jnp.int32),
                      step_len_B=jnp.where(ended_B, 0, s.step_len_B + active_B.astype(jnp.int32)),
                      step_ends_BxR=step_ends)

  init = _LoopState(step=jnp.zeros((), jnp.int32), tokens_BxN=jnp.full((b, n), pad_id, jnp.int32),
                    done_B=jnp.zeros((b,), bool) if done_B is None else done_B,
                    stop_reason_B=jnp.full((b,), STOP_NONE, jnp.int32),
                    lengths_B=jnp.zeros((b,), jnp.int32),
                    logits_BxV=logits_BxV.astype(jnp.float32), positions_B=positions_B, cache=cache, rng=rng,
                    prev_B=jnp.full((b,), -1, jnp.int32), steps_B=jnp.zeros((b,), jnp.int32),
                    step_len_B=jnp.zeros((b,), jnp.int32), step_ends_BxR=jnp.zeros((b, num_steps), jnp.int32))
  final = jax.lax.while_loop(cond, body, init)
  return SampleOutput(tokens_BxN=final.tokens_BxN, lengths_B=final.lengths_B, stop_reason_B=final.stop_reason_B,
                      cache=final.cache if return_cache else None,
                      logits_BxV=final.logits_BxV if return_cache else None,
                      step_ends_BxR=final.step_ends_BxR if steps else None)


def sample(model: Transformer, params, prompts_BxP: jax.Array, valid_BxP: jax.Array, rng: jax.Array, *,
           num_samples: int, cfg: SamplingConfig, stop: StopRule, pad_id: int,
           shared_prefix: bool = True) -> SampleOutput:
  """`num_samples` continuations of each left-padded prompt; rows b*n .. b*n+n-1 belong to prompt b.

  `shared_prefix` (used when num_samples > 1): the n rows of a prompt read one stored copy
  of its keys and values instead of n; equal up to float summation order.
  Returns tokens of shape [B * num_samples, cfg.max_new_tokens]; rows of an all-padding prompt are empty.
  """
  if shared_prefix and num_samples > 1:
    logits_BxV, pos_B, prompt_cache = prefill(model, params, prompts_BxP, valid_BxP, prompts_BxP.shape[1])
    cache = share_prefix(prompt_cache, num_samples, cfg.max_new_tokens)
  else:
    logits_BxV, pos_B, cache = prefill(model, params, prompts_BxP, valid_BxP,
                                       prompts_BxP.shape[1] + cfg.max_new_tokens)
    cache = repeat_rows(cache, num_samples)
  logits = jnp.repeat(logits_BxV, num_samples, axis=0)
  pos = jnp.repeat(pos_B, num_samples, axis=0)
  # Padding rows (no prompt token: the short last chunk, rows added for the data-parallel size)
  # sample nothing, so they never keep the loop running.
  empty = jnp.repeat(~jnp.any(valid_BxP, axis=1), num_samples, axis=0)
  return decode(model, params, logits, pos, cache, rng, cfg=cfg, stop=stop, pad_id=pad_id, done_B=empty)


def sample_after_prefix(model: Transformer, params, prefix_PxS: jax.Array, prefix_valid_PxS: jax.Array,
                        suffix_BxT: jax.Array, suffix_valid_BxT: jax.Array, rng: jax.Array, *, cfg: SamplingConfig,
                        stop: StopRule, pad_id: int) -> SampleOutput:
  """One continuation of each row's prompt, its problem's prefix followed by the row's own suffix.

  Rows b = p * N + n (problem-major, N = B / P) continue prefix p + suffix b; both are
  left-padded. The prefix is encoded once per problem and read by its N rows
  (`kv_cache.SharedPrefix`); each row's suffix is then encoded into its own slots, at the
  positions that follow the prefix's real tokens. Equal to `sample` on the concatenated
  prompts up to float summation order (the rows draw the same keys). A row with an empty
  suffix samples straight after its prefix; a row with neither samples nothing.
  """
  p, b = prefix_PxS.shape[0], suffix_BxT.shape[0]
  if b % p:
    raise ValueError(f"sample_after_prefix: {b} suffix rows are not a whole number per problem of {p} prefixes")
  n = b // p
  prefix_logits_PxV, prefix_pos_P, prompt_cache = prefill(model, params, prefix_PxS, prefix_valid_PxS,
                                                          prefix_PxS.shape[1])
  cache = share_prefix(prompt_cache, n, suffix_BxT.shape[1] + cfg.max_new_tokens)
  logits_BxV, pos_B, cache = extend(model, params, suffix_BxT, suffix_valid_BxT, cache,
                                    jnp.repeat(prefix_pos_P, n))
  has_suffix_B = jnp.any(suffix_valid_BxT, axis=1)
  logits_BxV = jnp.where(has_suffix_B[:, None], logits_BxV, jnp.repeat(prefix_logits_PxV, n, axis=0))
  empty_B = ~has_suffix_B & jnp.repeat(~jnp.any(prefix_valid_PxS, axis=1), n)
  return decode(model, params, logits_BxV, pos_B, cache, rng, cfg=cfg, stop=stop, pad_id=pad_id, done_B=empty_B)


@functools.lru_cache(maxsize=None)
def _jit_sample(model: Transformer, num_samples: int, cfg: SamplingConfig, pad_id: int, shared_prefix: bool = True):
  return jax.jit(functools.partial(sample, model, num_samples=num_samples, cfg=cfg, pad_id=pad_id,
                                   shared_prefix=shared_prefix))


def jit_sample(model: Transformer, num_samples: int, cfg: SamplingConfig, stop: StopRule, pad_id: int,
               shared_prefix: bool = True):
  """A jitted `sample`: fn(params, prompts_BxP, valid_BxP, rng) -> SampleOutput.

  Compiled once per (batch, prompt bucket, vocabulary) shape: `stop`'s tables are
  arguments of the compiled program, not constants in it.
  """
  # The default layout is cached under the four-argument key, the one callers that look the
  # compiled program up (tests counting compiles) use.
  extra = () if shared_prefix else (False,)
  return WithStopRule(_jit_sample(model, num_samples, cfg, pad_id, *extra), stop)


@functools.lru_cache(maxsize=None)
def _jit_sample_after_prefix(model: Transformer, cfg: SamplingConfig, pad_id: int):
  return jax.jit(functools.partial(sample_after_prefix, model, cfg=cfg, pad_id=pad_id))


def jit_sample_after_prefix(model: Transformer, cfg: SamplingConfig, stop: StopRule, pad_id: int):
  """A jitted `sample_after_prefix`: fn(params, prefix_PxS, prefix_valid_PxS, suffix_BxT, suffix_valid_BxT, rng)."""
  return WithStopRule(_jit_sample_after_prefix(model, cfg, pad_id), stop)
