"""Attention over a KV cache (and a shared prompt prefix) that reads only the filled slots: a Pallas (Triton) kernel.

`model.decode_attention_impl` picks how a cached call (a decode step, a PRM's chunk, a
verifier block, a revision chain's suffix) reads the cache and a shared prefix:

  xla     `attention.attend_cached` / `prefix_attention.attend_cascade`: score every slot of
          the [B, K, S, H] buffer and mask the unfilled ones. XLA reads all S slots of every
          row, filled or not (bench/results/sampler_NOTES.md: at 1.2B / batch 256 that read
          is larger than the weights'), and writes a shared prefix's [rows, slots] scores in
          float32 before the softmax reads them back.
  pallas  this kernel: grid (key set, kv head, query block). A key set is a row's cache, read
          by that row's T x G queries, or a problem's shared prefix, read by its N rows' queries
          in blocks of BLOCK_M (so once per block, with no score matrix stored). Each program
          loops over key blocks up to the set's last visible slot, so slots past it are never
          loaded. Online softmax in float32 over bf16 (or float32) loads. A Triton kernel on
          GPUs; on CPU it runs in Pallas interpret mode (slow, for tests). A prefill into a
          fresh cache has no cache to read: it takes `model.attention_impl`.
  auto    pallas on GPUs, xla elsewhere (bench/results/decode_h200/pallas/: on the H200 the
          kernel took a layer's decode read from 0.136 ms to 0.086 ms and the sampler from
          29,968 to 33,328 tok/s at 1.2B / batch 64; bench/results/decode_h200/prefix_kernel/:
          a shared 1,024-token prefix at N = 256 from 0.203 to 0.123 ms a layer). With several
          devices and no mesh active (`parallel.activate`) auto stays on xla: the rows'
          sharding is unknown then.

Under an active mesh the kernel runs in `shard_map`: a pallas_call has no SPMD partitioning
rule, so without it XLA would gather the whole cache onto every device. Key sets split over
the mesh axes of the logical "batch" axis, kv heads over those of "kv_heads" (parallel/rules.py),
each only where it divides; a single problem's prefix splits its queries (its rows) instead.

The kernel returns each part of the softmax un-normalised -- output, running max and sum --
so callers merge the prefix's, the cache's and the new tokens' own parts by log-sum-exp,
which gives the softmax over all of them at once. Padding slots arrive in the per-slot
mask; a sliding window is applied in the kernel from the queries' and slots' positions, and
soft-capping too, so the kernel serves every model family.
"""
import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from ttc_jax.models.attention import MASKED, grouped_scores, merge_partials, partial_from_scores
from ttc_jax.models.config import DECODE_ATTENTION_IMPLS as IMPLS
from ttc_jax.models.kv_cache import past_last
from ttc_jax.parallel.rules import RULES

BLOCK_K = 64  # Cache slots per loop iteration (a multiple of 16: Triton's dot needs that).
BLOCK_M = 64  # Queries per program when a key set has more (a shared prefix's N x T x G rows).
NUM_WARPS = 4
# 3 stages: the best of the H200 sweep (0.0856 ms a layer at B=256, S=512 vs 0.0955 ms with 2;
# bench/results/decode_h200/pallas/).
NUM_STAGES = 3
# jax renamed TritonCompilerParams to CompilerParams (0.6); take whichever this jax has.
_COMPILER_PARAMS = getattr(plgpu, "CompilerParams", None) or getattr(plgpu, "TritonCompilerParams")
_dot = getattr(plgpu, "dot", None) or pl.dot  # Moved from pallas to pallas.triton (0.8); pl.dot is deprecated.


def choose_impl(requested: str) -> str:
  """The implementation decode steps run, decided at trace time: `requested` unless it is "auto".

  auto: the kernel on GPUs (faster, measured), unless several devices run without an active
  mesh -- then the operands' sharding is unknown here and XLA's own attention partitions safely.
  """
  if requested not in IMPLS:
    raise ValueError(f"model.decode_attention_impl={requested!r} must be one of {IMPLS}")
  if requested != "auto":
    return requested
  if jax.default_backend() != "gpu":
    return "xla"
  return "pallas" if jax.device_count() == 1 or _active_mesh() is not None else "xla"


def _active_mesh():
  """The mesh set by `parallel.activate` (jax.set_mesh) if it spans several devices, else None."""
  mesh = jax.sharding.get_abstract_mesh()
  return None if mesh.empty or mesh.size == 1 else mesh


def _mesh_axes(logical: str, mesh, size: int):
  """The mesh axes the logical axis maps to (active rules, else parallel.RULES), if they divide `size`."""
  axes = nn.logical_to_mesh_axes((logical,), nn.get_logical_axis_rules() or RULES)[0]
  axes = tuple(a for a in ((axes,) if isinstance(axes, str) else axes or ()) if a in mesh.shape)
  if not axes or size % math.prod(mesh.shape[a] for a in axes):
    return None
  return axes


def _sharded_partial(q_XxKxMxH, keys_XxKxSxH, values_XxKxSxH, visible_XxS, lengths_X, *, window=None,
                     q_pos_XxM=None, slot_pos_XxS=None, **kwargs):
  """`cache_partial`, run per shard under an active mesh (no collectives).

  Key sets split over the mesh axes of the logical "batch" axis and kv heads over those of
  "kv_heads", each where it divides. A shared prefix of one problem (X = 1) splits its
  queries instead: they are the problem's rows, which the batch axes split.
  """
  mesh = _active_mesh()
  windowed = {} if window is None else dict(window=window, q_pos_XxM=q_pos_XxM, slot_pos_XxS=slot_pos_XxS)
  if mesh is None:
    return cache_partial(q_XxKxMxH, keys_XxKxSxH, values_XxKxSxH, visible_XxS, lengths_X, **windowed, **kwargs)
  x, k_heads, m_queries = q_XxKxMxH.shape[:3]
  sets, heads = _mesh_axes("batch", mesh, x), _mesh_axes("kv_heads", mesh, k_heads)
  queries = None if sets else _mesh_axes("batch", mesh, m_queries)
  P = jax.sharding.PartitionSpec
  per_query, per_set = P(sets, heads, queries), P(sets)
  extra_specs = (P(), P(sets, queries), per_set) if windowed else ()
  run = lambda q, k, v, vis, lengths, *w: cache_partial(q, k, v, vis, lengths, **dict(zip(windowed, w)), **kwargs)
  fn = jax.shard_map(run, mesh=mesh, in_specs=(per_query, P(sets, heads), P(sets, heads), per_set, per_set,
                                               *extra_specs),
                     out_specs=(per_query, per_query, per_query), check_vma=False)
  return fn(q_XxKxMxH, keys_XxKxSxH, values_XxKxSxH, visible_XxS, lengths_X, *windowed.values())


def _interpret() -> bool:
  """Compiled Triton on GPUs, Pallas interpret mode on CPU (tests); no Mosaic TPU kernel here."""
  backend = jax.default_backend()
  if backend == "gpu":
    return False
  if backend == "cpu":
    return True
  raise ValueError(f"model.decode_attention_impl='pallas' is a Triton GPU kernel; on {backend} use 'xla' or 'auto'")


def _pow2_at_least_16(n: int) -> int:
  # Triton loads whole power-of-two tiles, and its dot wants every dimension >= 16.
  return max(16, 1 << math.ceil(math.log2(n)))


def _kernel(*refs, scale: float, softcap: float, block_k: int, rows: int, rows_pad: int, head_size: int,
            head_pad: int, windowed: bool):
  """One (key set, kv head, query block): `rows` queries against slots [0, length) of its [S, H] keys and values.

  A key set is one row's cache (the queries: its G heads times its T new tokens) or one
  problem's shared prefix (the queries: every row of the problem, N * T * G). The queries
  are padded to `rows_pad` >= 16 (zeros, by masked loads) so both products are tensor-core
  dots: with G = 4 an elementwise multiply-and-reduce would build [G, block_k, H] tiles in
  registers, and the padding costs nothing here -- a decode step is bound by the cache
  read, not by the matmul units. The head size is padded the same way where it is not a
  power of two. `windowed`: a sliding window from the queries' and slots' positions.
  """
  if windowed:
    lengths_ref, window_ref, q_ref, q_pos_ref, k_ref, v_ref, visible_ref, slot_pos_ref, o_ref, m_ref, l_ref = refs
  else:
    lengths_ref, q_ref, k_ref, v_ref, visible_ref, o_ref, m_ref, l_ref = refs
  length = lengths_ref[0]
  row_ids, cols = jnp.arange(rows_pad), jnp.arange(head_pad)
  col_ok = None if head_pad == head_size else (cols < head_size)[None, :]
  q_ok = (row_ids < rows)[:, None]
  q = plgpu.load(q_ref.at[pl.ds(0, rows_pad), pl.ds(0, head_pad)],
                 mask=q_ok if col_ok is None else q_ok & col_ok, other=0.0)
  exact = dict(precision=jax.lax.Precision.HIGHEST) if q.dtype == jnp.float32 else {}  # No tf32 for float32.
  if windowed:
    window = window_ref[0]
    q_pos = plgpu.load(q_pos_ref.at[pl.ds(0, rows_pad)], mask=row_ids < rows, other=0)

  def body(i, carry):
    o_prev, m_prev, l_prev = carry
    start = i * block_k
    slots = start + jnp.arange(block_k)
    filled = slots < length  # Masked loads: slots at or past the length are not fetched.
    kv_ok = filled[:, None] if col_ok is None else filled[:, None] & col_ok
    k = plgpu.load(k_ref.at[pl.ds(start, block_k), pl.ds(0, head_pad)], mask=kv_ok, other=0.0)
    v = plgpu.load(v_ref.at[pl.ds(start, block_k), pl.ds(0, head_pad)], mask=kv_ok, other=0.0)
    visible = (filled & (plgpu.load(visible_ref.at[pl.ds(start, block_k)], mask=filled, other=0) != 0))[None, :]
    if windowed:
      slot_pos = plgpu.load(slot_pos_ref.at[pl.ds(start, block_k)], mask=filled, other=0)
      visible = visible & (((q_pos[:, None] - slot_pos[None, :]) < window) | (window <= 0))
    s = _dot(q, k, trans_b=True, **exact) * scale  # float32 [rows_pad, block_k]
    if softcap:
      s = jnp.tanh(s / softcap) * softcap
    s = jnp.where(visible, s, MASKED)
    m_next = jnp.maximum(m_prev, s.max(axis=1))
    correction = jnp.exp(m_prev - m_next)
    p = jnp.exp(s - m_next[:, None])
    l_next = correction * l_prev + p.sum(axis=1)
    o_next = correction[:, None] * o_prev + _dot(p.astype(v.dtype), v, **exact)
    return o_next, m_next, l_next

  # MASKED (finite) as the starting max: a query with no slots keeps sum 0 and output 0, and its
  # weight in the callers' merge is exp(MASKED - max) = 0, never NaN.
  init = (jnp.zeros((rows_pad, head_pad), jnp.float32), jnp.full((rows_pad,), MASKED, jnp.float32),
          jnp.zeros((rows_pad,), jnp.float32))
  o, m, l = jax.lax.fori_loop(0, pl.cdiv(length, block_k), body, init)
  r_ok = row_ids < rows
  plgpu.store(o_ref.at[pl.ds(0, rows_pad), pl.ds(0, head_pad)], o,
              mask=r_ok[:, None] if col_ok is None else r_ok[:, None] & col_ok)
  plgpu.store(m_ref.at[pl.ds(0, rows_pad)], m, mask=r_ok)
  plgpu.store(l_ref.at[pl.ds(0, rows_pad)], l, mask=r_ok)


@functools.partial(jax.jit, static_argnames=("scale", "softcap", "block_k", "block_m", "num_warps", "num_stages",
                                             "interpret"))
def cache_partial(q_XxKxMxH, keys_XxKxSxH, values_XxKxSxH, visible_XxS, lengths_X, *, scale: float,
                  softcap: float = 0.0, window=None, q_pos_XxM=None, slot_pos_XxS=None, block_k: int = BLOCK_K,
                  block_m: int = BLOCK_M, num_warps: int = NUM_WARPS, num_stages: int = NUM_STAGES,
                  interpret: bool | None = None):
  """The un-normalised attention of M queries per key set over its keys and values, read in place.

  Args:
    q_XxKxMxH: queries grouped by key set X and kv head K. A decode step: X = rows, M = the
      G query heads of the kv head. A shared prefix: X = problems, M = N rows x T x G.
    keys_XxKxSxH, values_XxKxSxH: one layer's buffers (a cache or a prefix), in their own layout.
    visible_XxS: bool, the slots every query of the set may attend to (filled, not padding).
    lengths_X: int32, per set: slots >= length are never read (every visible slot lies below it).
    window: None, or the layer's sliding window (int32 scalar, 0 = no limit) applied per
      query from q_pos_XxM and slot_pos_XxS (int32 RoPE positions).
    block_k: slots per loop iteration (a multiple of 16; need not divide S).
    block_m: queries per program when M is larger (a power of two >= 16); M <= block_m is one block.
    num_warps, num_stages: Triton's launch and software-pipelining settings (GPU only).
    interpret: Pallas interpret mode; None: on CPU only.
  Returns:
    (out_XxKxMxH, max_XxKxM, sum_XxKxM), float32: with p = exp(score - max) over the visible
    slots, out = sum p * v and sum = sum p. A query with no visible slot has max MASKED, so its
    weight in a merge with any visible part is 0; with length 0 its sum and output are 0 too.
  """
  x, k_heads, m_queries, h = q_XxKxMxH.shape
  s = keys_XxKxSxH.shape[2]
  if block_k % 16 or block_m < 16 or block_m & (block_m - 1):
    raise ValueError(f"block_k={block_k} must be a multiple of 16 and block_m={block_m} a power of two >= 16")
  interpret = _interpret() if interpret is None else interpret
  windowed = window is not None
  if windowed and (q_pos_XxM is None or slot_pos_XxS is None):
    raise ValueError("a sliding window needs the queries' and the slots' positions")
  # A power of two up to block_m queries forms one block of its own size (a decode step's G
  # heads: no copy). Other counts are padded to a power of two, more to whole blocks of block_m
  # (a prefix's N * T * G), so every block Triton sees is a power of two; the copy is of the
  # queries only, small next to the keys and values read.
  if m_queries <= block_m:
    rows = m_queries if m_queries & (m_queries - 1) == 0 else _pow2_at_least_16(m_queries)
  else:
    rows = block_m
  padded = pl.cdiv(m_queries, rows) * rows
  if padded != m_queries:
    q_XxKxMxH = jnp.pad(q_XxKxMxH, ((0, 0), (0, 0), (0, padded - m_queries), (0, 0)))
    q_pos_XxM = None if q_pos_XxM is None else jnp.pad(q_pos_XxM, ((0, 0), (0, padded - m_queries)))
  lengths_X = jnp.minimum(lengths_X.astype(jnp.int32), s)
  kernel = functools.partial(_kernel, scale=scale, softcap=softcap, block_k=block_k, rows=rows,
                             rows_pad=_pow2_at_least_16(rows), head_size=h, head_pad=_pow2_at_least_16(h),
                             windowed=windowed)
  per_set = lambda *tail: pl.BlockSpec((None, *tail), lambda i, j, c: (i,) + (0,) * len(tail))
  per_head = lambda *tail: pl.BlockSpec((None, None, *tail), lambda i, j, c: (i, j) + (0,) * len(tail))
  per_block = lambda *tail: pl.BlockSpec((None, None, rows, *tail), lambda i, j, c: (i, j, c) + (0,) * len(tail))
  in_specs = [pl.BlockSpec((1,), lambda i, j, c: (i,)), per_block(h), per_head(s, h), per_head(s, h), per_set(s)]
  operands = [lengths_X, q_XxKxMxH, keys_XxKxSxH, values_XxKxSxH, visible_XxS.astype(jnp.int32)]
  if windowed:
    in_specs[1:1] = [pl.BlockSpec((1,), lambda i, j, c: (0,))]
    in_specs[3:3] = [pl.BlockSpec((None, rows), lambda i, j, c: (i, c))]
    in_specs.append(per_set(s))
    operands[1:1] = [jnp.reshape(window, (1,)).astype(jnp.int32)]
    operands[3:3] = [q_pos_XxM.astype(jnp.int32)]
    operands.append(slot_pos_XxS.astype(jnp.int32))
  out_f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  out, m, l = pl.pallas_call(
      kernel,
      grid=(x, k_heads, padded // rows),
      in_specs=in_specs,
      out_specs=[per_block(h), per_block(), per_block()],
      out_shape=[out_f32(x, k_heads, padded, h), out_f32(x, k_heads, padded), out_f32(x, k_heads, padded)],
      compiler_params=_COMPILER_PARAMS(num_warps=num_warps, num_stages=num_stages),
      interpret=interpret,
      name="decode_attention",
  )(*operands)
  return out[:, :, :m_queries], m[:, :, :m_queries], l[:, :, :m_queries]


def visible_lengths(visible_BxS: jax.Array) -> jax.Array:
  """int32[B]: one past each row's last visible slot (0 for none), the kernel's read bound.

  Derived from the mask rather than the cache index, so it is per row whatever the index
  is, covers a shared prefix's suffix buffer alike, and ends before trailing padding.
  """
  return past_last(visible_BxS)


@dataclasses.dataclass(frozen=True)
class Window:
  """A layer's sliding window for the kernel: applied per query from positions (window 0 = no limit)."""
  window: jax.Array  # int32 scalar
  positions_BxT: jax.Array  # The new tokens' RoPE positions.


def _window_args(window: Window | None, groups: int, sets: int, slot_pos_XxS) -> dict:
  """`cache_partial`'s window arguments for queries in [sets, (rows, T, G)] order ({} without a window):
  each query at its token's position, every slot at its own."""
  if window is None:
    return {}
  q_pos_XxM = jnp.repeat(window.positions_BxT, groups, 1).reshape(sets, -1)
  return dict(window=window.window, q_pos_XxM=q_pos_XxM, slot_pos_XxS=slot_pos_XxS)


def _slot_mask(mask_BxTxS, name: str) -> jax.Array:
  """The [B, S] mask the kernel takes: one per key set, the same for every new token (windows come apart)."""
  if mask_BxTxS.shape[1] != 1:
    raise ValueError(f"{name} must be [B, 1, S] (the same slots for every new token; a sliding window goes in "
                     f"`window`), got {mask_BxTxS.shape}")
  return mask_BxTxS[:, 0]


def _cache_part(q_BxTxKxGxH, cache_k, cache_v, visible_BxS, cache_pos_BxS, window: Window | None, scale, softcap,
                settings):
  """Each row's cache part in the callers' [B, K, G, T, ...] order: key set = row, queries = its T x G."""
  b, t, k_heads, g, h = q_BxTxKxGxH.shape
  q_BxKxMxH = q_BxTxKxGxH.transpose(0, 2, 1, 3, 4).reshape(b, k_heads, t * g, h)
  windowed = _window_args(window, g, b, cache_pos_BxS)
  parts = _sharded_partial(q_BxKxMxH, cache_k, cache_v, visible_BxS, visible_lengths(visible_BxS), scale=scale,
                           softcap=softcap, **windowed, **settings)
  return tuple(x.reshape(b, k_heads, t, g, *x.shape[3:]).swapaxes(2, 3) for x in parts)


def _prefix_part(q_BxTxKxGxH, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_valid_PxS, prefix_pos_PxS,
                 window: Window | None, scale, softcap, settings):
  """The shared prefix's part in the rows' [B, K, G, T, ...] order: key set = problem, queries = N x T x G.

  One program block reads a problem's prefix for 64 of its rows' queries at once, so the
  prefix is read once per block of rows and no [rows, slots] score matrix is ever stored
  (the XLA cascade writes and re-reads those scores, which at N = 256 and a 1,024-token
  prompt cost more than the rest of the step).
  """
  b, t, k_heads, g, h = q_BxTxKxGxH.shape
  p = prefix_k_PxKxSxH.shape[0]
  n = b // p
  q_PxKxMxH = q_BxTxKxGxH.reshape(p, n, t, k_heads, g, h).transpose(0, 3, 1, 2, 4, 5).reshape(p, k_heads, -1, h)
  windowed = _window_args(window, g, p, prefix_pos_PxS)
  parts = _sharded_partial(q_PxKxMxH, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_valid_PxS,
                           visible_lengths(prefix_valid_PxS), scale=scale, softcap=softcap, **windowed, **settings)
  # [P, K, (N, T, G), ...] -> [(P, N), K, G, T, ...]
  return tuple(x.reshape(p, k_heads, n, t, g, *x.shape[3:]).transpose(0, 2, 1, 4, 3, *range(5, x.ndim + 2))
               .reshape(b, k_heads, g, t, *x.shape[3:]) for x in parts)


def _self_part(q_BxTxKxGxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, scale, softcap):
  s_self = grouped_scores(q_BxTxKxGxH, k_BxTxKxH, scale, softcap)
  s_self = jnp.where(self_mask_BxTxT[:, None, None], s_self, MASKED)
  return partial_from_scores(s_self, v_BxTxKxH, "bkgtu,bukh->bkgth")


def _to_heads(out_BxKxGxTxH):
  b, k_heads, g, t, h = out_BxKxGxTxH.shape
  return out_BxKxGxTxH.transpose(0, 3, 1, 2, 4).reshape(b, t, k_heads * g, h)


def attend_cached_pallas(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxKxSxH, cache_v_BxKxSxH,
                         cache_mask_Bx1xS, *, scale: float, softcap: float = 0.0, window: Window | None = None,
                         cache_pos_BxS=None, **settings) -> jax.Array:
  """`attention.attend_cached` with the cache read by the kernel, for any number T of new tokens.

  `cache_mask_Bx1xS`: the cache slots every new token may see; a sliding window comes as
  `window` with the cache's positions instead of folded into the mask (it differs per token).
  `settings`: the kernel's block_k / block_m / num_warps / num_stages (bench/decode_attention.py sweeps them).
  """
  b, t, n, h = q_BxTxNxH.shape
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_BxTxKxH.shape[2], -1, h)
  visible_BxS = _slot_mask(cache_mask_Bx1xS, "cache_mask")
  parts = [_cache_part(q_BxTxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS, cache_pos_BxS, window, scale,
                       softcap, settings),
           _self_part(q_BxTxKxGxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, scale, softcap)]
  return _to_heads(merge_partials(parts, v_BxTxKxH.dtype))


def attend_cascade_pallas(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxKxSxH, cache_v_BxKxSxH,
                          cache_mask_Bx1xS, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_valid_PxS, *, scale: float,
                          softcap: float = 0.0, window: Window | None = None, cache_pos_BxS=None,
                          prefix_pos_PxS=None, **settings) -> jax.Array:
  """`prefix_attention.attend_cascade` with the shared prefix and each row's suffix read by the kernel.

  `prefix_valid_PxS`: the prefix slots holding a prompt token; a sliding window comes as `window`
  with both buffers' positions. Rows b = p * N + n (problem-major) read prefix p.
  """
  b, t, n, h = q_BxTxNxH.shape
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_BxTxKxH.shape[2], -1, h)
  visible_BxS = _slot_mask(cache_mask_Bx1xS, "cache_mask")
  parts = [_prefix_part(q_BxTxKxGxH, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_valid_PxS, prefix_pos_PxS, window,
                        scale, softcap, settings),
           _cache_part(q_BxTxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS, cache_pos_BxS, window, scale,
                       softcap, settings),
           _self_part(q_BxTxKxGxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, scale, softcap)]
  return _to_heads(merge_partials(parts, v_BxTxKxH.dtype))
