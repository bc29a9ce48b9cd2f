"""Shared prompt prefix (cascade attention) equals each row holding its own copy of the prompt."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.decode import SamplingConfig, sampler
from ttc_jax.decode.prompts import left_pad
from ttc_jax.models import Transformer, repeat_rows, unstack_layers
from ttc_jax.models.kv_cache import share_prefix
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.loop import jit_search
from ttc_jax.testing.scripted import LogitBias
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import StopRule

PAD, EOS, NL = 0, 1, 2
PROMPTS = [[5, 9, 11, 7], [3, 4], [8, 12, 13, 14, 15, 16, 17]]


def _init(model, seed=0):
  return nn.unbox(jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, 4), jnp.int32)))


def test_decode_logits_equal_unshared():
  """Prefill, then a 3-token block and two 1-token steps per row: logits agree at every call (float32).

  Grouped-query (2 query heads per kv head), with Gemma's switches that reach the prefix scores:
  a sliding window (prefix slots masked by token distance) and score soft-capping.
  """
  model = Transformer(tiny_model_config(sliding_window=3, attn_softcap=5.0))
  params = unstack_layers(_init(model))
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(8,))
  n = 3
  logits, pos_B, prompt_cache = sampler.prefill(model, params, tokens, valid, tokens.shape[1])
  shared = share_prefix(prompt_cache, n, 6)
  _, _, full = sampler.prefill(model, params, tokens, valid, tokens.shape[1] + 6)
  full = repeat_rows(full, n)
  pos_B = jnp.repeat(pos_B, n)
  rng = np.random.RandomState(0)
  apply = jax.jit(model.apply)
  for width in (3, 1, 1):
    new = jnp.asarray(rng.randint(3, 48, size=(len(PROMPTS) * n, width)), jnp.int32)
    valid_new = jnp.asarray(rng.rand(*new.shape) < 0.8)  # Some invalid slots, as search blocks have.
    positions = pos_B[:, None] + jnp.arange(width)[None]
    a = apply(params, new, positions, valid_new, shared)
    b = apply(params, new, positions, valid_new, full)
    np.testing.assert_allclose(a.logits_BxTxV, b.logits_BxTxV, rtol=1e-5, atol=1e-5)
    shared, full, pos_B = a.cache, b.cache, pos_B + width
  assert shared.k_BxKxSxH[0].shape[2] == 6 and shared.prefix.k_PxKxSxH[0].shape[0] == len(PROMPTS)


def test_sample_tokens_equal_unshared():
  """Sampled (stricter than greedy: the 4 samples of a prompt differ), same key: identical tokens."""
  model = Transformer(tiny_model_config())
  params = _init(model)
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(8,))
  cfg = SamplingConfig(temperature=1.0, max_new_tokens=8)
  rule = StopRule.from_ids(model.cfg.vocab_size, [EOS], NL)
  run = lambda shared: sampler.jit_sample(model, 4, cfg, rule, PAD, shared_prefix=shared)(
      params, tokens, valid, jax.random.key(1))
  a, b = run(True), run(False)
  np.testing.assert_array_equal(a.tokens_BxN, b.tokens_BxN)
  np.testing.assert_array_equal(a.lengths_B, b.lengths_B)


def _search_setup():
  policy = Transformer(tiny_model_config(n_layers=1))
  prm = Transformer(tiny_model_config(n_layers=1, lm_head=False, scalar_head=True))
  params = (_init(policy, 0), _init(prm, 1))
  biased = LogitBias(policy, ((NL, 3.0), (EOS, 1.0)))  # Steps of a few tokens, some solutions end.
  return biased, prm, params, StopRule.from_ids(policy.cfg.vocab_size, [EOS], NL)


def test_search_equals_unshared():
  """Lookahead search with real caches: sampled steps (same key), greedy rollouts, beam selection, rewinds.

  Tokens, parents and budgets identical, scores close. (Lookahead exercises every cache
  operation the other methods use; `test_search_scripted.py` checks all four methods
  against a naive reference with the shared prefix on, the default.)
  """
  policy, prm, params, rule = _search_setup()
  cfg = SearchConfig(method="lookahead", budget=4, beam_width=2, lookahead=1, max_rounds=3,
                     max_step_tokens=3, max_solution_tokens=9, temperature=1.0)
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(8,))
  run = lambda c: jax.device_get(jit_search(policy, prm, c, rule, PAD)(*params, tokens, valid, jax.random.key(3)))
  a, b = run(cfg), run(dataclasses.replace(cfg, shared_prefix=False))
  np.testing.assert_array_equal(a.tokens_PxNxT, b.tokens_PxNxT)
  np.testing.assert_array_equal(a.parents_PxRxN, b.parents_PxRxN)
  np.testing.assert_array_equal(a.budget.policy_tokens_P, b.budget.policy_tokens_P)
  np.testing.assert_array_equal(a.budget.prm_tokens_P, b.budget.prm_tokens_P)
  np.testing.assert_allclose(a.step_scores_PxNxR, b.step_scores_PxNxR, rtol=1e-5, atol=1e-6)
  assert int(a.rounds) == int(b.rounds) > 1
