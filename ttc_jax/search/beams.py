"""Beam bookkeeping: the flat row axis <-> [problems, beams], gathers, cache rewind.

Search keeps every per-candidate buffer with one flat row axis of size P * N
(problem-major: rows p*N .. p*N+N-1 belong to problem p), because the model and
the sampler see a plain batch. Beam selection works per problem: `parents_PxN`
holds, for every new slot, the index (0..N-1) of the slot it copies *within the
same problem*. Gathers are vmapped over problems, so when the problem axis is
sharded over devices each device gathers its own rows and nothing crosses devices.
"""
import jax
import jax.numpy as jnp

from ttc_jax.models.kv_cache import KVCache, map_rows


def unflatten_beams(x: jax.Array, num_beams: int, axis: int = 0) -> jax.Array:
  """[..., P*N, ...] -> [..., P, N, ...] at `axis`."""
  shape = x.shape
  return x.reshape(shape[:axis] + (shape[axis] // num_beams, num_beams) + shape[axis + 1:])


def flatten_beams(x: jax.Array, axis: int = 0) -> jax.Array:
  """[..., P, N, ...] -> [..., P*N, ...] at `axis` (inverse of `unflatten_beams`)."""
  shape = x.shape
  return x.reshape(shape[:axis] + (shape[axis] * shape[axis + 1],) + shape[axis + 2:])


def gather_beams(tree, parents_PxN: jax.Array, axis: int = 0):
  """Row (p, n) of each result leaf is row (p, parents_PxN[p, n]) of the input leaf.

  Every leaf carries the flat P*N row axis at `axis`.
  """
  num_beams = parents_PxN.shape[1]

  def one(x):
    x_PxN = unflatten_beams(x, num_beams, axis)
    take = jax.vmap(lambda xp, idx: jnp.take(xp, idx, axis=axis), in_axes=(axis, 0), out_axes=axis)
    return flatten_beams(take(x_PxN, parents_PxN), axis)

  return jax.tree_util.tree_map(one, tree)


def repeat_beams(tree, num_beams: int, axis: int = 0):
  """Each row repeated num_beams times in place: [..., P, ...] -> [..., P*N, ...] at `axis`.

  A broadcast, not a gather, so a problem-sharded input stays put on its device.
  """
  def one(x):
    x = jnp.expand_dims(x, axis + 1)
    return flatten_beams(jnp.broadcast_to(x, x.shape[:axis + 1] + (num_beams,) + x.shape[axis + 2:]), axis)

  return jax.tree_util.tree_map(one, tree)


def repeat_cache(cache: KVCache, num_beams: int) -> KVCache:
  """`models.repeat_rows` as a broadcast: N candidates share one prompt prefill."""
  return map_rows(lambda x: repeat_beams(x, num_beams), cache)


def gather_cache(cache: KVCache, parents_PxN: jax.Array) -> KVCache:
  """The cache rows reordered like `gather_beams` (`models.gather_rows` per problem)."""
  return map_rows(lambda x: gather_beams(x, parents_PxN), cache)


def rewind_cache(cache: KVCache, index_B: jax.Array) -> KVCache:
  """Forgets every slot of row b from index_B[b] on (lookahead rollouts are scored, then dropped).

  `index_B` (int32 [B], or a scalar for every row) is where each row stood: its next write
  starts there again and the stale slots are invalid until overwritten.
  """
  index_B = jnp.broadcast_to(jnp.asarray(index_B, jnp.int32), (cache.batch_size,))
  keep_BxS = jnp.arange(cache.max_len)[None] < index_B[:, None]
  return cache.replace(valid_BxS=cache.valid_BxS & keep_BxS, index_B=index_B)
