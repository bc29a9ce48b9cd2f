"""Softmax attention: the plain XLA form, the cached decode form, and the fused / blockwise choices.

`model.attention_impl` picks how a call without a KV cache (training, scoring,
verifier forward passes) computes causal self-attention:

  xla      scores as one float32 [B, N, T, T] tensor (the reference; fine for short T).
  cudnn    `jax.nn.dot_product_attention(implementation="cudnn")`: cuDNN's fused flash
           attention on NVIDIA GPUs, bf16/fp16 only, no soft-capping or sliding windows.
  chunked  `chunked_attention.chunked_self_attention`: key blocks with an online softmax
           in plain XLA, no [T, T] tensor forward or backward, any backend and feature.
  auto     cudnn on a GPU when the call allows it (no padding among its tokens), else xla
           up to one chunk of keys and chunked beyond.

Calls with a cache (prefill, decode steps) always use `attend_cached`, which reads the
cache in place; a [T, S] score block per layer is what a prefill of T tokens costs.
"""
import functools

import jax
import jax.numpy as jnp

from ttc_jax.models.chunked_attention import MASKED, chunked_self_attention

IMPLS = ("auto", "xla", "cudnn", "chunked")
CHUNK = 512  # Keys per block of the chunked path; its peak is about B * N * T * CHUNK float32s.
_CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)


def cudnn_unsupported(*, dtype, head_size: int, softcap: float, sliding: bool) -> str:
  """Why cuDNN's fused attention cannot run this model ('' when it can, backend aside)."""
  if jnp.dtype(dtype) not in [jnp.dtype(d) for d in _CUDNN_DTYPES]:
    return f"compute dtype {jnp.dtype(dtype).name} (cuDNN flash attention takes bfloat16 or float16)"
  if softcap:
    return "attention soft-capping (Gemma 2), which cuDNN's kernel does not apply"
  if sliding:
    return "sliding-window layers (the window is a per-layer scanned value, cuDNN needs it static)"
  if head_size % 8 or head_size > 128:
    return f"head size {head_size} (cuDNN needs a multiple of 8, at most 128 here)"
  return ""


def choose_impl(requested: str, *, dtype, head_size: int, softcap: float, sliding: bool, seq_len: int,
                padded: bool = False, backend: str | None = None) -> str:
  """The implementation a call runs: `requested` unless it is "auto".

  `padded`: the call has padding tokens. auto leaves those calls to the XLA paths: cuDNN would
  take the padding as a dense additive bias, slower and with shape limits of its own.
  """
  if requested != "auto":
    return requested
  backend = backend or jax.default_backend()
  if backend == "gpu" and not padded and not cudnn_unsupported(dtype=dtype, head_size=head_size, softcap=softcap,
                                                                sliding=sliding):
    return "cudnn"
  return "xla" if seq_len <= CHUNK else "chunked"


def window_mask(q_pos_BxT, k_pos_BxS, window):
  """bool[B, T, S]: key within the query's sliding window (itself included); window 0 = no limit."""
  in_window = (q_pos_BxT[:, :, None] - k_pos_BxS[:, None, :]) < window
  return in_window | (window <= 0)


def capped(scores, softcap: float):
  """Gemma 2's attention soft-capping (none when softcap is 0), applied before any masking."""
  return jnp.tanh(scores / softcap) * softcap if softcap else scores


def grouped_scores(q_BxTxKxGxH, k_BxSxKxH, scale: float, softcap: float) -> jax.Array:
  """float32[B, K, G, T, S] attention logits of keys in [B, S, K, H] order, soft-capped."""
  s = jnp.einsum("btkgh,bskh->bkgts", q_BxTxKxGxH, k_BxSxKxH, preferred_element_type=jnp.float32) * scale
  return capped(s, softcap)


def cache_scores(q_BxTxKxGxH, cache_k_BxKxSxH, scale: float, softcap: float) -> jax.Array:
  """float32[B, K, G, T, S] logits against a cache in its own [B, K, S, H] layout, soft-capped."""
  s = jnp.einsum("btkgh,bksh->bkgts", q_BxTxKxGxH, cache_k_BxKxSxH, preferred_element_type=jnp.float32) * scale
  return capped(s, softcap)


def attend(q_BxTxNxH, k_BxSxKxH, v_BxSxKxH, mask_BxTxS, *, scale: float, softcap: float = 0.0) -> jax.Array:
  """Grouped-query softmax attention; scores and softmax in float32."""
  b, t, n, h = q_BxTxNxH.shape
  k_heads = k_BxSxKxH.shape[2]
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_heads, n // k_heads, h)
  scores = grouped_scores(q_BxTxKxGxH, k_BxSxKxH, scale, softcap)
  scores = jnp.where(mask_BxTxS[:, None, None], scores, MASKED)
  probs = jax.nn.softmax(scores, axis=-1).astype(v_BxSxKxH.dtype)
  out = jnp.einsum("bkgts,bskh->btkgh", probs, v_BxSxKxH)
  return out.reshape(b, t, n, h)


def attend_cached(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxKxSxH, cache_v_BxKxSxH,
                  cache_mask_BxTxS, *, scale: float, softcap: float = 0.0) -> jax.Array:
  """`attend` over the cached slots plus the T new tokens, with one softmax over both.

  The cache is only read here, in its own [B, K, S, H] layout (rows and kv heads are
  the matmuls' batch axes, so nothing is transposed or copied); the new keys and
  values are written into it after the layer (`Transformer`).
  """
  b, t, n, h = q_BxTxNxH.shape
  k_heads = k_BxTxKxH.shape[2]
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_heads, n // k_heads, h)
  s_cache = cache_scores(q_BxTxKxGxH, cache_k_BxKxSxH, scale, softcap)
  s_self = grouped_scores(q_BxTxKxGxH, k_BxTxKxH, scale, softcap)
  s_cache = jnp.where(cache_mask_BxTxS[:, None, None], s_cache, MASKED)
  s_self = jnp.where(self_mask_BxTxT[:, None, None], s_self, MASKED)
  m = jax.lax.stop_gradient(jnp.maximum(s_cache.max(-1, keepdims=True), s_self.max(-1, keepdims=True)))
  e_cache, e_self = jnp.exp(s_cache - m), jnp.exp(s_self - m)
  denom = e_cache.sum(-1, keepdims=True) + e_self.sum(-1, keepdims=True)
  out = (jnp.einsum("bkgts,bksh->btkgh", (e_cache / denom).astype(cache_v_BxKxSxH.dtype), cache_v_BxKxSxH)
         + jnp.einsum("bkgtu,bukh->btkgh", (e_self / denom).astype(v_BxTxKxH.dtype), v_BxTxKxH))
  return out.reshape(b, t, n, h)


def partial_from_scores(scores_xS, values, spec: str):
  """One part of a softmax split over slots, un-normalised: (out, max, sum), float32.

  `scores_xS` are masked float32 scores with the slots last; `spec` is the einsum of the
  probabilities and `values`. With p = exp(score - max): out = sum p * v, sum = sum p.
  The decode kernel (`decode_attention`) returns its part in this form.
  """
  m = scores_xS.max(-1)
  e = jnp.exp(scores_xS - m[..., None])
  out = jnp.einsum(spec, e.astype(values.dtype), values, preferred_element_type=jnp.float32)
  return out, m, e.sum(-1)


def merge_partials(parts, dtype):
  """The softmax over the union of the parts' slots: each (out [..., H], max [...], sum [...]) by log-sum-exp."""
  m = functools.reduce(jnp.maximum, [p[1] for p in parts])
  weights = [jnp.exp(p_m - m) for _, p_m, _ in parts]
  denom = sum(w * p_l for w, (_, _, p_l) in zip(weights, parts))
  out = sum(w[..., None] * p_o for w, (p_o, _, _) in zip(weights, parts))
  return (out / denom[..., None]).astype(dtype)


def causal_self_attention(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, positions_BxT, valid_BxT, window, *, impl: str,
                          scale: float, softcap: float = 0.0, sliding: bool = False,
                          chunk: int = CHUNK) -> jax.Array:
  """Causal self-attention over T tokens without a cache, by `impl` (one of IMPLS).

  Args:
    q_BxTxNxH, k_BxTxKxH, v_BxTxKxH: RoPE'd queries, keys and values (grouped-query: N = G * K).
    positions_BxT: int32 positions, which sliding windows measure distance in.
    valid_BxT: bool (False = padding, which no query attends to), or None when every token is real.
    window: int32 scalar, this layer's sliding window, <= 0 for none; `sliding` says whether
      the model has any sliding layers at all (static, for choosing an implementation).
  Returns:
    [B, T, N, H] in the query dtype. Every implementation computes the same function.
  """
  b, t = q_BxTxNxH.shape[:2]
  impl = choose_impl(impl, dtype=q_BxTxNxH.dtype, head_size=q_BxTxNxH.shape[-1], softcap=softcap,
                     sliding=sliding, seq_len=t, padded=valid_BxT is not None)
  if impl == "cudnn":
    why = cudnn_unsupported(dtype=q_BxTxNxH.dtype, head_size=q_BxTxNxH.shape[-1], softcap=softcap, sliding=sliding)
    if why:
      raise ValueError(f"model.attention_impl='cudnn' cannot run {why}; use 'auto', 'chunked' or 'xla'")
    # Key padding as a [B, 1, 1, T] mask (jax adds it as a bias); the causal part is cuDNN's own.
    mask = None if valid_BxT is None else valid_BxT[:, None, None, :]
    return jax.nn.dot_product_attention(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, mask=mask, scale=scale, is_causal=True,
                                        implementation="cudnn")
  if valid_BxT is None:
    valid_BxT = jnp.ones((b, t), bool)
  if impl == "chunked":
    return chunked_self_attention(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, positions_BxT, valid_BxT,
                                  jnp.asarray(window, jnp.int32), scale, softcap, chunk)
  if impl != "xla":
    raise ValueError(f"model.attention_impl={impl!r} must be one of {IMPLS}")
  causal_TxT = jnp.arange(t)[None, :] <= jnp.arange(t)[:, None]
  mask_BxTxT = causal_TxT[None] & valid_BxT[:, None, :]
  if sliding:
    mask_BxTxT = mask_BxTxT & window_mask(positions_BxT, positions_BxT, window)
  return attend(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, mask_BxTxT, scale=scale, softcap=softcap)
