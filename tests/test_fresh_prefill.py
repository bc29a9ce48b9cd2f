"""A prefill into a fresh cache (`KVCache.fresh`) scores its T tokens among themselves, never the empty slots.

The policy's prefill (`decode.sampler.prefill`) and the PRM's (`search.prm.prefill_prm`) make their
cache with `init_cache(fresh=True)`. Their traced programs must hold no matmul with the buffer's
S slots in its output (a [T, S] score block per layer, all masked), while the same call into a
cache not marked fresh does score them: so these tests fail if `fresh` stops being honoured. Both
calls must still give the same logits and cache contents.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.decode import sampler
from ttc_jax.decode.prompts import left_pad
from ttc_jax.models import Transformer, init_cache
from ttc_jax.search.prm import prefill_prm
from ttc_jax.testing.jaxprs import output_shapes
from ttc_jax.testing.tiny import tiny_model_config

PAD = 0
S = 24  # Cache slots: a size no other dimension of the tiny model or the batch has.
PROMPTS = [[5, 6, 7, 8, 9], [3, 4], [10, 11, 12]]  # Left-padded to T = 5 (rows 1 and 2 start with padding).
POLICY = tiny_model_config(n_layers=1)
PRM = tiny_model_config(n_layers=1, lm_head=False, scalar_head=True)


def _policy_prefill(model, params, tokens, valid):
  logits, _, cache = sampler.prefill(model, params, tokens, valid, S)
  return logits, cache


def _prm_prefill(model, params, tokens, valid):
  cache, _ = prefill_prm(model, params, tokens, valid, S)
  return None, cache


def _prefill_not_fresh(model, params, tokens, valid):
  """The prefills' call into a cache not marked fresh: it attends to the S (empty) slots too."""
  last_Bx1 = jnp.full((tokens.shape[0], 1), tokens.shape[1] - 1, jnp.int32)
  out = model.apply(params, tokens, sampler.prompt_positions(valid), valid,
                    init_cache(model.cfg, tokens.shape[0], S), read_BxK=last_Bx1)
  return (None if out.logits_BxTxV is None else out.logits_BxTxV[:, 0]), out.cache


def _abstract_params(model):
  """The params' shapes and dtypes: enough to trace the model, and no init to compile."""
  return nn.unbox(jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))


def _matmul_shapes(fn, model):
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(5,))
  jaxpr = jax.make_jaxpr(lambda p, x, v: fn(model, p, x, v))(_abstract_params(model), tokens, valid)
  return output_shapes(jaxpr, "dot_general")


@pytest.mark.parametrize("prefill,cfg", [(_policy_prefill, POLICY), (_prm_prefill, PRM)], ids=["policy", "prm"])
def test_fresh_prefill_does_not_score_empty_slots(prefill, cfg):
  model, t = Transformer(cfg), len(PROMPTS[0])
  fresh = _matmul_shapes(prefill, model)
  assert not [s for s in fresh if S in s], fresh
  assert [s for s in fresh if s.count(t) == 2], fresh  # The T x T scores among the prompt's own tokens.
  control = _matmul_shapes(_prefill_not_fresh, model)
  assert [s for s in control if S in s and t in s], control  # The [T, S] block the fresh call skips.


def test_fresh_prefill_equals_prefill_into_an_unmarked_cache():
  model = Transformer(POLICY)
  rng = np.random.RandomState(0)  # Random values of the params' shapes: two attention paths are compared.
  params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0.0, 0.3, s.shape), s.dtype), _abstract_params(model))
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(5,))
  fresh, not_fresh = (jax.jit(lambda p, x, v, f=f: f(model, p, x, v)) for f in (_policy_prefill, _prefill_not_fresh))
  (logits, cache), (want_logits, want_cache) = fresh(params, tokens, valid), not_fresh(params, tokens, valid)
  assert not cache.fresh  # What a prefill returns enters the decode loop, whose carry is never fresh.
  np.testing.assert_allclose(np.asarray(logits), np.asarray(want_logits), rtol=1e-5, atol=1e-5)
  for name in ("valid_BxS", "positions_BxS", "index_B"):
    np.testing.assert_array_equal(getattr(cache, name), getattr(want_cache, name))
  # Keys and values of real tokens; a padding token's own attention output differs (it sees no key
  # but, without fresh, the empty slots too), and no later token reads it.
  slots = np.broadcast_to(np.asarray(cache.valid_BxS)[:, None, :], cache.k_BxKxSxH[0].shape[:3])
  assert slots.sum() == sum(map(len, PROMPTS)) * POLICY.n_kv_heads  # Every prompt token is compared.
  for got, want in zip(cache.k_BxKxSxH + cache.v_BxKxSxH, want_cache.k_BxKxSxH + want_cache.v_BxKxSxH):
    np.testing.assert_allclose(np.asarray(got)[slots], np.asarray(want)[slots], rtol=1e-5, atol=1e-5)
