"""Creating state already sharded, and placing host batches on the mesh."""
import contextlib
from typing import Any, Callable

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ttc_jax.parallel.rules import RULES


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules=RULES) -> Any:
  """NamedShardings (for the unboxed tree) from a tree of nn.LogicallyPartitioned leaves.

  A dimension that the mapped mesh axes do not divide (e.g. one kv head over
  tensor=2) is replicated instead: small models still run on big meshes.
  """
  specs = nn.get_partition_spec(boxed_tree)
  mesh_specs = nn.logical_to_mesh(specs, rules)
  shapes = nn.unbox(boxed_tree)

  def fit(spec, leaf):
    if not isinstance(spec, P):
      return NamedSharding(mesh, P())
    dims = []
    for size, axes in zip(leaf.shape, tuple(spec) + (None,) * (len(leaf.shape) - len(spec))):
      names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
      ways = int(np.prod([mesh.shape[a] for a in names])) if names else 1
      dims.append(axes if size % ways == 0 else None)
    return NamedSharding(mesh, P(*dims))

  return jax.tree_util.tree_map(fit, mesh_specs, shapes, is_leaf=lambda x: isinstance(x, P) or x is None)


def sharded_init(init_fn: Callable[..., Any], mesh: Mesh, *args, rules=RULES) -> tuple[Any, Any]:
  """Runs `init_fn(*args)` (which returns boxed params) so each shard is born on its device.

  Shapes come from `jax.eval_shape`, shardings from the logical names, and the
  init is jitted with those `out_shardings`: the full tree never sits on one device.
  Returns (unboxed params, their shardings).
  """
  abstract = jax.eval_shape(init_fn, *args)
  shardings = logical_shardings(abstract, mesh, rules)
  params = jax.jit(lambda *a: nn.unbox(init_fn(*a)), out_shardings=shardings)(*args)
  return params, shardings


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, rules=RULES) -> NamedSharding:
  """Leading (batch) axis split over the data-parallel mesh axes."""
  batch_axes = dict(rules)["batch"]
  return NamedSharding(mesh, P(batch_axes))


def host_batch_to_global(batch: dict[str, np.ndarray], mesh: Mesh, rules=RULES) -> dict[str, jax.Array]:
  """Assembles each host's slice of the batch into one global, batch-sharded array."""
  sharding = batch_sharding(mesh, rules)
  return jax.tree_util.tree_map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def data_parallel_size(mesh: Mesh, rules=RULES) -> int:
  axes = dict(rules)["batch"]
  axes = (axes,) if isinstance(axes, str) else axes
  return int(np.prod([mesh.shape[a] for a in axes]))


@contextlib.contextmanager
def activate(mesh: Mesh, rules=RULES):
  """Mesh + logical rules in scope, so activation sharding hints inside jitted code take effect."""
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield
