"""The Pallas decode kernel with rows and kv heads split over a (data, tensor) mesh of 8 fake devices.

A pallas_call has no SPMD partitioning rule, so under a mesh the kernel runs in shard_map
(`decode_attention._sharded_partial`): each device gets its rows and its kv heads of the cache.
Here that split must give the unsharded XLA attention, and the kernel must really run per shard:
its grid is one device's (rows, kv heads) and the compiled program moves no cache between devices.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ttc_jax import parallel
from ttc_jax.models import decode_attention
from ttc_jax.models.attention import attend_cached
from ttc_jax.models.prefix_attention import attend_cascade
from ttc_jax.testing.jaxprs import equations

B, K, G, S, H = 4, 4, 2, 32, 16  # Rows, kv heads, query heads per kv head, cache slots, head size.
LENGTHS = [32, 5, 17, 0]  # A full row, a short one, one ending mid-block, an empty one.
ROWS = ("data", "fsdp")  # Where parallel.RULES put "batch".
COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "reduce-scatter", "all-reduce")


def _decode_step_inputs():
  """One new token per row against a cache whose slots past each row's length hold NaN (never read)."""
  rng = np.random.RandomState(0)
  f32 = lambda *shape: jnp.asarray(rng.randn(*shape), jnp.float32)
  q, new_k, new_v = f32(B, 1, K * G, H), f32(B, 1, K, H), f32(B, 1, K, H)
  filled_BxS = np.arange(S)[None] < np.asarray(LENGTHS)[:, None]
  visible_BxS = filled_BxS & (rng.rand(B, S) < 0.8)
  cache_k, cache_v = (jnp.asarray(np.where(filled_BxS[:, None, :, None], rng.randn(B, K, S, H), np.nan), jnp.float32)
                      for _ in range(2))
  self_mask = jnp.ones((B, 1, 1), bool)
  return q, new_k, new_v, self_mask, cache_k, cache_v, jnp.asarray(visible_BxS)[:, None]


# Queries and new keys split by head, the cache by (row, kv head), masks by row: how a tensor-parallel
# model's activations and caches lie.
SPECS = (P(ROWS, None, "tensor"), P(ROWS, None, "tensor"), P(ROWS, None, "tensor"), P(ROWS),
         P(ROWS, "tensor"), P(ROWS, "tensor"), P(ROWS))


@pytest.mark.parametrize("data,tensor", [(2, 4), (4, 2)])
def test_kernel_split_over_kv_heads_equals_unsharded_xla(data, tensor):
  inputs = _decode_step_inputs()
  scores = dict(scale=H ** -0.5, softcap=0.0)
  q, new_k, new_v, self_mask, cache_k, cache_v, visible = inputs
  # XLA scores every slot (and masks the unfilled ones): give it zeros where the kernel sees NaN.
  want = attend_cached(q, new_k, new_v, self_mask, jnp.nan_to_num(cache_k), jnp.nan_to_num(cache_v), visible,
                       **scores)

  mesh = parallel.make_mesh(parallel.MeshConfig(data=data, tensor=tensor))
  sharded = [jax.device_put(x, NamedSharding(mesh, spec)) for x, spec in zip(inputs, SPECS)]
  step = jax.jit(lambda *a: decode_attention.attend_cached_pallas(*a, block_k=16, **scores))
  with parallel.activate(mesh):
    got = step(*sharded)
    jaxpr = jax.make_jaxpr(step)(*sharded)
    hlo = step.lower(*sharded).compile().as_text()
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)

  # One kernel, launched per shard: B / data rows by K / tensor kv heads (by one block of the G
  # query heads), its cache blocks one device's.
  (kernel,) = [eqn for eqn in equations(jaxpr) if eqn.primitive.name == "pallas_call"]
  assert kernel.params["grid_mapping"].grid == (B // data, K // tensor, 1)
  assert kernel.invars[2].aval.shape == (B // data, K // tensor, S, H)
  # Nothing crosses devices: each already holds the cache rows and kv heads its kernel reads.
  for op in COLLECTIVES:
    assert not re.search(rf"= \S+ {op}(-start)?\(", hlo), op


def test_one_problems_prefix_splits_by_its_rows():
  """One problem a call (P = 1 under data = 8): the prefix's queries, its 8 rows, split over the devices.

  Equal to the unsharded XLA cascade, with the prefix replicated and nothing moved between devices.
  """
  rows, prefix_slots = 8, 24
  rng = np.random.RandomState(1)
  f32 = lambda *shape: jnp.asarray(rng.randn(*shape), jnp.float32)
  q, new_k, new_v = f32(rows, 1, K * G, H), f32(rows, 1, K, H), f32(rows, 1, K, H)
  cache_k, cache_v = f32(rows, K, S, H), f32(rows, K, S, H)
  visible = jnp.asarray(np.arange(S)[None] < rng.randint(0, S, rows)[:, None])[:, None]
  prefix_k, prefix_v = f32(1, K, prefix_slots, H), f32(1, K, prefix_slots, H)
  prefix_valid = jnp.asarray(np.arange(prefix_slots) >= 5)[None]  # Left-padded.
  self_mask = jnp.ones((rows, 1, 1), bool)
  args = (q, new_k, new_v, self_mask, cache_k, cache_v, visible, prefix_k, prefix_v)
  scores = dict(scale=H ** -0.5, softcap=0.0)
  want = attend_cascade(*args, prefix_valid[:, None, None], **scores)
  mesh = parallel.make_mesh(parallel.MeshConfig(data=8))
  by_row, whole = NamedSharding(mesh, P(ROWS)), NamedSharding(mesh, P())
  placed = [jax.device_put(x, by_row) for x in args[:7]] + [jax.device_put(x, whole) for x in args[7:]]
  step = jax.jit(lambda *a: decode_attention.attend_cascade_pallas(*a, block_k=16, **scores))
  with parallel.activate(mesh):
    got = step(*placed, jax.device_put(prefix_valid, whole))
    hlo = step.lower(*placed, jax.device_put(prefix_valid, whole)).compile().as_text()
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
  for op in COLLECTIVES:
    assert not re.search(rf"= \S+ {op}(-start)?\(", hlo), op
