"""Per-row cache positions: every row writes at its own slot index and advances by its own tokens.

(a) cached calls with rows at different fill levels give the uncached logits of each row's
tokens; (b) search steps of different lengths per row keep each row's tokens contiguous in
both caches, and a long step of one row no longer ends the others' search; (c) greedy
sampling is unchanged (the no-cache reference), with and without the shared prompt, and a
finished row's index stays where it stopped.
"""
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import decode
from ttc_jax.decode.prompts import left_pad
from ttc_jax.decode.sampler import prompt_positions
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.models import Transformer, init_cache, unstack_layers
from ttc_jax.search.beams import repeat_beams, repeat_cache
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.loop import jit_search
from ttc_jax.search.prm import prefill_prm
from ttc_jax.search.steps import Context, Models, take_step
from ttc_jax.testing.reference import naive_sample
from ttc_jax.testing.scripted import ForcedTokens, ScriptedPRM, scripted_config
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import StopRule

PAD, EOS, NL, LEAD = 0, 1, 2, 3
FIRST = 10  # The scripted PRM's content ids.


def _init(model):
  return nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))


# ------------------------------------------------------------------ (a) logits at different fill levels


def test_rows_at_different_fill_levels_give_uncached_logits():
  """A 3-token call, a 4-token block whose valid head differs per row (4, 1, 0, 2 tokens), then
  three 1-token steps: each row's logits equal a forward pass over its own tokens alone."""
  model = Transformer(tiny_model_config())
  params = _init(model)
  apply = jax.jit(model.apply)
  tokens = jax.random.randint(jax.random.key(1), (4, 10), 3, model.cfg.vocab_size)
  fed = np.array([4, 1, 0, 2])
  block_valid = jnp.arange(4)[None] < fed[:, None]
  cache = init_cache(model.cfg, 4, 12)
  out0 = apply(params, tokens[:, :3], cache=cache)
  out1 = apply(params, tokens[:, 3:7], valid_BxT=block_valid, cache=out0.cache)
  np.testing.assert_array_equal(out1.cache.index_B, 3 + fed)  # The invalid tails take no slot.
  cache, step_logits = out1.cache, []
  for t in range(7, 10):
    out = apply(params, tokens[:, t:t + 1], cache=cache)  # Default positions: each row's own index.
    cache = out.cache
    step_logits.append(out.logits_BxTxV[:, 0])
  np.testing.assert_array_equal(cache.index_B, 6 + fed)
  # The reference: each row's tokens alone, left-padded to one width (padding is invisible).
  rows, lengths = left_pad([np.concatenate([tokens[b, :3], tokens[b, 3:3 + fed[b]], tokens[b, 7:]]).tolist()
                            for b in range(4)], PAD, buckets=(10,))
  full = apply(params, rows, prompt_positions(lengths), lengths).logits_BxTxV
  for b in range(4):
    full_b = full[b, 10 - 6 - fed[b]:]
    np.testing.assert_allclose(out0.logits_BxTxV[b], full_b[:3], atol=1e-5)
    np.testing.assert_allclose(out1.logits_BxTxV[b, :fed[b]], full_b[3:3 + fed[b]], atol=1e-5)
    np.testing.assert_allclose(jnp.stack(step_logits, 0)[:, b], full_b[3 + fed[b]:], atol=1e-5)


# ------------------------------------------------------------------ (b) search with steps of different lengths


def _step(*content, end=NL):
  """A step's tokens. Every step starts with LEAD: a problem's first token comes from its one
  prefill, the same for all its candidates."""
  return (LEAD,) + tuple(content) + (end,)


def _forced_models(scripts):
  """A policy that writes each row's script after a 3-token prompt, and a PRM scoring the last content token."""
  policy = ForcedTokens(scripted_config(), 3, tuple(scripts))
  prm = ScriptedPRM(scripted_config(scalar_head=True), FIRST)
  return policy, prm, StopRule.from_ids(policy.cfg.vocab_size, [EOS], NL)


def _stored(cache, b):
  """The token ids row b holds in its slots before its index (the scripted models store ids as keys)."""
  return [int(x) for x in np.round(np.asarray(cache.k_BxKxSxH[0][b, 0, :int(cache.index_B[b]), 0]))]


def test_steps_of_different_lengths_stay_contiguous_in_both_caches():
  scripts = [_step(11) * 6, _step(12, 13, 14) * 3, _step(15, 16) * 4]  # Steps of 3, 5 and 4 tokens.
  policy, prm, stop = _forced_models(scripts)
  tokens, valid = left_pad([[5, 6, 7]], PAD, buckets=(4,))
  w, cache_len, n = 5, 4 + 16, 3
  models = Models(policy=policy, policy_params={}, prm=prm, prm_params={"values": np.arange(20, dtype=np.float32)},
                  stop=stop, pad_id=PAD)

  @jax.jit
  def run(tokens, valid, active_RxB):
    logits, pos, pc = decode.prefill(policy, {}, tokens, valid, cache_len)
    qc, qpos = prefill_prm(prm, models.prm_params, tokens, valid, cache_len)
    ctx = Context(policy_logits_BxV=repeat_beams(logits, n), policy_pos_B=repeat_beams(pos, n),
                  policy_cache=repeat_cache(pc, n), prm_pos_B=repeat_beams(qpos, n), prm_cache=repeat_cache(qc, n),
                  prm_steps_B=jnp.zeros((n,), jnp.int32))
    cfg = SamplingConfig(temperature=0.0, max_new_tokens=w, stop_at_newline=True)
    lengths = []
    for active_B in active_RxB:
      step, ctx = take_step(models, ctx, active_B, jax.random.key(0), cfg)
      lengths.append(step.lengths_B)
    return ctx, jnp.stack(lengths)

  active = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], bool)  # Row 1 sits out round 1.
  ctx, lengths = run(tokens, valid, active)
  np.testing.assert_array_equal(lengths, [[3, 5, 4], [3, 0, 4], [3, 5, 4]])
  prompt = [PAD, 5, 6, 7]
  solutions = [_step(11) * 3, _step(12, 13, 14) * 2, _step(15, 16) * 3]
  for b, solution in enumerate(solutions):
    assert _stored(ctx.policy_cache, b) == prompt + list(solution)  # No slot left for another row's longer step.
    assert _stored(ctx.prm_cache, b) == prompt + list(solution)  # Fed as sampled (ttc format).
    assert bool(ctx.policy_cache.valid_BxS[b, 1:4 + len(solution)].all())
    assert not bool(ctx.policy_cache.valid_BxS[b, 4 + len(solution):].any())
  np.testing.assert_array_equal(ctx.policy_pos_B, [3 + len(s) for s in solutions])


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_a_finished_long_step_leaves_the_other_rows_room(shared_prefix):
  """Row 0 writes 3-token steps; row 1 one 6-token answer line (EOS). max_solution_tokens = 12 and
  W = 6: with one shared index the first round took 6 slots for both rows, so row 0 got 2 rounds
  (6 tokens) before 9 + 6 > 12 stopped the search. With its own index row 0 runs until its own
  solution has no room for a 6-token step: 3 rounds, 9 tokens."""
  policy, prm, stop = _forced_models([_step(11) * 10, _step(12, 13, 14, 15, end=EOS)])
  cfg = SearchConfig(method="best_of_n", budget=2, max_rounds=10, max_step_tokens=6, max_solution_tokens=12,
                     shared_prefix=shared_prefix)
  tokens, valid = left_pad([[5, 6, 7]], PAD, buckets=(4,))
  values = np.zeros(54, np.float32)
  values[1], values[5] = 2.0, -1.0  # Content 11 and 15 (the answer line's last content).
  out = jax.device_get(jit_search(policy, prm, cfg, stop, PAD)({}, {"values": values}, tokens, valid,
                                                               jax.random.key(0)))
  assert int(out.rounds) == 3
  np.testing.assert_array_equal(out.lengths_PxN, [[9, 6]])
  np.testing.assert_array_equal(out.tokens_PxNxT[0, 0], _step(11) * 3 + (PAD,) * 3)
  np.testing.assert_array_equal(out.tokens_PxNxT[0, 1, :6], _step(12, 13, 14, 15, end=EOS))
  np.testing.assert_array_equal(out.finished_PxN, [[False, True]])
  sig = lambda x: 1 / (1 + np.exp(-x))
  np.testing.assert_allclose(out.step_scores_PxNxR[0, 0, :3], sig(2.0), rtol=1e-6)  # Every round scored.
  np.testing.assert_allclose(out.score_PxN, [[sig(2.0), sig(-1.0)]], rtol=1e-6)
  assert int(out.budget.policy_tokens_P[0]) == 15 and int(out.budget.prm_tokens_P[0]) == 15


# ------------------------------------------------------------------ (c) plain sampling


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_greedy_sampling_unchanged_and_finished_rows_keep_their_index(shared_prefix):
  model = Transformer(tiny_model_config())
  params = _init(model)
  prompts, bucket, n = [[5, 9, 11, 7], [3, 4], [8, 12, 13, 14, 15, 16, 17]], 8, 2
  tokens, valid = left_pad(prompts, PAD, buckets=(bucket,))
  free = SamplingConfig(temperature=0.0, max_new_tokens=8)
  unstopped = decode.sample(model, params, tokens, valid, jax.random.key(1), num_samples=1, cfg=free,
                            stop=StopRule.from_ids(model.cfg.vocab_size), pad_id=PAD).tokens_BxN
  eos = int(unstopped[0, 2])  # A token the model emits: rows stop after different numbers of tokens.
  stop = StopRule.from_ids(model.cfg.vocab_size, [eos])
  out = decode.sample(model, params, tokens, valid, jax.random.key(1), num_samples=n, cfg=free, stop=stop, pad_id=PAD,
                      shared_prefix=shared_prefix)
  assert len(set(np.asarray(out.lengths_B).tolist())) > 1
  jitted = types.SimpleNamespace(apply=jax.jit(model.apply))  # The reference's forward passes, compiled.
  ref = naive_sample(jitted, params, tokens, valid, jax.random.key(1), num_samples=n, cfg=free, stop=stop, pad_id=PAD)
  np.testing.assert_array_equal(out.tokens_BxN, ref)
  # The decode loop's cache: each row's index is its prompt slots plus the tokens it fed (stop token included).
  logits, pos, cache = decode.prefill(model, unstack_layers(params), tokens, valid, bucket + free.max_new_tokens)
  np.testing.assert_array_equal(cache.index_B, [bucket] * len(prompts))
  res = decode.decode(model, params, logits, pos, cache, jax.random.key(1), cfg=free, stop=stop, pad_id=PAD,
                      return_cache=True)
  np.testing.assert_array_equal(res.cache.index_B, bucket + res.lengths_B)
