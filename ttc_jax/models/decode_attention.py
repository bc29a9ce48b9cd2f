"""Decode-step attention that reads only each row's filled cache slots: a Pallas (Triton) kernel.

`model.decode_attention_impl` picks how a cached call of one new token per row (a decode
step) reads the cache:

  xla     `attention.attend_cached` / `prefix_attention.attend_cascade`: score every slot of
          the [B, K, S, H] buffer and mask the unfilled ones. XLA reads all S slots of every
          row, filled or not (bench/results/sampler_NOTES.md: at 1.2B / batch 256 that read
          is larger than the weights').
  pallas  this kernel: grid (row, kv head); each program loops over key blocks up to the
          row's last visible slot, so slots past it are never loaded. Online softmax in
          float32 over bf16 (or float32) loads. A Triton kernel on GPUs; on CPU it runs in
          Pallas interpret mode (slow, for tests). Prefill and other T > 1 calls stay on XLA.
  auto    pallas on GPUs, xla elsewhere (bench/results/decode_h200/pallas/: on the H200 the
          kernel took a layer's decode read from 0.136 ms to 0.086 ms and the sampler from
          29,968 to 33,328 tok/s at 1.2B / batch 64). With several devices and no mesh
          active (`parallel.activate`) auto stays on xla: the rows' sharding is unknown then.

Under an active mesh the kernel runs in `shard_map`: a pallas_call has no SPMD partitioning
rule, so without it XLA would gather the whole cache onto every device. Rows split over the
mesh axes of the logical "batch" axis, kv heads over those of "kv_heads" (parallel/rules.py),
each only where it divides; the rest is replicated.

The kernel returns the cache's part of the softmax un-normalised -- output, running max
and sum -- so callers merge it with the new tokens' own scores (and a shared prompt's,
`prefix_attention`) by log-sum-exp, which gives the softmax over all parts at once.
Every masking rule (padding slots, sliding windows) arrives folded into the per-slot
mask, so the kernel serves every model family; soft-capping is applied in the kernel.
"""
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
from ttc_jax.models.prefix_attention import prefix_partial
from ttc_jax.parallel.rules import RULES

BLOCK_K = 64  # Cache slots per loop iteration (a multiple of 16: Triton's dot needs that).
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


def _sharded_partial(q_BxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS, lengths_B, **kwargs):
  """`cache_partial`, run per shard under an active mesh (rows and kv heads split, no collectives)."""
  mesh = _active_mesh()
  if mesh is None:
    return cache_partial(q_BxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS, lengths_B, **kwargs)
  b, k_heads = q_BxKxGxH.shape[:2]
  rows, heads = _mesh_axes("batch", mesh, b), _mesh_axes("kv_heads", mesh, k_heads)
  P = jax.sharding.PartitionSpec
  row_head = P(rows, heads)
  fn = jax.shard_map(functools.partial(cache_partial, **kwargs), mesh=mesh,
                     in_specs=(row_head, row_head, row_head, P(rows), P(rows)),
                     out_specs=(row_head, row_head, row_head), check_vma=False)
  return fn(q_BxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS, lengths_B)


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


def _kernel(lengths_ref, q_ref, k_ref, v_ref, visible_ref, o_ref, m_ref, l_ref, *, scale: float, softcap: float,
            block_k: int, groups: int, head_size: int, groups_pad: int, head_pad: int):
  """One (row, kv head): the G query heads against slots [0, length) of its [S, H] keys and values.

  The G query heads are padded to `groups_pad` >= 16 rows (zeros, by masked loads) so both
  products are tensor-core dots: with G = 4 an elementwise multiply-and-reduce would build
  [G, block_k, H] tiles in registers, and the padding costs nothing here -- the kernel is
  bound by the cache read, not by the matmul units. The head size is padded the same way
  where it is not a power of two.
  """
  length = lengths_ref[0]
  rows, cols = jnp.arange(groups_pad), jnp.arange(head_pad)
  col_ok = None if head_pad == head_size else (cols < head_size)[None, :]
  q_ok = (rows < groups)[:, None]
  q = plgpu.load(q_ref.at[pl.ds(0, groups_pad), pl.ds(0, head_pad)],
                 mask=q_ok if col_ok is None else q_ok & col_ok, other=0.0)
  exact = dict(precision=jax.lax.Precision.HIGHEST) if q.dtype == jnp.float32 else {}  # No tf32 for float32.

  def body(i, carry):
    o_prev, m_prev, l_prev = carry
    start = i * block_k
    slots = start + jnp.arange(block_k)
    filled = slots < length  # Masked loads: slots at or past the length are not fetched.
    kv_ok = filled[:, None] if col_ok is None else filled[:, None] & col_ok
    k = plgpu.load(k_ref.at[pl.ds(start, block_k), pl.ds(0, head_pad)], mask=kv_ok, other=0.0)
    v = plgpu.load(v_ref.at[pl.ds(start, block_k), pl.ds(0, head_pad)], mask=kv_ok, other=0.0)
    visible = filled & (plgpu.load(visible_ref.at[pl.ds(start, block_k)], mask=filled, other=0) != 0)
    s = _dot(q, k, trans_b=True, **exact) * scale  # float32 [groups_pad, block_k]
    if softcap:
      s = jnp.tanh(s / softcap) * softcap
    s = jnp.where(visible[None, :], s, MASKED)
    m_next = jnp.maximum(m_prev, s.max(axis=1))
    correction = jnp.exp(m_prev - m_next)
    p = jnp.exp(s - m_next[:, None])
    l_next = correction * l_prev + p.sum(axis=1)
    o_next = correction[:, None] * o_prev + _dot(p.astype(v.dtype), v, **exact)
    return o_next, m_next, l_next

  # MASKED (finite) as the starting max: a row with no slots keeps sum 0 and output 0, and its
  # weight in the callers' merge is exp(MASKED - max) = 0, never NaN.
  init = (jnp.zeros((groups_pad, head_pad), jnp.float32), jnp.full((groups_pad,), MASKED, jnp.float32),
          jnp.zeros((groups_pad,), jnp.float32))
  o, m, l = jax.lax.fori_loop(0, pl.cdiv(length, block_k), body, init)
  g_ok = rows < groups
  plgpu.store(o_ref.at[pl.ds(0, groups_pad), pl.ds(0, head_pad)], o,
              mask=g_ok[:, None] if col_ok is None else g_ok[:, None] & col_ok)
  plgpu.store(m_ref.at[pl.ds(0, groups_pad)], m, mask=g_ok)
  plgpu.store(l_ref.at[pl.ds(0, groups_pad)], l, mask=g_ok)


@functools.partial(jax.jit, static_argnames=("scale", "softcap", "block_k", "num_warps", "num_stages", "interpret"))
def cache_partial(q_BxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS, lengths_B, *, scale: float,
                  softcap: float = 0.0, block_k: int = BLOCK_K, num_warps: int = NUM_WARPS,
                  num_stages: int = NUM_STAGES, interpret: bool | None = None):
  """The cache's un-normalised part of one decode step's attention, read in place.

  Args:
    q_BxKxGxH: the new token's queries, grouped by kv head (N = K * G query heads).
    cache_k_BxKxSxH, cache_v_BxKxSxH: one layer's cache buffers, in their own layout.
    visible_BxS: bool, the slots this token may attend to (filled, not padding, in its window).
    lengths_B: int32, per row: slots >= length are never read (every visible slot lies below it).
    block_k: slots per loop iteration (a multiple of 16; need not divide S).
    num_warps, num_stages: Triton's launch and software-pipelining settings (GPU only).
    interpret: Pallas interpret mode; None: on CPU only.
  Returns:
    (out_BxKxGxH, max_BxKxG, sum_BxKxG), float32: with p = exp(score - max) over the visible
    slots, out = sum p * v and sum = sum p. A row with no visible slot has max MASKED, so its
    weight in a merge with any visible part is 0; with length 0 its sum and output are 0 too.
  """
  b, k_heads, groups, h = q_BxKxGxH.shape
  s = cache_k_BxKxSxH.shape[2]
  if block_k % 16:
    raise ValueError(f"block_k={block_k} must be a multiple of 16")
  interpret = _interpret() if interpret is None else interpret
  lengths_B = jnp.minimum(lengths_B.astype(jnp.int32), s)
  kernel = functools.partial(_kernel, scale=scale, softcap=softcap, block_k=block_k, groups=groups, head_size=h,
                             groups_pad=_pow2_at_least_16(groups), head_pad=_pow2_at_least_16(h))
  per_head = lambda *tail: pl.BlockSpec((None, None, *tail), lambda i, j: (i, j) + (0,) * len(tail))
  out_f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  return pl.pallas_call(
      kernel,
      grid=(b, k_heads),
      in_specs=[pl.BlockSpec((1,), lambda i, j: (i,)), per_head(groups, h), per_head(s, h), per_head(s, h),
                pl.BlockSpec((None, s), lambda i, j: (i, 0))],
      out_specs=[per_head(groups, h), per_head(groups), per_head(groups)],
      out_shape=[out_f32(b, k_heads, groups, h), out_f32(b, k_heads, groups), out_f32(b, k_heads, groups)],
      compiler_params=_COMPILER_PARAMS(num_warps=num_warps, num_stages=num_stages),
      interpret=interpret,
      name="decode_attention",
  )(lengths_B, q_BxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, visible_BxS.astype(jnp.int32))


def visible_lengths(visible_BxS: jax.Array) -> jax.Array:
  """int32[B]: one past each row's last visible slot (0 for none), the kernel's read bound.

  Derived from the mask rather than the cache index, so it is per row whatever the index
  is, covers a shared prefix's suffix buffer alike, and ends before trailing padding.
  """
  return past_last(visible_BxS)


def _kernel_part(q_BxTxKxGxH, cache_k, cache_v, cache_mask_BxTxS, scale, softcap, settings):
  """The kernel's partial in the callers' [B, K, G, T=1, ...] order; `settings`: cache_partial's launch settings."""
  if q_BxTxKxGxH.shape[1] != 1:
    raise ValueError(f"the Pallas decode kernel takes one new token per row, got T={q_BxTxKxGxH.shape[1]}")
  visible_BxS = cache_mask_BxTxS[:, 0]
  out, m, l = _sharded_partial(q_BxTxKxGxH[:, 0], cache_k, cache_v, visible_BxS, visible_lengths(visible_BxS),
                               scale=scale, softcap=softcap, **settings)
  return out[:, :, :, None], m[..., None], l[..., None]


def _self_part(q_BxTxKxGxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, scale, softcap):
  s_self = grouped_scores(q_BxTxKxGxH, k_BxTxKxH, scale, softcap)
  s_self = jnp.where(self_mask_BxTxT[:, None, None], s_self, MASKED)
  return partial_from_scores(s_self, v_BxTxKxH, "bkgtu,bukh->bkgth")


def _to_heads(out_BxKxGxTxH):
  b, k_heads, g, t, h = out_BxKxGxTxH.shape
  return out_BxKxGxTxH.transpose(0, 3, 1, 2, 4).reshape(b, t, k_heads * g, h)


def attend_cached_pallas(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxKxSxH, cache_v_BxKxSxH,
                         cache_mask_BxTxS, *, scale: float, softcap: float = 0.0, **settings) -> jax.Array:
  """`attention.attend_cached` for T = 1, with the cache read by the kernel (same arguments, same result).

  `settings`: the kernel's block_k / num_warps / num_stages (bench/decode_attention.py sweeps them).
  """
  b, t, n, h = q_BxTxNxH.shape
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_BxTxKxH.shape[2], -1, h)
  parts = [_kernel_part(q_BxTxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, cache_mask_BxTxS, scale, softcap, settings),
           _self_part(q_BxTxKxGxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, scale, softcap)]
  return _to_heads(merge_partials(parts, v_BxTxKxH.dtype))


def attend_cascade_pallas(q_BxTxNxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, cache_k_BxKxSxH, cache_v_BxKxSxH,
                          cache_mask_BxTxS, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_mask_PxNxTxS, *, scale: float,
                          softcap: float = 0.0, **settings) -> jax.Array:
  """`prefix_attention.attend_cascade` for T = 1 with each row's suffix read by the kernel.

  The shared prefix keeps the cascade's grouped matmul (it is read once per problem already).
  """
  b, t, n, h = q_BxTxNxH.shape
  q_BxTxKxGxH = q_BxTxNxH.reshape(b, t, k_BxTxKxH.shape[2], -1, h)
  parts = [prefix_partial(q_BxTxKxGxH, prefix_k_PxKxSxH, prefix_v_PxKxSxH, prefix_mask_PxNxTxS, scale, softcap),
           _kernel_part(q_BxTxKxGxH, cache_k_BxKxSxH, cache_v_BxKxSxH, cache_mask_BxTxS, scale, softcap, settings),
           _self_part(q_BxTxKxGxH, k_BxTxKxH, v_BxTxKxH, self_mask_BxTxT, scale, softcap)]
  return _to_heads(merge_partials(parts, v_BxTxKxH.dtype))
