"""The decode-time key/value cache: a pytree of fixed-shape buffers, one K and one V per layer.

All rows write at one shared slot index, so a decode step is a single
`dynamic_update_slice` per layer; rows that are padding (left-padded prompts,
finished samples) mark their slots invalid instead of moving the index. Beam
search reorders rows with `gather_rows`.

Each layer owns its buffers (a tuple over layers, not one stacked [L, ...] array)
and every leaf has the row axis first: a decode step reads and writes a layer's
keys where they lie. Slicing a layer out of a stacked array made XLA copy it on
every step (bench/results/sampler_NOTES.md). The [B, K, S, H] order puts the two
batch axes of the attention matmuls (rows, kv heads) in front, so the matmuls
read the buffer without a transpose.
"""
import flax
import jax
import jax.numpy as jnp

from ttc_jax.models.config import ModelConfig


@flax.struct.dataclass
class KVCache:
  k_BxKxSxH: tuple[jax.Array, ...]  # One buffer per layer: keys of every row, kv head and slot.
  v_BxKxSxH: tuple[jax.Array, ...]  # Values, same layout.
  valid_BxS: jax.Array  # bool: slot holds a real token that later tokens may attend to.
  # int32 RoPE position of the token in each slot: sliding windows count tokens, not
  # slots (search pads steps, so slot distance overstates token distance).
  positions_BxS: jax.Array
  index: jax.Array  # int32 scalar: next slot to write.

  @property
  def max_len(self) -> int:
    return self.valid_BxS.shape[1]

  @property
  def batch_size(self) -> int:
    return self.valid_BxS.shape[0]

  @property
  def num_layers(self) -> int:
    return len(self.k_BxKxSxH)


def init_cache(cfg: ModelConfig, batch_size: int, max_len: int) -> KVCache:
  """An empty cache for `batch_size` rows and `max_len` token slots."""
  shape = (batch_size, cfg.n_kv_heads, max_len, cfg.head_size)
  zeros = lambda: tuple(jnp.zeros(shape, cfg.compute_dtype) for _ in range(cfg.n_layers))
  return KVCache(
      k_BxKxSxH=zeros(),
      v_BxKxSxH=zeros(),
      valid_BxS=jnp.zeros((batch_size, max_len), bool),
      positions_BxS=jnp.zeros((batch_size, max_len), jnp.int32),
      index=jnp.zeros((), jnp.int32),
  )


def map_rows(fn, cache: KVCache) -> KVCache:
  """`fn` applied to every per-row buffer (each has the row axis first); the index is shared."""
  rows = (cache.k_BxKxSxH, cache.v_BxKxSxH, cache.valid_BxS, cache.positions_BxS)
  k, v, valid, positions = jax.tree_util.tree_map(fn, rows)
  return cache.replace(k_BxKxSxH=k, v_BxKxSxH=v, valid_BxS=valid, positions_BxS=positions)


def gather_rows(cache: KVCache, rows_B: jax.Array) -> KVCache:
  """Reorders (and duplicates) cache rows: row b of the result is row rows_B[b]."""
  return map_rows(lambda x: jnp.take(x, rows_B, axis=0), cache)


def repeat_rows(cache: KVCache, n: int) -> KVCache:
  """Each row repeated n times in place (row b -> rows b*n .. b*n+n-1): n samples share one prefill."""
  rows = jnp.repeat(jnp.arange(cache.batch_size), n)
  return gather_rows(cache, rows)


def write_layer(buf_BxKxSxH: jax.Array, new_BxTxKxH: jax.Array, index: jax.Array) -> jax.Array:
  """A layer's buffer with the T new tokens' keys (or values) written at slots [index, index + T)."""
  new_BxKxTxH = jnp.swapaxes(new_BxTxKxH, 1, 2).astype(buf_BxKxSxH.dtype)
  return jax.lax.dynamic_update_slice_in_dim(buf_BxKxSxH, new_BxKxTxH, index, axis=2)
