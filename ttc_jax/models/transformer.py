"""Flax decoder-only transformer: RoPE, RMSNorm, SwiGLU, grouped-query attention.

Layers are one `nn.scan` (compile time does not grow with depth). Every
parameter carries logical axis names (see ttc_jax/parallel/rules.py), and the
same `__call__` serves training (full sequence), prefill and one-token decode
steps (with an explicit `KVCache`).
"""
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from ttc_jax.models.config import ModelConfig
from ttc_jax.models.kv_cache import KVCache

_MASKED = -1e30  # Finite, so a row with no visible key gives a uniform softmax, not NaN.


def _init(stddev: float, names: tuple[str | None, ...]):
  return nn.with_logical_partitioning(nn.initializers.normal(stddev), names)


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
  """Sharding hint for an activation by logical axis names (no-op without a mesh)."""
  return nn.with_logical_constraint(x, names)


def apply_rope(x_BxTxNxH: jax.Array, positions_BxT: jax.Array, theta: float) -> jax.Array:
  """Rotary position embedding (rotate-half form), computed in float32."""
  half = x_BxTxNxH.shape[-1] // 2
  freqs_H2 = theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
  angles_BxTx1xH2 = positions_BxT[:, :, None, None].astype(jnp.float32) * freqs_H2
  sin, cos = jnp.sin(angles_BxTx1xH2), jnp.cos(angles_BxTx1xH2)
  x1, x2 = jnp.split(x_BxTxNxH.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxNxH.dtype)


def attend(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, mask_BxTxS) -> jax.Array:
  """Grouped-query softmax attention; scores and softmax in float32."""
  b, t, n, h = q_BxTxNxH.shape
  k_heads = k_BxSxKxH.shape[2]
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_heads, n // k_heads, h)
  scores = jnp.einsum("btkgh,bskh->bkgts", q_BxTxKxGxH, k_BxSxKxH,
                      preferred_element_type=jnp.float32) * (h ** -0.5)
  scores = jnp.where(mask_BxTxS[:, None, None], scores, _MASKED)
  probs = jax.nn.softmax(scores, axis=-1).astype(v_BxSxKxH.dtype)
  out = jnp.einsum("bkgts,bskh->btkgh", probs, v_BxSxKxH)
  return out.reshape(b, t, n, h)


def attend_cached(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxSxKxH, cache_v_BxSxKxH,
                  cache_mask_BxS) -> jax.Array:
  """`attend` over the cached slots plus the T new tokens, with one softmax over both.

  The cache is only read here; the new keys and values are written into it once,
  after all layers (`Transformer`). Writing them into each layer's buffer first
  made every decode step copy the whole cache (bench/results/sampler_NOTES.md).
  """
  b, t, n, h = q_BxTxNxH.shape
  k_heads = k_BxTxKxH.shape[2]
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_heads, n // k_heads, h)
  scale = h ** -0.5
  s_cache = jnp.einsum("btkgh,bskh->bkgts", q_BxTxKxGxH, cache_k_BxSxKxH, preferred_element_type=jnp.float32) * scale
  s_self = jnp.einsum("btkgh,bukh->bkgtu", q_BxTxKxGxH, k_BxTxKxH, preferred_element_type=jnp.float32) * scale
  s_cache = jnp.where(cache_mask_BxS[:, None, None, None, :], s_cache, _MASKED)
  s_self = jnp.where(self_mask_BxTxT[:, None, None], s_self, _MASKED)
  m = jax.lax.stop_gradient(jnp.maximum(s_cache.max(-1, keepdims=True), s_self.max(-1, keepdims=True)))
  e_cache, e_self = jnp.exp(s_cache - m), jnp.exp(s_self - m)
  denom = e_cache.sum(-1, keepdims=True) + e_self.sum(-1, keepdims=True)
  out = (jnp.einsum("bkgts,bskh->btkgh", (e_cache / denom).astype(cache_v_BxSxKxH.dtype), cache_v_BxSxKxH)
         + jnp.einsum("bkgtu,bukh->btkgh", (e_self / denom).astype(v_BxTxKxH.dtype), v_BxTxKxH))
  return out.reshape(b, t, n, h)


class Attention(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD, positions_BxT, mask_BxTxS, layer_kv):
    """mask_BxTxS: the causal/padding mask without a cache; with one, (self mask BxTxT, cache slot mask BxS)."""
    cfg = self.cfg
    n, k_heads, h, d = cfg.n_heads, cfg.n_kv_heads, cfg.head_size, cfg.d_model

    def weight(name, shape, stddev, names):
      # Explicit einsum weights rather than DenseGeneral, whose kernel reshape at
      # init clashes with logical sharding constraints inside nn.scan.
      return self.param(name, _init(stddev, names), shape, cfg.weight_dtype).astype(cfg.compute_dtype)

    x_BxTxD = x_BxTxD.astype(cfg.compute_dtype)
    q = jnp.einsum("btd,dnh->btnh", x_BxTxD, weight("q", (d, n, h), d ** -0.5, ("embed", "heads", "head_dim")))
    k = jnp.einsum("btd,dkh->btkh", x_BxTxD, weight("k", (d, k_heads, h), d ** -0.5, ("embed", "kv_heads", "head_dim")))
    v = jnp.einsum("btd,dkh->btkh", x_BxTxD, weight("v", (d, k_heads, h), d ** -0.5, ("embed", "kv_heads", "head_dim")))
    q = constrain(apply_rope(q, positions_BxT, cfg.rope_theta), ("batch", "length", "act_heads", None))
    k = apply_rope(k, positions_BxT, cfg.rope_theta)
    if layer_kv is None:
      out_BxTxNxH, new_kv = attend(q, k, v, mask_BxTxS), None
    else:
      (cache_k, cache_v), (self_mask_BxTxT, cache_mask_BxS) = layer_kv, mask_BxTxS
      k, v = k.astype(cache_k.dtype), v.astype(cache_v.dtype)
      out_BxTxNxH = attend_cached(q, k, v, self_mask_BxTxT, cache_k, cache_v, cache_mask_BxS)
      new_kv = (k, v)  # Only the T new tokens; Transformer writes them into the cache.
    out_std = (n * h) ** -0.5 / (2 * cfg.n_layers) ** 0.5
    out = jnp.einsum("btnh,nhd->btd", out_BxTxNxH, weight("o", (n, h, d), out_std, ("heads", "head_dim", "embed")))
    return out, new_kv


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD):
    cfg = self.cfg
    dense = functools.partial(nn.Dense, use_bias=False, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype)
    gate = dense(cfg.d_ff, kernel_init=_init(cfg.d_model ** -0.5, ("embed", "mlp")), name="gate")(x_BxTxD)
    up = dense(cfg.d_ff, kernel_init=_init(cfg.d_model ** -0.5, ("embed", "mlp")), name="up")(x_BxTxD)
    h_BxTxF = constrain(nn.silu(gate) * up, ("batch", "length", "act_mlp"))
    out_std = cfg.d_ff ** -0.5 / (2 * cfg.n_layers) ** 0.5
    return dense(cfg.d_model, kernel_init=_init(out_std, ("mlp", "embed")), name="down")(h_BxTxF)


def _rms_norm(cfg: ModelConfig, name: str) -> nn.Module:
  return nn.RMSNorm(epsilon=cfg.norm_eps, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype,
                    scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)), name=name)


class Block(nn.Module):
  """Pre-norm residual block; the scan carry is the residual stream."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD, layer_kv, positions_BxT, mask_BxTxS):
    attn_out, new_kv = Attention(self.cfg, name="attn")(
        _rms_norm(self.cfg, "attn_norm")(x_BxTxD), positions_BxT, mask_BxTxS, layer_kv)
    x_BxTxD = x_BxTxD + attn_out
    x_BxTxD = x_BxTxD + Mlp(self.cfg, name="mlp")(_rms_norm(self.cfg, "mlp_norm")(x_BxTxD))
    return constrain(x_BxTxD, ("batch", "length", "act_embed")), new_kv


@flax.struct.dataclass
class ModelOutput:
  logits_BxTxV: Any  # float32, or None when cfg.lm_head is False.
  values_BxT: Any  # float32 scalar head output, or None when cfg.scalar_head is False.
  cache: Any  # The updated KVCache, or None when called without one.


def _remat_policy(name: str):
  if name == "dots":
    return jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims
  return None  # "full": save nothing, recompute the whole block.


class Transformer(nn.Module):
  """Decoder-only LM with an optional scalar (reward) head."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens_BxT: jax.Array, positions_BxT: jax.Array | None = None,
               valid_BxT: jax.Array | None = None, cache: KVCache | None = None) -> ModelOutput:
    """Runs the model.

    Args:
      tokens_BxT: int32 token ids.
      positions_BxT: int32 RoPE positions; default 0..T-1 (after `cache.index` with a cache).
      valid_BxT: bool, False for padding tokens, which no other token attends to.
      cache: with a cache, the T tokens are written at slots [index, index+T) and
        attend to every valid earlier slot: prefill (T = prompt length) and
        decode steps (T = 1) are the same call.
    """
    cfg = self.cfg
    b, t = tokens_BxT.shape
    start = 0 if cache is None else cache.index
    if positions_BxT is None:
      positions_BxT = jnp.broadcast_to(start + jnp.arange(t, dtype=jnp.int32), (b, t))
    if valid_BxT is None:
      valid_BxT = jnp.ones((b, t), bool)

    causal_TxT = jnp.arange(t)[None, :] <= jnp.arange(t)[:, None]
    self_mask_BxTxT = causal_TxT[None] & valid_BxT[:, None, :]
    if cache is None:
      layer_kv, mask = None, self_mask_BxTxT
    else:
      # The new tokens see each other (causally) and every valid cached slot before `index`.
      cache_mask_BxS = (jnp.arange(cache.max_len) < start)[None, :] & cache.valid_BxS
      # A fresh cache makes this mask a compile-time constant (all False); the barrier keeps
      # XLA from constant-folding the whole masked score tensor of a prefill.
      cache_mask_BxS = jax.lax.optimization_barrier(cache_mask_BxS)
      layer_kv, mask = (cache.k_LxBxSxKxH, cache.v_LxBxSxKxH), (self_mask_BxTxT, cache_mask_BxS)

    embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype,
                     embedding_init=_init(cfg.d_model ** -0.5, ("vocab", "embed")), name="embed")
    x_BxTxD = constrain(embed(tokens_BxT), ("batch", "length", "act_embed"))

    block = Block
    if cfg.remat != "none":
      block = nn.remat(block, prevent_cse=False, policy=_remat_policy(cfg.remat))
    layers = nn.scan(
        block,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(0, nn.broadcast, nn.broadcast),
        length=cfg.n_layers,
        metadata_params={nn.PARTITION_NAME: "layers"},
    )(cfg, name="layers")
    x_BxTxD, new_kv = layers(x_BxTxD, layer_kv, positions_BxT, mask)
    h_BxTxD = _rms_norm(cfg, "final_norm")(x_BxTxD)

    logits = values = None
    if cfg.lm_head:
      if cfg.tie_embeddings:
        logits = embed.attend(h_BxTxD)
      else:
        logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype,
                          kernel_init=_init(cfg.d_model ** -0.5, ("embed", "vocab")), name="unembed")(h_BxTxD)
      logits = constrain(logits.astype(jnp.float32), ("batch", "length", "act_vocab"))
    if cfg.scalar_head:
      values = nn.Dense(1, dtype=jnp.float32, param_dtype=cfg.weight_dtype,
                        kernel_init=_init(cfg.d_model ** -0.5, ("embed", None)), name="value_head")(
                            h_BxTxD.astype(jnp.float32))[..., 0]

    new_cache = None
    if cache is not None:
      write = lambda buf, new_LxBxTxKxH: jax.lax.dynamic_update_slice_in_dim(buf, new_LxBxTxKxH, start, axis=2)
      new_cache = KVCache(k_LxBxSxKxH=write(cache.k_LxBxSxKxH, new_kv[0]), v_LxBxSxKxH=write(cache.v_LxBxSxKxH, new_kv[1]),
                          valid_BxS=jax.lax.dynamic_update_slice_in_dim(cache.valid_BxS, valid_BxT, start, axis=1),
                          index=(start + t).astype(jnp.int32))
    return ModelOutput(logits_BxTxV=logits, values_BxT=values, cache=new_cache)
