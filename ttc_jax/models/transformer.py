"""Flax decoder-only transformer: RoPE, RMSNorm, gated MLP, grouped-query attention.

One module covers this project's own model and the open families (Llama 3,
Qwen2 / 2.5 / 3, Mistral, Gemma 2 / 3) through `ModelConfig` switches. Layers
are one `nn.scan` (compile time does not grow with depth); what differs per
layer (RoPE frequencies, sliding window) is a scanned input, not a branch.
Every parameter carries logical axis names (see ttc_jax/parallel/rules.py), and
the same `__call__` serves training (full sequence), prefill and one-token
decode steps (with an explicit `KVCache`).
"""
import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

import numpy as np

from ttc_jax.models import attention, decode_attention
from ttc_jax.models.config import ModelConfig, rope_inv_freq
from ttc_jax.models.kv_cache import KVCache, next_index, write_layer, write_rows
from ttc_jax.models.prefix_attention import attend_cascade, prefix_mask

_MASKED = attention.MASKED  # Also for padded vocabulary logits.


def _init(stddev: float, names: tuple[str | None, ...]):
  return nn.with_logical_partitioning(nn.initializers.normal(stddev), names)


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
  """Sharding hint for an activation by logical axis names (no-op without a mesh)."""
  return nn.with_logical_constraint(x, names)


def apply_rope(x_BxTxNxH: jax.Array, positions_BxT: jax.Array, inv_freq_H2: jax.Array) -> jax.Array:
  """Rotary position embedding (rotate-half form, the Hugging Face layout), computed in float32.

  `inv_freq_H2` carries the layer's theta and RoPE scaling (`models.config.rope_inv_freq`).
  """
  angles_BxTx1xH2 = positions_BxT[:, :, None, None].astype(jnp.float32) * inv_freq_H2
  sin, cos = jnp.sin(angles_BxTx1xH2), jnp.cos(angles_BxTx1xH2)
  x1, x2 = jnp.split(x_BxTxNxH.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxNxH.dtype)


class RMSNorm(nn.Module):
  """RMSNorm computed in float32; Gemma's variant scales by (1 + w) with w stored as is.

  Normalising in float32 and casting before the scale follows transformers' Llama;
  the (1 + w) variant multiplies in float32 before the cast, as Gemma's does.
  """
  eps: float
  plus_one: bool
  dtype: Any
  param_dtype: Any

  @nn.compact
  def __call__(self, x):
    init = nn.initializers.zeros if self.plus_one else nn.initializers.ones
    scale = self.param("scale", nn.with_logical_partitioning(init, ("norm",)), (x.shape[-1],), self.param_dtype)
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    if self.plus_one:
      return (y * (1.0 + scale.astype(jnp.float32))).astype(self.dtype)
    return y.astype(self.dtype) * scale.astype(self.dtype)


def _rms_norm(cfg: ModelConfig, name: str) -> nn.Module:
  return RMSNorm(eps=cfg.norm_eps, plus_one=cfg.norm_plus_one, dtype=cfg.compute_dtype,
                 param_dtype=cfg.weight_dtype, name=name)


def _attend_with_cache(cfg, q, k, v, positions_BxT, window, self_mask_BxTxT, cache_k, cache_v, cache_mask_BxS,
                       cache_pos_BxS, prefix):
  """Attention of T new tokens over a row cache (and a shared prefix, if any) plus themselves.

  `model.decode_attention_impl`: the Pallas kernel reads each row's filled cache slots (and a
  shared prefix once per block of rows) in place; XLA scores whole buffers. Either serves any T.
  """
  scores = dict(scale=cfg.attention_scale, softcap=cfg.attn_softcap)
  sliding_window = window if cfg.sliding_window else None
  if decode_attention.choose_impl(cfg.decode_attention_impl) == "pallas":
    kernel = dict(window=None if sliding_window is None else decode_attention.Window(window, positions_BxT),
                  cache_pos_BxS=cache_pos_BxS, **scores)
    if prefix is None:
      return decode_attention.attend_cached_pallas(q, k, v, self_mask_BxTxT, cache_k, cache_v,
                                                   cache_mask_BxS[:, None, :], **kernel)
    prefix_k, prefix_v, prefix_valid, prefix_pos = prefix
    return decode_attention.attend_cascade_pallas(q, k, v, self_mask_BxTxT, cache_k, cache_v,
                                                  cache_mask_BxS[:, None, :], prefix_k, prefix_v, prefix_valid,
                                                  prefix_pos_PxS=prefix_pos, **kernel)
  cache_mask_BxTxS = cache_mask_BxS[:, None, :]
  if sliding_window is not None:
    cache_mask_BxTxS = cache_mask_BxTxS & attention.window_mask(positions_BxT, cache_pos_BxS, window)
  if prefix is None:
    return attention.attend_cached(q, k, v, self_mask_BxTxT, cache_k, cache_v, cache_mask_BxTxS, **scores)
  prefix_k, prefix_v, prefix_valid, prefix_pos = prefix
  mask = prefix_mask(prefix_valid, prefix_pos, positions_BxT, sliding_window)
  return attend_cascade(q, k, v, self_mask_BxTxT, cache_k, cache_v, cache_mask_BxTxS, prefix_k, prefix_v, mask,
                        **scores)


class Attention(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD, positions_BxT, masks, layer_kv, inv_freq_H2, window):
    """masks: without a cache or with a fresh one (valid BxT or None = all valid,), attended by
    `cfg.attention_impl`; with a written one (self mask BxTxT, cache slot mask BxS, cache positions BxS).

    With a cache, `layer_kv` is this layer's (keys, values, prefix) slots, read but not written;
    prefix is None or the shared prompt's (keys, values, valid, positions) (`kv_cache.SharedPrefix`).
    """
    cfg = self.cfg
    n, k_heads, h, d = cfg.n_heads, cfg.n_kv_heads, cfg.head_size, cfg.d_model

    def weight(name, shape, stddev, names):
      # Explicit einsum weights rather than DenseGeneral, whose kernel reshape at
      # init clashes with logical sharding constraints inside nn.scan.
      return self.param(name, _init(stddev, names), shape, cfg.weight_dtype).astype(cfg.compute_dtype)

    def bias(name, heads, names):
      return self.param(name, nn.with_logical_partitioning(nn.initializers.zeros, names), (heads, h),
                        cfg.weight_dtype).astype(cfg.compute_dtype)

    x_BxTxD = x_BxTxD.astype(cfg.compute_dtype)
    q = jnp.einsum("btd,dnh->btnh", x_BxTxD, weight("q", (d, n, h), d ** -0.5, ("embed", "heads", "head_dim")))
    k = jnp.einsum("btd,dkh->btkh", x_BxTxD, weight("k", (d, k_heads, h), d ** -0.5, ("embed", "kv_heads", "head_dim")))
    v = jnp.einsum("btd,dkh->btkh", x_BxTxD, weight("v", (d, k_heads, h), d ** -0.5, ("embed", "kv_heads", "head_dim")))
    if cfg.qkv_bias:
      q = q + bias("q_bias", n, ("heads", "head_dim"))
      k = k + bias("k_bias", k_heads, ("kv_heads", "head_dim"))
      v = v + bias("v_bias", k_heads, ("kv_heads", "head_dim"))
    if cfg.qk_norm:
      q, k = _rms_norm(cfg, "q_norm")(q), _rms_norm(cfg, "k_norm")(k)
    q = constrain(apply_rope(q, positions_BxT, inv_freq_H2), ("batch", "length", "act_heads", None))
    k = apply_rope(k, positions_BxT, inv_freq_H2)

    scores = dict(scale=cfg.attention_scale, softcap=cfg.attn_softcap)
    if len(masks) == 1:  # No cache, or a fresh one (`KVCache.fresh`): the tokens attend among themselves.
      (valid_BxT,) = masks
      out_BxTxNxH = attention.causal_self_attention(q, k, v, positions_BxT, valid_BxT, window,
                                                    impl=cfg.attention_impl, sliding=bool(cfg.sliding_window),
                                                    **scores)
      new_kv = None if layer_kv is None else (k.astype(layer_kv[0].dtype), v.astype(layer_kv[1].dtype))
    else:
      self_mask_BxTxT, cache_mask_BxS, cache_pos_BxS = masks
      if cfg.sliding_window:
        self_mask_BxTxT = self_mask_BxTxT & attention.window_mask(positions_BxT, positions_BxT, window)
      cache_k, cache_v, prefix = layer_kv
      k, v = k.astype(cache_k.dtype), v.astype(cache_v.dtype)
      out_BxTxNxH = _attend_with_cache(cfg, q, k, v, positions_BxT, window, self_mask_BxTxT, cache_k, cache_v,
                                       cache_mask_BxS, cache_pos_BxS, prefix)
      new_kv = (k, v)  # Only the T new tokens; Transformer writes them into the cache.
    out_std = (n * h) ** -0.5 / (2 * cfg.n_layers) ** 0.5
    out = jnp.einsum("btnh,nhd->btd", out_BxTxNxH, weight("o", (n, h, d), out_std, ("heads", "head_dim", "embed")))
    return out, new_kv


_ACTIVATIONS = {"silu": nn.silu, "gelu_tanh": functools.partial(nn.gelu, approximate=True)}


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD):
    cfg = self.cfg
    dense = functools.partial(nn.Dense, use_bias=False, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype)
    gate = dense(cfg.d_ff, kernel_init=_init(cfg.d_model ** -0.5, ("embed", "mlp")), name="gate")(x_BxTxD)
    up = dense(cfg.d_ff, kernel_init=_init(cfg.d_model ** -0.5, ("embed", "mlp")), name="up")(x_BxTxD)
    h_BxTxF = constrain(_ACTIVATIONS[cfg.activation](gate) * up, ("batch", "length", "act_mlp"))
    out_std = cfg.d_ff ** -0.5 / (2 * cfg.n_layers) ** 0.5
    return dense(cfg.d_model, kernel_init=_init(out_std, ("mlp", "embed")), name="down")(h_BxTxF)


class Block(nn.Module):
  """Pre-norm residual block (Gemma adds post-norms); the scan carry is the residual stream.

  `layer_consts` is this layer's (RoPE inverse frequencies [H/2], sliding window or 0).
  """
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_BxTxD, layer_kv, layer_consts, positions_BxT, masks):
    cfg = self.cfg
    inv_freq_H2, window = layer_consts
    attn_out, new_kv = Attention(cfg, name="attn")(
        _rms_norm(cfg, "attn_norm")(x_BxTxD), positions_BxT, masks, layer_kv, inv_freq_H2, window)
    if cfg.post_norms:
      attn_out = _rms_norm(cfg, "post_attn_norm")(attn_out)
    x_BxTxD = x_BxTxD + attn_out
    mlp_out = Mlp(cfg, name="mlp")(_rms_norm(cfg, "mlp_norm")(x_BxTxD))
    if cfg.post_norms:
      mlp_out = _rms_norm(cfg, "post_mlp_norm")(mlp_out)
    x_BxTxD = x_BxTxD + mlp_out
    return constrain(x_BxTxD, ("batch", "length", "act_embed")), new_kv


@flax.struct.dataclass
class ModelOutput:
  logits_BxTxV: Any  # float32, or None when cfg.lm_head is False. T = K positions when `read_BxK` is given.
  values_BxT: Any  # float32 scalar head output, or None when cfg.scalar_head is False.
  cache: Any  # The updated KVCache, or None when called without one.
  class_logits_BxTxC: Any = None  # float32 classification head output, or None when cfg.classifier_classes is 0.


def read_positions(x_BxT, read_BxK):
  """x at the positions a caller reads ([B, T, ...] -> [B, K, ...]); None reads every position."""
  if read_BxK is None or x_BxT is None:
    return x_BxT
  idx = read_BxK.astype(jnp.int32).reshape(read_BxK.shape + (1,) * (x_BxT.ndim - 2))
  return jnp.take_along_axis(x_BxT, idx, axis=1)


def _remat_policy(name: str):
  if name == "dots":
    return jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims
  return None  # "full": save nothing, recompute the whole block.


def layer_constants(cfg: ModelConfig) -> tuple[jax.Array, jax.Array]:
  """The scanned per-layer inputs: (float32[L, H/2] RoPE inverse frequencies, int32[L] window or 0)."""
  sliding = cfg.sliding_layers
  inv_freq = np.stack([rope_inv_freq(cfg, s) for s in sliding])
  window = np.asarray([cfg.sliding_window if s else 0 for s in sliding], np.int32)
  return jnp.asarray(inv_freq), jnp.asarray(window)


class Transformer(nn.Module):
  """Decoder-only LM with an optional scalar (reward) head and classification (PRM) head."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens_BxT: jax.Array, positions_BxT: jax.Array | None = None,
               valid_BxT: jax.Array | None = None, cache: KVCache | None = None,
               read_BxK: jax.Array | None = None) -> ModelOutput:
    """Runs the model.

    Args:
      tokens_BxT: int32 token ids.
      positions_BxT: int32 RoPE positions; default 0..T-1 (after each row's `cache.index_B` with a cache).
      valid_BxT: bool, False for padding tokens, which no other token attends to.
      cache: with a cache, row b's T tokens are written at its slots [index_B[b], index_B[b]+T)
        and attend to every valid earlier slot of the row; the row's index then moves past its
        last valid new token (`kv_cache.next_index`). Prefill (T = prompt length) and decode
        steps (T = 1) are the same call.
      read_BxK: int32 indices into the T tokens where logits and values are wanted;
        None = every position. A prefill reads one position, so a 150k-vocabulary
        model never materialises [B, prompt, vocab] logits.
    """
    cfg = self.cfg
    b, t = tokens_BxT.shape
    start_Bx1 = 0 if cache is None else cache.index_B[:, None]
    if not self.is_initializing() and "layers" not in self.variables.get("params", {}) and cache is None:
      raise ValueError("Transformer: these params have their layers unstacked (`unstack_layers`), which only "
                       "cached calls read; pass the stacked params for a call without a cache")
    if positions_BxT is None:
      if cache is not None and cache.prefix is not None:
        raise ValueError("Transformer: a cache with a shared prefix needs explicit positions (its indexes count "
                         "only the rows' own slots)")
      positions_BxT = jnp.broadcast_to(start_Bx1 + jnp.arange(t, dtype=jnp.int32), (b, t))
    if cache is None or (cache.fresh and cache.prefix is None):
      # None: every token real, which lets fused attention use its causal-only kernel. A fresh
      # cache holds nothing to attend to: its filling call attends like one without a cache.
      masks = (valid_BxT,)
      if cache is not None and valid_BxT is None:
        valid_BxT = jnp.ones((b, t), bool)  # What the cache records (the mask above stays None).
    else:
      if valid_BxT is None:
        valid_BxT = jnp.ones((b, t), bool)
      causal_TxT = jnp.arange(t)[None, :] <= jnp.arange(t)[:, None]
      self_mask_BxTxT = causal_TxT[None] & valid_BxT[:, None, :]
      # The new tokens see each other (causally) and every valid cached slot before their row's index.
      # A row with no real new token (a finished sample fed padding, a solution already scored) sees
      # none: its output is never used, and the decode kernel then skips reading its cache.
      cache_mask_BxS = (jnp.arange(cache.max_len)[None, :] < start_Bx1) & cache.valid_BxS & valid_BxT.any(1)[:, None]
      # A fresh cache makes this mask a compile-time constant (all False); the barrier keeps
      # XLA from constant-folding the whole masked score tensor of a prefill.
      cache_mask_BxS = jax.lax.optimization_barrier(cache_mask_BxS)
      masks = (self_mask_BxTxT, cache_mask_BxS, cache.positions_BxS)

    embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype,
                     embedding_init=_init(cfg.d_model ** -0.5, ("vocab", "embed")), name="embed")
    x_BxTxD = embed(tokens_BxT)
    if cfg.embed_scale:
      # Gemma rounds sqrt(d_model) to the activation dtype first (sqrt(2304) is not exact in bf16).
      x_BxTxD = x_BxTxD * jnp.asarray(cfg.d_model ** 0.5, cfg.compute_dtype)
    x_BxTxD = constrain(x_BxTxD, ("batch", "length", "act_embed"))

    block = Block
    if cfg.remat != "none":
      block = nn.remat(block, prevent_cse=False, policy=_remat_policy(cfg.remat))
    layers = nn.scan(
        block,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(0, 0, nn.broadcast, nn.broadcast),
        length=cfg.n_layers,
        metadata_params={nn.PARTITION_NAME: "layers"},
    )(cfg, name="layers")
    if cache is None:
      x_BxTxD, _ = layers(x_BxTxD, None, layer_constants(cfg), positions_BxT, masks)
      new_cache = None
    else:
      x_BxTxD, new_cache = self._cached_layers(x_BxTxD, cache, positions_BxT, valid_BxT, masks)
    h_BxTxD = _rms_norm(cfg, "final_norm")(x_BxTxD)
    h_BxTxD = read_positions(h_BxTxD, read_BxK)

    logits = values = None
    if cfg.lm_head:
      if cfg.tie_embeddings:
        logits = embed.attend(h_BxTxD)
      else:
        logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype,
                          kernel_init=_init(cfg.d_model ** -0.5, ("embed", "vocab")), name="unembed")(h_BxTxD)
      logits = logits.astype(jnp.float32)
      if cfg.final_softcap:
        logits = jnp.tanh(logits / cfg.final_softcap) * cfg.final_softcap
      if cfg.valid_vocab_size and cfg.valid_vocab_size < cfg.vocab_size:
        logits = jnp.where(jnp.arange(cfg.vocab_size) < cfg.valid_vocab_size, logits, _MASKED)
      logits = constrain(logits, ("batch", "length", "act_vocab"))
    if cfg.scalar_head:
      values = nn.Dense(1, dtype=jnp.float32, param_dtype=cfg.weight_dtype,
                        kernel_init=_init(cfg.d_model ** -0.5, ("embed", None)), name="value_head")(
                            h_BxTxD.astype(jnp.float32))[..., 0]
    class_logits = None
    if cfg.classifier_classes:
      # Qwen2.5-Math-PRM's `score` = Sequential(Linear(D, D), ReLU, Linear(D, C)), in the compute dtype.
      dense = functools.partial(nn.Dense, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype)
      hidden = nn.relu(dense(cfg.d_model, kernel_init=_init(cfg.d_model ** -0.5, ("embed", "mlp")),
                             name="classifier_hidden")(h_BxTxD))
      class_logits = dense(cfg.classifier_classes, kernel_init=_init(cfg.d_model ** -0.5, ("mlp", None)),
                           name="classifier_out")(hidden).astype(jnp.float32)
    return ModelOutput(logits_BxTxV=logits, values_BxT=values, cache=new_cache, class_logits_BxTxC=class_logits)

  def _cached_layers(self, x_BxTxD, cache: KVCache, positions_BxT, valid_BxT, masks):
    """The layers unrolled over the cache's per-layer buffers; returns (residual stream, updated cache).

    Layer i's weights are a static slice of the scanned stack, or its own subtree once
    `unstack_layers` has split them (decode loops do that once, before the loop, so no
    step copies a layer's weights out of the stack).
    """
    cfg = self.cfg
    if self.is_initializing():
      raise ValueError("Transformer: initialise without a cache (the cache layout follows the scanned parameters)")
    params = self.variables["params"]
    inv_freq_LxH2, window_L = layer_constants(cfg)
    new_k, new_v = [], []
    for i in range(cfg.n_layers):
      if "layers" in params:
        layer_params = jax.tree_util.tree_map(lambda a: a[i], nn.meta.unbox(params["layers"]))
      else:
        layer_params = nn.meta.unbox(params[f"layer_{i}"])
      shared = cache.prefix
      prefix = None if shared is None else (shared.k_PxKxSxH[i], shared.v_PxKxSxH[i], shared.valid_PxS,
                                            shared.positions_PxS)
      layer_kv = (cache.k_BxKxSxH[i], cache.v_BxKxSxH[i], prefix)
      x_BxTxD, (k_BxTxKxH, v_BxTxKxH) = Block(cfg, parent=None).apply(
          {"params": layer_params}, x_BxTxD, layer_kv, (inv_freq_LxH2[i], window_L[i]), positions_BxT, masks)
      new_k.append(write_layer(layer_kv[0], k_BxTxKxH, cache.index_B))
      new_v.append(write_layer(layer_kv[1], v_BxTxKxH, cache.index_B))
    return x_BxTxD, KVCache(k_BxKxSxH=tuple(new_k), v_BxKxSxH=tuple(new_v),
                            valid_BxS=write_rows(cache.valid_BxS, valid_BxT, cache.index_B),
                            positions_BxS=write_rows(cache.positions_BxS, positions_BxT, cache.index_B),
                            index_B=constrain(next_index(cache.index_B, valid_BxT), ("batch",)), prefix=cache.prefix)


def unstack_layers(params):
  """`params` with the scanned layer stack split into one subtree per layer ("layer_0", ...).

  Cached calls (prefill, decode steps, search) accept either form; the split one
  lets a decode loop read each layer's weights where they lie. The split is a copy
  of the layer weights, so decode loops make it once per call, before the loop (and
  a caller that only decodes can make it once and drop the stacked tree). Params
  without a "layers" stack (already split, scripted test models) come back as they are.
  """
  inner = params.get("params") if hasattr(params, "get") else None
  if not hasattr(inner, "get") or "layers" not in inner:
    return params
  layers = nn.meta.unbox(inner["layers"])
  n_layers = jax.tree_util.tree_leaves(layers)[0].shape[0]
  split = {f"layer_{i}": jax.tree_util.tree_map(lambda a: a[i], layers) for i in range(n_layers)}
  rest = {name: sub for name, sub in inner.items() if name != "layers"}
  return {**params, "params": {**rest, **split}}
