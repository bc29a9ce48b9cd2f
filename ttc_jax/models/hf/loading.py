"""Places a Hugging Face checkpoint's tensors straight onto a mesh, one device slice at a time.

`jax.make_array_from_callback` asks for each device's index (slices over our
stacked [L, ...] shape); the callback builds only that slice from memory-mapped
HF tensors: per layer in the L range, transform the view (reshape / transpose
cost nothing), slice it, and copy it into one buffer of the slice's size in the
parameter dtype. No host buffer ever holds more than one device's slice of one
tensor, so host memory stays near one shard however large the model is.
"""
import dataclasses
import math
import os
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ttc_jax.models.config import ModelConfig
from ttc_jax.models.hf import params as pmap
from ttc_jax.models.hf.safetensors_io import DTYPES, Checkpoint
from ttc_jax.parallel import RULES


_FLOATS = {DTYPES[k] for k in DTYPES if k.startswith("F") or k == "BF16"}


@dataclasses.dataclass
class LoadStats:
  """What a load read from the host: tests assert the bound, benchmarks report it."""
  largest_buffer_bytes: int = 0  # The largest single host buffer built (one device slice).
  bytes_built: int = 0  # Sum over built slices (replicated slices count once).
  slices_built: int = 0
  cache_hits: int = 0  # Replicated slices served again without reading.


def _sharding(row: pmap.Row, cfg: ModelConfig, mesh: Mesh, rules) -> NamedSharding:
  """Logical names -> mesh axes, replicating a dimension the axes do not divide (as parallel.logical_shardings)."""
  table = dict(rules)
  dims = []
  for size, name in zip(pmap.stacked_shape(row, cfg), pmap.logical_names(row)):
    axes = table.get(name) if name else None
    names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
    ways = math.prod(mesh.shape[a] for a in names) if names else 1
    dims.append(axes if names and size % ways == 0 else None)
  return NamedSharding(mesh, P(*dims))


def abstract_hf_params(cfg: ModelConfig, mesh: Mesh, rules=RULES) -> dict:
  """The parameter tree the table describes, as ShapeDtypeStructs with shardings."""
  tree: dict[str, Any] = {}
  for row in pmap.rows(cfg):
    node = tree
    *parents, leaf = row.path.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = jax.ShapeDtypeStruct(pmap.stacked_shape(row, cfg), cfg.weight_dtype,
                                      sharding=_sharding(row, cfg, mesh, rules))
  return {"params": tree}


def _check(ckpt: Checkpoint, name: str, view: np.ndarray, want: tuple[int, ...]) -> None:
  if view.dtype not in _FLOATS:
    raise ValueError(f"{ckpt.file_of(name)}: tensor {name!r} has dtype {view.dtype}, expected a floating-point weight")
  if view.shape != want:
    raise ValueError(f"{ckpt.file_of(name)}: tensor {name!r} has shape {list(view.shape)}, but the config "
                     f"(config.json) implies {list(want)}")


def _hf_shape(row: pmap.Row, cfg: ModelConfig) -> tuple[int, ...]:
  return row.to_hf(np.empty(row.shape(cfg), np.int8), cfg).shape


def load_hf_params(model_dir: str, cfg: ModelConfig, mesh: Mesh, rules=RULES, *,
                   stats: LoadStats | None = None) -> dict:
  """{"params": ...} of `cfg`'s Transformer, read from a HF checkpoint directory onto `mesh`.

  Errors name the file and tensor: a missing tensor (and the files searched), a shape
  that disagrees with config.json, a non-float weight, unexpected extra tensors.
  """
  stats = stats if stats is not None else LoadStats()
  ckpt = Checkpoint(model_dir)
  names = ckpt.names()
  try:
    prefix, root = pmap.detect_prefix(names)
  except KeyError as e:
    raise KeyError(f"{model_dir}: {e.args[0]} (files: {', '.join(ckpt.files)})") from None
  used = set()
  plan = []
  for row in pmap.rows(cfg):
    hf = pmap.hf_names(row, cfg, prefix, root)
    want = _hf_shape(row, cfg)
    for name in hf:
      if name not in ckpt.weight_map:
        raise KeyError(f"tensor {name!r} (for {row.path}) is missing from {model_dir} "
                       f"(searched {', '.join(ckpt.files)})")
      _check(ckpt, name, ckpt.get(name), want)
    used.update(hf)
    plan.append((row, hf))
  _check_extras(model_dir, cfg, [n for n in names if n not in used], prefix, root)

  tree: dict[str, Any] = {}
  dtype = cfg.weight_dtype
  for row, hf in plan:
    views = [ckpt.get(n) for n in hf]
    built: dict[tuple, np.ndarray] = {}  # Replicated devices ask for the same index: build it once.

    def callback(index, row=row, views=views, built=built):
      key = tuple((s.start, s.stop, s.step) for s in index)
      if key in built:
        stats.cache_hits += 1
        return built[key]
      if row.layer:
        layers, rest = range(cfg.n_layers)[index[0]], index[1:]
        first = row.to_ours(views[0], cfg)[rest]
        out = np.empty((len(layers),) + first.shape, dtype)
        for j, i in enumerate(layers):
          out[j] = row.to_ours(views[i], cfg)[rest]  # Reads only this layer's slice from the map.
      else:
        part = row.to_ours(views[0], cfg)[index]
        out = np.empty(part.shape, dtype)
        out[...] = part
      stats.largest_buffer_bytes = max(stats.largest_buffer_bytes, out.nbytes)
      stats.bytes_built += out.nbytes
      stats.slices_built += 1
      built[key] = out
      return out

    shape = pmap.stacked_shape(row, cfg)
    array = jax.make_array_from_callback(shape, _sharding(row, cfg, mesh, rules), callback)
    node = tree
    *parents, leaf = row.path.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = array
    built.clear()
  return {"params": tree}


def _check_extras(model_dir: str, cfg: ModelConfig, extra: list[str], prefix: str, root: str) -> None:
  ignorable, unexpected = [], []
  for name in extra:
    tied_head = cfg.tie_embeddings and name == root + "lm_head.weight"  # Some writers save the tied copy.
    if (tied_head or any(name.endswith(s) for s in pmap.IGNORABLE)
        or any(name.startswith(p) for p in pmap.IGNORABLE_PREFIXES) or not name.startswith((prefix, root))):
      ignorable.append(name)
    else:
      unexpected.append(name)
  if unexpected:
    raise ValueError(f"{model_dir}: {len(unexpected)} tensors the config does not account for, e.g. "
                     f"{unexpected[:5]}: does config.json match the weights (biases, q/k norms, an untied lm_head)?")
  if ignorable:
    logging.warning("%s: ignoring %d tensors that are not language-model parameters, e.g. %s",
                    os.path.basename(model_dir.rstrip("/")), len(ignorable), ignorable[:3])
