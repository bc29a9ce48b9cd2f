"""Decode attention over a shared prompt prefix plus each row's own suffix ("cascade attention").

With a `SharedPrefix` the N rows of one problem read the same prompt keys and values.
Their queries are grouped per problem, so the prefix scores are one matmul per problem
and kv head, [N * T * G, H] x [H, Sp], that reads the prefix once, instead of N row
matmuls that each read their own copy of it. Each row's suffix slots and the T new
tokens are scored as in `attention.attend_cached`. The three parts share one softmax:
every part is exponentiated against the maximum over all three (the log-sum-exp merge),
so the result is the softmax over the concatenated slots, up to float summation order.
"""
import jax
import jax.numpy as jnp

from ttc_jax.models.attention import MASKED, cache_scores, capped, grouped_scores


def prefix_mask(prefix_valid_PxS, prefix_pos_PxS, positions_BxT, window) -> jax.Array:
  """bool[P, N, T, Sp] (or broadcastable to it): the prefix slots each new token may attend to.

  `window` (int32 scalar, 0 = no limit) is the layer's sliding window, or None for a model without one.
  """
  p = prefix_valid_PxS.shape[0]
  mask_Px1x1xS = prefix_valid_PxS[:, None, None, :]
  if window is None:
    return mask_Px1x1xS
  b, t = positions_BxT.shape
  q_pos_PxNxT = positions_BxT.reshape(p, b // p, t)
  in_window = (q_pos_PxNxT[..., None] - prefix_pos_PxS[:, None, None, :]) < window
  return mask_Px1x1xS & (in_window | (window <= 0))


def prefix_scores(q_BxTxKxGxH, prefix_k_PxKxSxH, prefix_mask_PxNxTxS, scale: float, softcap: float) -> jax.Array:
  """float32[P, K, N, T, G, Sp] masked scores of every row's queries against its problem's prefix.

  In the matmul's own output order: the problem and kv head are its batch, the N rows its free dimension.
  """
  b, t, k_heads, g, h = q_BxTxKxGxH.shape
  p = prefix_k_PxKxSxH.shape[0]
  s_prefix = jnp.einsum("pntkgh,pksh->pkntgs", q_BxTxKxGxH.reshape(p, b // p, t, k_heads, g, h), prefix_k_PxKxSxH,
                        preferred_element_type=jnp.float32) * scale
  return jnp.where(prefix_mask_PxNxTxS[:, None, :, :, None], capped(s_prefix, softcap), MASKED)


def attend_cascade(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxKxSxH, cache_v_BxKxSxH,
                   cache_mask_BxTxS, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_mask_PxNxTxS, *, scale: float,
                   softcap: float = 0.0) -> jax.Array:
  """Grouped-query attention over prefix, suffix cache and new tokens; scores and softmax in float32.

  Rows b = p * N + n (problem-major) read prefix p. Returns [B, T, heads, H].
  """
  b, t, n_heads, h = q_BxTxNxH.shape
  p, k_heads = prefix_k_PxKxSxH.shape[:2]
  rows, g = b // p, n_heads // k_heads
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_heads, g, h)
  # Prefix scores stay in the matmul's own output order [P, K, (N, T, G), Sp]: the problem
  # and kv head are its batch, the N rows its free dimension. Only per-query scalars (max,
  # sum) move between that order and the rows' [B, K, G, T].
  to_rows = lambda x_PxKxNxTxG: x_PxKxNxTxG.transpose(0, 2, 1, 4, 3).reshape(b, k_heads, g, t)
  to_prefix = lambda x_BxKxGxT: x_BxKxGxT.reshape(p, rows, k_heads, g, t).transpose(0, 2, 1, 4, 3)
  s_prefix = prefix_scores(q_BxTxKxGxH, prefix_k_PxKxSxH, prefix_mask_PxNxTxS, scale, softcap)
  s_cache = cache_scores(q_BxTxKxGxH, cache_k_BxKxSxH, scale, softcap)
  s_cache = jnp.where(cache_mask_BxTxS[:, None, None], s_cache, MASKED)
  s_self = grouped_scores(q_BxTxKxGxH, k_BxTxKxH, scale, softcap)
  s_self = jnp.where(self_mask_BxTxT[:, None, None], s_self, MASKED)

  m_BxKxGxT = jax.lax.stop_gradient(
      jnp.maximum(jnp.maximum(to_rows(s_prefix.max(-1)), s_cache.max(-1)), s_self.max(-1)))
  e_prefix = jnp.exp(s_prefix - to_prefix(m_BxKxGxT)[..., None])
  e_cache, e_self = jnp.exp(s_cache - m_BxKxGxT[..., None]), jnp.exp(s_self - m_BxKxGxT[..., None])
  denom_BxKxGxT = to_rows(e_prefix.sum(-1)) + e_cache.sum(-1) + e_self.sum(-1)
  probs_prefix = (e_prefix / to_prefix(denom_BxKxGxT)[..., None]).astype(prefix_v_PxKxSxH.dtype)
  out_PxKxNxTxGxH = jnp.einsum("pkntgs,pksh->pkntgh", probs_prefix, prefix_v_PxKxSxH)
  out = out_PxKxNxTxGxH.transpose(0, 2, 3, 1, 4, 5).reshape(b, t, k_heads, g, h)
  denom = denom_BxKxGxT[..., None]
  out = out + jnp.einsum("bkgts,bksh->btkgh", (e_cache / denom).astype(cache_v_BxKxSxH.dtype), cache_v_BxKxSxH)
  out = out + jnp.einsum("bkgtu,bukh->btkgh", (e_self / denom).astype(v_BxTxKxH.dtype), v_BxTxKxH)
  return out.reshape(b, t, n_heads, h)
