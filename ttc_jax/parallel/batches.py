"""Evaluation batches over the data axis: pad rows to the data-parallel size, place them, fetch them back.

The sampler, the verifier scorer and search each build a fixed-shape batch on the host and call
one jitted function on it. With a mesh in scope (`jax.set_mesh(mesh)`, or passed explicitly) they
ask this module how many rows a call needs, place the rows split over the mesh's batch axes
(`RULES["batch"]`: data and fsdp) and read the outputs back:

    rows = padded_rows(batch_size)                 # 16 -> 16 on 8 devices, 3 -> 8
    tokens, valid = left_pad(chunk, pad_id, buckets, batch_size=rows)
    out = fetch(fn(params, *place_rows((tokens, valid))))
    real = out[:len(chunk)]                        # padding rows are dropped by the caller

Padding rows are appended after the real ones and are never read. Random draws stay the same:
with `jax_threefry_partitionable` (jax's default) element i of a [B, ...] draw depends on the key
and i only, so a real row samples exactly what it samples in the unpadded, one-device batch.
"""
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from ttc_jax.parallel.sharding import batch_sharding, data_parallel_size


def round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def current_mesh(mesh: Mesh | None = None) -> Mesh | None:
  """`mesh`, else the mesh of the enclosing `jax.set_mesh`; None when there is none (plain one-device code)."""
  if mesh is not None:
    return mesh
  ambient = jax.sharding.get_mesh()
  return None if ambient.empty else ambient


def padded_rows(batch_size: int, mesh: Mesh | None = None) -> int:
  """Rows of a device call holding `batch_size` real rows: the next multiple of the data-parallel size."""
  mesh = current_mesh(mesh)
  return batch_size if mesh is None else round_up(batch_size, data_parallel_size(mesh))


def place_rows(tree: Any, mesh: Mesh | None = None) -> Any:
  """Host arrays [rows, ...] -> arrays split over the mesh's batch axes (unchanged without a mesh).

  Every process passes the same full arrays; each places only the rows its devices hold, so this
  works for a per-process mesh and for one mesh over every host alike.
  """
  mesh = current_mesh(mesh)
  if mesh is None or mesh.size == 1:
    return tree
  sharding = batch_sharding(mesh)

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree_util.tree_map(put, tree)


def fetch(tree: Any) -> Any:
  """Device outputs -> numpy on this host, whole (gathered from the other hosts when the mesh spans them)."""
  leaves = jax.tree_util.tree_leaves(tree)
  if all(getattr(x, "is_fully_addressable", True) for x in leaves):
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))
  from jax.experimental import multihost_utils  # Only a mesh over several hosts gets here.
  return jax.tree_util.tree_map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
