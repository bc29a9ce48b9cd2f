"""Transformer: cached decoding equals the full pass; counts; heads; numerics switches."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.models import Transformer, gather_rows, init_cache, repeat_rows, unstack_layers
from ttc_jax.models.flops import count_params, forward_flops_per_token, train_flops_per_token, tree_param_count
from ttc_jax.testing.tiny import tiny_model_config


def _init(cfg, t=8):
  model = Transformer(cfg)
  params = nn.unbox(model.init(jax.random.key(0), jnp.zeros((1, t), jnp.int32)))
  return model, params


@pytest.mark.parametrize("overrides", [
    {}, {"n_kv_heads": 1}, {"n_kv_heads": 4}, {"remat": "full"}, {"tie_embeddings": False},
    {"remat": "dots", "scalar_head": True}])
def test_prefill_then_decode_matches_full_forward(overrides):
  cfg = tiny_model_config(**overrides)
  model, params = _init(cfg)
  tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, cfg.vocab_size)
  full = model.apply(params, tokens)
  out = model.apply(params, tokens[:, :7], cache=init_cache(cfg, 3, 16))
  logits, values, cache = [out.logits_BxTxV], [out.values_BxT], out.cache
  for t in range(7, 12):
    out = model.apply(params, tokens[:, t:t + 1], cache=cache)
    cache = out.cache
    logits.append(out.logits_BxTxV)
    values.append(out.values_BxT)
  np.testing.assert_allclose(jnp.concatenate(logits, 1), full.logits_BxTxV, atol=2e-5)
  if cfg.scalar_head:
    np.testing.assert_allclose(jnp.concatenate(values, 1), full.values_BxT, atol=2e-5)
  assert int(cache.index) == 12


def test_left_padding_is_invisible():
  """A left-padded prompt gives the same next-token logits as the same prompt alone."""
  cfg = tiny_model_config()
  model, params = _init(cfg)
  prompt = jnp.array([[5, 9, 11, 7]])
  alone = model.apply(params, prompt).logits_BxTxV[:, -1]
  padded = jnp.array([[0, 0, 0, 5, 9, 11, 7]])
  valid = padded != 0
  positions = jnp.maximum(jnp.cumsum(valid, 1) - 1, 0)
  out = model.apply(params, padded, positions, valid, init_cache(cfg, 1, 10))
  np.testing.assert_allclose(out.logits_BxTxV[:, -1], alone, atol=2e-5)


def test_gather_and_repeat_rows_reorder_cache():
  cfg = tiny_model_config()
  model, params = _init(cfg)
  tokens = jax.random.randint(jax.random.key(2), (2, 5), 0, cfg.vocab_size)
  cache = model.apply(params, tokens, cache=init_cache(cfg, 2, 8)).cache
  rep = repeat_rows(cache, 3)
  assert all(k.shape[0] == 6 for k in rep.k_BxKxSxH)
  chex.assert_trees_all_equal([k[3] for k in rep.k_BxKxSxH], [k[1] for k in cache.k_BxKxSxH])
  swapped = gather_rows(cache, jnp.array([1, 0]))
  chex.assert_trees_all_equal([v[0] for v in swapped.v_BxKxSxH], [v[1] for v in cache.v_BxKxSxH])


def test_unstacked_layers_serve_cached_calls_only():
  """Decode loops split the scanned layer stack once (`unstack_layers`); cached calls give the same result."""
  cfg = tiny_model_config(sliding_window=3, layer_types=("sliding", "full"))
  model, params = _init(cfg)
  split = unstack_layers(params)
  assert "layers" not in split["params"] and set(split["params"]) >= {"layer_0", "layer_1"}
  assert unstack_layers(split) is split
  tokens = jax.random.randint(jax.random.key(3), (2, 6), 0, cfg.vocab_size)
  stacked_out = model.apply(params, tokens[:, :5], cache=init_cache(cfg, 2, 8))
  split_out = model.apply(split, tokens[:, :5], cache=init_cache(cfg, 2, 8))
  chex.assert_trees_all_equal(split_out, stacked_out)
  chex.assert_trees_all_equal(model.apply(split, tokens[:, 5:], cache=split_out.cache),
                              model.apply(params, tokens[:, 5:], cache=stacked_out.cache))
  with pytest.raises(ValueError, match="unstack_layers"):
    model.apply(split, tokens)


@pytest.mark.parametrize("overrides", [{}, {"tie_embeddings": False}, {"scalar_head": True},
                                       {"lm_head": False, "scalar_head": True}, {"head_dim": 16}])
def test_param_count_matches_tree(overrides):
  cfg = tiny_model_config(**overrides)
  _, params = _init(cfg)
  assert tree_param_count(params) == count_params(cfg)


def test_flops_per_token():
  cfg = tiny_model_config()
  d, f, v, l, h = cfg.d_model, cfg.d_ff, cfg.vocab_size, cfg.n_layers, cfg.head_size
  matmul = l * (d * 4 * h + 2 * d * 2 * h + 4 * h * d + 3 * d * f) + v * d
  assert forward_flops_per_token(cfg, 0) == 2 * matmul
  assert forward_flops_per_token(cfg, 10) == 2 * matmul + 4 * l * 4 * h * 10
  assert train_flops_per_token(cfg, 10) == 3 * forward_flops_per_token(cfg, 10)


def test_scalar_head_outputs_and_bf16_compute():
  cfg = tiny_model_config(scalar_head=True, dtype="bfloat16")
  model, params = _init(cfg)
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(params)), "master weights stay float32"
  out = model.apply(params, jnp.ones((2, 6), jnp.int32))
  assert out.values_BxT.shape == (2, 6) and out.values_BxT.dtype == jnp.float32
  assert out.logits_BxTxV.dtype == jnp.float32
  f32 = Transformer(tiny_model_config(scalar_head=True)).apply(params, jnp.ones((2, 6), jnp.int32))
  np.testing.assert_allclose(out.logits_BxTxV, f32.logits_BxTxV, atol=0.1)


def test_scan_compiles_once_regardless_of_depth():
  """Layers are one scan: the traced program does not grow with n_layers."""
  sizes = []
  for n_layers in (2, 8):
    cfg = tiny_model_config(n_layers=n_layers)
    model, params = _init(cfg)
    jaxpr = jax.make_jaxpr(lambda p: model.apply(p, jnp.ones((1, 4), jnp.int32)))(params)
    sizes.append(len(str(jaxpr)))
  assert abs(sizes[0] - sizes[1]) < 0.05 * sizes[0]


@pytest.mark.parametrize("bad,field", [({"n_heads": 3}, "n_kv_heads"), ({"remat": "some"}, "model.remat"),
                                       ({"dtype": "int8"}, "model.dtype"),
                                       ({"lm_head": False}, "model.lm_head")])
def test_invalid_model_config_names_field(bad, field):
  with pytest.raises(ValueError, match=field):
    tiny_model_config(**bad)
