"""Device mesh from a small frozen config, and multi-host start-up."""
import dataclasses
import math

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh

from ttc_jax.parallel.rules import MESH_AXES


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  """Sizes of the (data, fsdp, tensor) mesh axes; one of them may be -1 (all remaining devices).

  num_devices: 0 spans every device the job is given; n > 0 only the first n of them (a tiny run
  that sharding over many devices only slows, or a job leaving the rest free).
  """
  data: int = -1
  fsdp: int = 1
  tensor: int = 1
  num_devices: int = 0

  def __post_init__(self):
    if self.num_devices < 0:
      raise ValueError(f"mesh.num_devices={self.num_devices} must be >= 0 (0: every device)")

  def resolve(self, num_devices: int) -> tuple[int, int, int]:
    sizes = [self.data, self.fsdp, self.tensor]
    fill = [i for i, s in enumerate(sizes) if s == -1]
    if len(fill) > 1:
      raise ValueError(f"mesh: at most one of mesh.data/fsdp/tensor may be -1, got {dict(zip(MESH_AXES, sizes))}")
    for name, s in zip(MESH_AXES, sizes):
      if s == 0 or s < -1:
        raise ValueError(f"mesh.{name}={s} must be a positive size or -1")
    known = math.prod(s for s in sizes if s != -1)
    if fill:
      if num_devices % known:
        raise ValueError(f"mesh: {num_devices} devices are not divisible by the fixed axes {dict(zip(MESH_AXES, sizes))}")
      sizes[fill[0]] = num_devices // known
    if math.prod(sizes) != num_devices:
      raise ValueError(f"mesh: data*fsdp*tensor = {math.prod(sizes)} but there are {num_devices} devices "
                       f"(mesh.data={sizes[0]}, mesh.fsdp={sizes[1]}, mesh.tensor={sizes[2]})")
    return tuple(sizes)


def make_mesh(cfg: MeshConfig, devices=None) -> Mesh:
  """A (data, fsdp, tensor) mesh over `devices` (default: all devices of all hosts)."""
  devices = jax.devices() if devices is None else list(devices)
  if cfg.num_devices:
    if cfg.num_devices > len(devices):
      raise ValueError(f"mesh.num_devices={cfg.num_devices} but there are only {len(devices)} devices")
    chosen = devices[:cfg.num_devices]
    # A mesh spanning hosts must keep a device of each: every process runs the same program on it.
    if {d.process_index for d in chosen} != {d.process_index for d in devices}:
      raise ValueError(f"mesh.num_devices={cfg.num_devices} leaves out some processes' devices; "
                       "multi-host jobs need at least one device of every process")
    devices = chosen
  shape = cfg.resolve(len(devices))
  try:
    device_array = mesh_utils.create_device_mesh(shape, devices=devices)
  except Exception:  # Fake CPU devices or unusual topologies: plain order is fine.
    device_array = np.asarray(devices).reshape(shape)
  return Mesh(device_array, MESH_AXES)


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """Multi-host start-up; on Cloud TPU `initialize=True` needs nothing else."""
  initialize: bool = False
  coordinator_address: str | None = None
  num_processes: int | None = None
  process_id: int | None = None


def maybe_initialize_distributed(cfg: DistributedConfig) -> None:
  if not cfg.initialize:
    return
  kwargs = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "initialize" and v is not None}
  jax.distributed.initialize(**kwargs)
