"""Mesh, logical-axis rules and sharded initialisation."""
from ttc_jax.parallel.mesh import DistributedConfig, MeshConfig, make_mesh, maybe_initialize_distributed
from ttc_jax.parallel.rules import MESH_AXES, RULES
from ttc_jax.parallel.sharding import (activate, batch_sharding, data_parallel_size, host_batch_to_global, logical_shardings,
                                       replicated, sharded_init)
