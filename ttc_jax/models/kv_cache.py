"""The decode-time key/value cache: a pytree of fixed-shape buffers, one K and one V per layer.

Every row has its own next slot (`index_B`): a cached call writes row b's T new
tokens at slots [index_B[b], index_B[b] + T) (one scatter per layer, in place in a
decode loop) and moves the row's index past its last valid new token. So a
finished sample (a decode step fed as invalid) or the unused end of a verifier
block takes no slot: its write lands invalid at or past the row's index and the
row's next call overwrites it. In search each candidate advances by its own step,
not the batch's longest. Left padding inside a prompt does take slots (they lie
before the prompt's last, valid, token). Beam search reorders rows, indexes
included, with `gather_rows`.

Each layer owns its buffers (a tuple over layers, not one stacked [L, ...] array)
and every leaf has the row axis first: a decode step reads and writes a layer's
keys where they lie. Slicing a layer out of a stacked array made XLA copy it on
every step (bench/results/sampler_NOTES.md). The [B, K, S, H] order puts the two
batch axes of the attention matmuls (rows, kv heads) in front, so the matmuls
read the buffer without a transpose.

A cache may carry a `SharedPrefix`: the prompt's keys and values stored once per
problem ([P, K, Sp, H] per layer) and read by all N = B / P of its rows (row b
belongs to problem b // N). The cache's own slots then hold only each row's
suffix (the tokens after the prompt), and its indexes count suffix slots. Row
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
  # slots (left-padded prompts take slots without tokens).
  positions_BxS: jax.Array
  index_B: jax.Array  # int32 [B]: each row's next slot to write; its slots [0, index_B[b]) are its context.
  prefix: SharedPrefix | None = None  # The shared prompt, or None: every row holds its own prompt.
  # Static: nothing written yet (`init_cache(fresh=True)`, a prefill's cache). The call that fills it
  # attends only among its own tokens, with `model.attention_impl`, instead of scoring every empty
  # slot of the buffer and masking it: at a 256-token prefill into 512 slots that waste was two
  # thirds of the attention's scores. Every call returns a cache with fresh=False.
  fresh: bool = flax.struct.field(pytree_node=False, default=False)

  @property
  def index(self) -> jax.Array:
    """int32 []: the furthest next slot over the rows (what one shared index would be)."""
    return jnp.max(self.index_B)

  @property
  def max_len(self) -> int:
    return self.valid_BxS.shape[1]

  @property
  def batch_size(self) -> int:
    return self.valid_BxS.shape[0]

  @property
  def num_layers(self) -> int:
    return len(self.k_BxKxSxH)


def init_cache(cfg: ModelConfig, batch_size: int, max_len: int, fresh: bool = False) -> KVCache:
  """An empty cache for `batch_size` rows and `max_len` token slots.

  `fresh`: marks it unwritten, for a prefill that fills it in one call. Leave it False for a
  cache that enters a loop (a loop's carry must keep one structure, and calls return fresh=False).
  """
  shape = (batch_size, cfg.n_kv_heads, max_len, cfg.head_size)
  zeros = lambda: tuple(jnp.zeros(shape, cfg.compute_dtype) for _ in range(cfg.n_layers))
  return KVCache(
      k_BxKxSxH=zeros(),
      v_BxKxSxH=zeros(),
      valid_BxS=jnp.zeros((batch_size, max_len), bool),
      positions_BxS=jnp.zeros((batch_size, max_len), jnp.int32),
      index_B=jnp.zeros((batch_size,), jnp.int32),
      fresh=fresh,
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
                 positions_BxS=jnp.zeros((b, suffix_len), jnp.int32), index_B=jnp.zeros((b,), jnp.int32),
                 prefix=prefix)


def map_rows(fn, cache: KVCache) -> KVCache:
  """`fn` applied to every per-row buffer and the row indexes (each has the row axis first); any prefix is shared."""
  rows = (cache.k_BxKxSxH, cache.v_BxKxSxH, cache.valid_BxS, cache.positions_BxS, cache.index_B)
  k, v, valid, positions, index = jax.tree_util.tree_map(fn, rows)
  return cache.replace(k_BxKxSxH=k, v_BxKxSxH=v, valid_BxS=valid, positions_BxS=positions, index_B=index)


def gather_rows(cache: KVCache, rows_B: jax.Array) -> KVCache:
  """Reorders (and duplicates) cache rows: row b of the result is row rows_B[b]."""
  return map_rows(lambda x: jnp.take(x, rows_B, axis=0), cache)


def repeat_rows(cache: KVCache, n: int) -> KVCache:
  """Each row repeated n times in place (row b -> rows b*n .. b*n+n-1): n samples share one prefill."""
  rows = jnp.repeat(jnp.arange(cache.batch_size), n)
  return gather_rows(cache, rows)


def past_last(mask_BxT: jax.Array) -> jax.Array:
  """int32 [B]: one past each row's last True entry (0 for none)."""
  t_T = jnp.arange(1, mask_BxT.shape[1] + 1, dtype=jnp.int32)
  return jnp.max(jnp.where(mask_BxT, t_T[None], 0), axis=1)


def next_index(index_B: jax.Array, valid_BxT: jax.Array) -> jax.Array:
  """Each row's index after a call that wrote T tokens at it: moved past the row's last valid token.

  Trailing invalid tokens (a finished row's decode step, the unused end of a block) take no slot.
  """
  return (index_B + past_last(valid_BxT)).astype(jnp.int32)


# Both writes are one scatter per buffer, which XLA updates in place inside a loop. It is vmapped
# over rows so the row axis is the scatter's batch axis: with rows sharded over devices each
# device writes its own rows (indexing rows by an arange instead all-gathers the indices).
# Entries past the buffer's end are dropped, not shifted back over earlier slots as
# `dynamic_update_slice` would: only a row with nothing to write (its write is invalid) sits
# that close to the end. A row's slots are unique and sorted, which spares the GPU its atomics.
_SCATTER = dict(mode="drop", indices_are_sorted=True, unique_indices=True)


def write_rows(buf_BxS: jax.Array, new_BxT: jax.Array, index_B: jax.Array) -> jax.Array:
  """`buf` with row b's T new entries at slots [index_B[b], index_B[b] + T)."""
  t_T = jnp.arange(new_BxT.shape[1])
  one = lambda buf_S, new_T, i: buf_S.at[i + t_T].set(new_T.astype(buf_S.dtype), **_SCATTER)
  return jax.vmap(one)(buf_BxS, new_BxT, index_B)


def write_layer(buf_BxKxSxH: jax.Array, new_BxTxKxH: jax.Array, index_B: jax.Array) -> jax.Array:
  """A layer's buffer with row b's T new keys (or values) written at slots [index_B[b], index_B[b] + T)."""
  t_T = jnp.arange(new_BxTxKxH.shape[1])
  one = lambda buf_KxSxH, new_TxKxH, i: buf_KxSxH.at[:, i + t_T].set(
      jnp.swapaxes(new_TxKxH, 0, 1).astype(buf_KxSxH.dtype), **_SCATTER)
  return jax.vmap(one)(buf_BxKxSxH, new_BxTxKxH, index_B)
