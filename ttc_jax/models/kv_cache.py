"""The decode-time key/value cache: a pytree of fixed-shape buffers.

All rows write at one shared slot index, so a decode step is a single
`dynamic_update_slice`; rows that are padding (left-padded prompts, finished
samples) mark their slots invalid instead of moving the index. Beam search
reorders rows with `gather_rows`.
"""
import flax
import jax
import jax.numpy as jnp

from ttc_jax.models.config import ModelConfig


@flax.struct.dataclass
class KVCache:
  k_LxBxSxKxH: jax.Array  # Keys for every layer, slot and kv head.
  v_LxBxSxKxH: jax.Array  # Values, same layout.
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


def init_cache(cfg: ModelConfig, batch_size: int, max_len: int) -> KVCache:
  """An empty cache for `batch_size` rows and `max_len` token slots."""
  shape = (cfg.n_layers, batch_size, max_len, cfg.n_kv_heads, cfg.head_size)
  return KVCache(
      k_LxBxSxKxH=jnp.zeros(shape, cfg.compute_dtype),
      v_LxBxSxKxH=jnp.zeros(shape, cfg.compute_dtype),
      valid_BxS=jnp.zeros((batch_size, max_len), bool),
      positions_BxS=jnp.zeros((batch_size, max_len), jnp.int32),
      index=jnp.zeros((), jnp.int32),
  )


def gather_rows(cache: KVCache, rows_B: jax.Array) -> KVCache:
  """Reorders (and duplicates) cache rows: row b of the result is row rows_B[b]."""
  return cache.replace(
      k_LxBxSxKxH=jnp.take(cache.k_LxBxSxKxH, rows_B, axis=1),
      v_LxBxSxKxH=jnp.take(cache.v_LxBxSxKxH, rows_B, axis=1),
      valid_BxS=jnp.take(cache.valid_BxS, rows_B, axis=0),
      positions_BxS=jnp.take(cache.positions_BxS, rows_B, axis=0),
  )


def repeat_rows(cache: KVCache, n: int) -> KVCache:
  """Each row repeated n times in place (row b -> rows b*n .. b*n+n-1): n samples share one prefill."""
  rows = jnp.repeat(jnp.arange(cache.batch_size), n)
  return gather_rows(cache, rows)
