"""Causal self-attention in key blocks with an online softmax: no [T, T] tensor, forward or backward.

The forward pass walks the keys `chunk` at a time, keeping a running max, sum and
weighted value sum per query (FlashAttention's recurrence, in plain XLA so it
runs on CPU, TPU and GPU alike); it saves only the output and each query's
running max and sum. The backward pass (`jax.custom_vjp`) walks the key blocks again and
recomputes each block's probabilities from the saved max and sum, so its memory is
one [T, chunk] block per kv head group, not [T, T].

Masking matches `attention.attend` exactly, including its finite `MASKED`
value: a query that sees no key (a padding token after padding only) averages
all keys uniformly instead of producing NaN. Keys added to round T up to a whole
number of chunks are excluded with -inf, so they never enter that average.
"""
import functools

import jax
import jax.numpy as jnp

MASKED = -1e30  # A masked score: finite, so a row with no visible key gives a uniform softmax, not NaN.


def _block_scores(q_BxTxKxGxH, k_BxCxKxH, scale: float, softcap: float):
  """(capped float32[B, K, G, T, C] scores, d capped / d raw or None)."""
  raw = jnp.einsum("btkgh,bckh->bkgtc", q_BxTxKxGxH, k_BxCxKxH, preferred_element_type=jnp.float32) * scale
  if not softcap:
    return raw, None
  capped = jnp.tanh(raw / softcap) * softcap
  return capped, 1.0 - jnp.square(capped / softcap)


def _block_mask(block, q_pos_BxT, k_pos_BxC, k_valid_BxC, k_index_C, window):
  """(bool[B, 1, 1, T, C] visible, bool[1, 1, 1, 1, C] real key, not chunk padding)."""
  t = q_pos_BxT.shape[1]
  causal_TxC = k_index_C[None, :] <= jnp.arange(t)[:, None]
  in_window_BxTxC = ((q_pos_BxT[:, :, None] - k_pos_BxC[:, None, :]) < window) | (window <= 0)
  visible = causal_TxC[None] & k_valid_BxC[:, None, :] & in_window_BxTxC
  real = k_index_C < block
  return visible[:, None, None], real[None, None, None, None, :]


def _masked(scores, visible, real):
  return jnp.where(real, jnp.where(visible, scores, MASKED), -jnp.inf)


def _split_keys(x_BxSx, chunk: int, fill):
  """[B, S, ...] -> [S / chunk, B, chunk, ...], padding S up to a multiple of `chunk` with `fill`."""
  s = x_BxSx.shape[1]
  pad = -s % chunk
  if pad:
    widths = [(0, 0), (0, pad)] + [(0, 0)] * (x_BxSx.ndim - 2)
    x_BxSx = jnp.pad(x_BxSx, widths, constant_values=fill)
  blocks = x_BxSx.reshape(x_BxSx.shape[0], -1, chunk, *x_BxSx.shape[2:])
  return jnp.moveaxis(blocks, 1, 0)


def _key_blocks(k, v, positions_BxT, valid_BxT, chunk):
  s = k.shape[1]
  index_S = jnp.arange(s + (-s % chunk), dtype=jnp.int32)
  return (_split_keys(k, chunk, 0), _split_keys(v, chunk, 0), _split_keys(positions_BxT, chunk, 0),
          _split_keys(valid_BxT, chunk, False), index_S.reshape(-1, chunk))


def _forward(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, positions_BxT, valid_BxT, window, scale, softcap, chunk):
  b, t, n, h = q_BxTxNxH.shape
  kh = k_BxTxKxH.shape[2]
  q = q_BxTxNxH.reshape(b, t, kh, n // kh, h)

  def body(carry, block_inputs):
    m, l, acc = carry  # float32 [B, K, G, T], [B, K, G, T], [B, K, G, T, H]
    k_c, v_c, pos_c, valid_c, index_c = block_inputs
    scores, _ = _block_scores(q, k_c, scale, softcap)
    scores = _masked(scores, *_block_mask(t, positions_BxT, pos_c, valid_c, index_c, window))
    m_new = jnp.maximum(m, scores.max(-1))
    correction = jnp.exp(m - m_new)
    p = jnp.exp(scores - m_new[..., None])
    l = l * correction + p.sum(-1)
    acc = acc * correction[..., None] + jnp.einsum("bkgtc,bckh->bkgth", p.astype(v_c.dtype), v_c,
                                                   preferred_element_type=jnp.float32)
    return (m_new, l, acc), None

  init = (jnp.full((b, kh, n // kh, t), -jnp.inf, jnp.float32), jnp.zeros((b, kh, n // kh, t), jnp.float32),
          jnp.zeros((b, kh, n // kh, t, h), jnp.float32))
  (m, l, acc), _ = jax.lax.scan(body, init, _key_blocks(k_BxTxKxH, v_BxTxKxH, positions_BxT, valid_BxT, chunk))
  out_BxKxGxTxH = acc / l[..., None]
  out = jnp.moveaxis(out_BxKxGxTxH, 3, 1).reshape(b, t, n, h).astype(q_BxTxNxH.dtype)
  return out, (m, l)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8))
def chunked_self_attention(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, positions_BxT, valid_BxT, window,
                           scale: float, softcap: float, chunk: int):
  """Causal grouped-query self-attention, same result as `attention.attend` with the causal mask.

  Args:
    q_BxTxNxH, k_BxTxKxH, v_BxTxKxH: queries, keys, values (any float dtype; math in float32).
    positions_BxT: int32 RoPE positions, which sliding windows measure distance in.
    valid_BxT: bool, False for padding tokens, which no query attends to.
    window: int32 scalar, keys a query sees (itself included); <= 0 for no limit.
    scale, softcap: as in `attention.attend` (softcap 0 = off).
    chunk: keys per block; peak memory is about B * N * T * chunk float32s.
  Returns:
    [B, T, N, H] in the query dtype.
  """
  return _forward(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, positions_BxT, valid_BxT, window, scale, softcap, chunk)[0]


def _fwd(q, k, v, positions_BxT, valid_BxT, window, scale, softcap, chunk):
  out, (m, l) = _forward(q, k, v, positions_BxT, valid_BxT, window, scale, softcap, chunk)
  return out, (q, k, v, positions_BxT, valid_BxT, window, out, m, l)


def _bwd(scale, softcap, chunk, residuals, d_out_BxTxNxH):
  # The row max and sum kept apart, not as one log-sum-exp: a row that sees no key has max
  # MASKED = -1e30, and -1e30 + log(sum) rounds back to -1e30 in float32.
  q_BxTxNxH, k, v, positions_BxT, valid_BxT, window, out, m_BxKxGxT, l_BxKxGxT = residuals
  b, t, n, h = q_BxTxNxH.shape
  kh = k.shape[2]
  to_groups = lambda x: jnp.moveaxis(x.reshape(b, t, kh, n // kh, h), 1, 3).astype(jnp.float32)  # -> [B,K,G,T,H]
  q = q_BxTxNxH.reshape(b, t, kh, n // kh, h)
  d_out = to_groups(d_out_BxTxNxH)
  delta_BxKxGxT = jnp.sum(d_out * to_groups(out), -1)

  def body(dq, block_inputs):
    k_c, v_c, pos_c, valid_c, index_c = block_inputs
    scores, d_cap = _block_scores(q, k_c, scale, softcap)
    visible, real = _block_mask(t, positions_BxT, pos_c, valid_c, index_c, window)
    p = jnp.exp(_masked(scores, visible, real) - m_BxKxGxT[..., None]) / l_BxKxGxT[..., None]  # [B, K, G, T, C]
    dv_c = jnp.einsum("bkgtc,bkgth->bckh", p, d_out)
    dp = jnp.einsum("bkgth,bckh->bkgtc", d_out, v_c.astype(jnp.float32))
    ds = jnp.where(visible, p * (dp - delta_BxKxGxT[..., None]), 0.0)  # Masked scores were constants.
    if d_cap is not None:
      ds = ds * d_cap
    ds = ds * scale
    dq = dq + jnp.einsum("bkgtc,bckh->btkgh", ds, k_c.astype(jnp.float32))
    dk_c = jnp.einsum("bkgtc,btkgh->bckh", ds, q.astype(jnp.float32))
    return dq, (dk_c, dv_c)

  blocks = _key_blocks(k, v, positions_BxT, valid_BxT, chunk)
  dq, (dk_blocks, dv_blocks) = jax.lax.scan(body, jnp.zeros(q.shape, jnp.float32), blocks)
  join = lambda x: jnp.moveaxis(x, 0, 1).reshape(b, -1, kh, h)[:, :t]
  return (dq.reshape(b, t, n, h).astype(q_BxTxNxH.dtype), join(dk_blocks).astype(k.dtype),
          join(dv_blocks).astype(v.dtype), None, None, None)


chunked_self_attention.defvjp(_fwd, _bwd)
