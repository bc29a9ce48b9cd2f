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

A cache may carry a `SharedPrefix`: the prompt's keys and values stored once per
problem ([P, K, Sp, H] per layer) and read by all N = B / P of its rows (row b
belongs to problem b // N). The cache's own slots then hold only each row's
suffix (the tokens after the prompt), and its index counts suffix slots. Row
gathers (`gather_rows`, beam selection) touch the suffix only: a row never moves
to another problem. `models.prefix_attention` says how attention reads both.
"""
import flax
import jax
import jax.numpy as jnp

from ttc_jax.models.config import ModelConfig


@flax.struct.dataclass
class SharedPrefix:
  """A prompt's keys and values, one copy per problem, read by every row of that problem."""
  k_PxKxSxH: tuple[jax.Array, ...]  # One buffer per layer.
  v_PxKxSxH: tuple[jax.Array, ...]
  valid_PxS: jax.Array  # bool: slot holds a real prompt token (False for left padding).
  positions_PxS: jax.Array  # int32 RoPE position of each slot's token.

  @property
  def num_problems(self) -> int:
    return self.valid_PxS.shape[0]


@flax.struct.dataclass
class KVCache:
  k_BxKxSxH: tuple[jax.Array, ...]  # One buffer per layer: keys of every row, kv head and slot.
  v_BxKxSxH: tuple[jax.Array, ...]  # Values, same layout.
  valid_BxS: jax.Array  # bool: slot holds a real token that later tokens may attend to.
  # int32 RoPE position of the token in each slot: sliding windows count tokens, not
  # slots (search pads steps, so slot distance overstates token distance).
  positions_BxS: jax.Array
  index: jax.Array  # int32 scalar: next slot to write.
  prefix: SharedPrefix | None = None  # The shared prompt, or None: every row holds its own prompt.

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


def share_prefix(prompt_cache: KVCache, rows_per_prompt: int, suffix_len: int) -> KVCache:
  """An empty cache of P * rows_per_prompt rows and `suffix_len` slots that reads `prompt_cache` as its prefix.

  `prompt_cache` is a prefilled cache of P rows whose slots all lie before its index
  (a prefill sized to the prompt); it becomes the `SharedPrefix`, stored once.
  """
  p, k_heads, _, h = prompt_cache.k_BxKxSxH[0].shape
  b = p * rows_per_prompt
  zeros = lambda bufs: tuple(jnp.zeros((b, k_heads, suffix_len, h), buf.dtype) for buf in bufs)
  prefix = SharedPrefix(k_PxKxSxH=prompt_cache.k_BxKxSxH, v_PxKxSxH=prompt_cache.v_BxKxSxH,
                        valid_PxS=prompt_cache.valid_BxS, positions_PxS=prompt_cache.positions_BxS)
  return KVCache(k_BxKxSxH=zeros(prompt_cache.k_BxKxSxH), v_BxKxSxH=zeros(prompt_cache.v_BxKxSxH), valid_BxS=jnp.zeros((b, suffix_len), bool),
                 positions_BxS=jnp.zeros((b, suffix_len), jnp.int32), index=jnp.zeros((), jnp.int32), prefix=prefix)


def map_rows(fn, cache: KVCache) -> KVCache:
  """`fn` applied to every per-row buffer (each has the row axis first); the index and any prefix are shared."""
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
