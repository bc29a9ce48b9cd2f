"""Safetensors files read as zero-copy memory maps, and written without torch.

A file is: 8 bytes (little-endian u64) header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes, offsets relative to the end of the header.
We parse it ourselves because `safetensors`' numpy reader cannot return bfloat16
and would copy; a memmap view costs nothing until a slice of it is read.

A checkpoint directory holds `model.safetensors`, or shards named by
`model.safetensors.index.json` ({"weight_map": {tensor: file}}).
"""
import glob
import json
import math
import os
import struct
from collections.abc import Callable, Sequence

import ml_dtypes
import numpy as np

DTYPES = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U8": np.dtype(np.uint8), "BOOL": np.dtype(np.bool_),
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_MAX_HEADER = 100 << 20  # The format's own limit: a larger length means a corrupt file.

_CONVERT_HINT = (
    "convert it once in a trusted environment with\n"
    "  python -c \"import torch; from safetensors.torch import save_file; "
    "save_file(torch.load('pytorch_model.bin'), 'model.safetensors')\"\n"
    "or load it with transformers and call model.save_pretrained(dir, safe_serialization=True)")


def read_header(path: str) -> tuple[dict, int]:
  """(header without __metadata__, byte offset where the data starts); checks sizes against the file."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    head = f.read(8)
    if len(head) < 8:
      raise ValueError(f"{path}: truncated safetensors file ({size} bytes, no header length)")
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_HEADER or 8 + n > size:
      raise ValueError(f"{path}: truncated or corrupt safetensors file: header length {n} "
                       f"is beyond the file size {size}")
    try:
      header = json.loads(f.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{path}: the safetensors header is not valid JSON ({e})") from e
  header.pop("__metadata__", None)
  data_size = size - 8 - n
  for name, info in header.items():
    if info["dtype"] not in DTYPES:
      raise ValueError(f"{path}: tensor {name!r} has dtype {info['dtype']!r}, not supported "
                       f"(supported: {', '.join(DTYPES)})")
    begin, end = info["data_offsets"]
    want = math.prod(info["shape"]) * DTYPES[info["dtype"]].itemsize
    if end - begin != want:
      raise ValueError(f"{path}: tensor {name!r} spans {end - begin} bytes, but {info['dtype']}"
                       f"{info['shape']} needs {want}")
    if end > data_size:
      raise ValueError(f"{path}: truncated safetensors file: tensor {name!r} ends at data offset {end} "
                       f"but the file holds only {data_size} data bytes")
  return header, 8 + n


def open_file(path: str) -> dict[str, np.ndarray]:
  """Every tensor of one file as a read-only view of one memory map (nothing is read yet)."""
  header, start = read_header(path)
  raw = np.memmap(path, dtype=np.uint8, mode="r")
  out = {}
  for name, info in header.items():
    begin, end = info["data_offsets"]
    out[name] = raw[start + begin:start + end].view(DTYPES[info["dtype"]]).reshape(info["shape"])
  return out


def refuse_pickle(model_dir: str) -> None:
  """Raises if the directory has only pickle weights: unpickling a file can run arbitrary code."""
  pickles = sorted(os.path.basename(p) for p in glob.glob(os.path.join(model_dir, "*.bin")))
  if pickles:
    raise ValueError(f"{model_dir} has pickle weights ({', '.join(pickles[:3])}) and no safetensors: "
                     f"they are not loaded because unpickling can run arbitrary code; {_CONVERT_HINT}")


class Checkpoint:
  """The tensors of a checkpoint directory (single file or sharded), opened lazily per file."""

  def __init__(self, model_dir: str):
    self.model_dir = model_dir
    index_path = os.path.join(model_dir, INDEX_FILE)
    if os.path.exists(index_path):
      with open(index_path) as f:
        self.weight_map = dict(json.load(f)["weight_map"])
      for name, file in self.weight_map.items():
        if not os.path.exists(os.path.join(model_dir, file)):
          raise FileNotFoundError(f"{index_path} maps tensor {name!r} to {file}, which is missing from {model_dir}")
      self.files = sorted(set(self.weight_map.values()))
    elif os.path.exists(os.path.join(model_dir, SINGLE_FILE)):
      self.files = [SINGLE_FILE]
      self.weight_map = {name: SINGLE_FILE for name in read_header(os.path.join(model_dir, SINGLE_FILE))[0]}
    else:
      refuse_pickle(model_dir)
      raise FileNotFoundError(f"{model_dir} has neither {SINGLE_FILE} nor {INDEX_FILE}")
    self._open: dict[str, dict[str, np.ndarray]] = {}

  def names(self) -> list[str]:
    return sorted(self.weight_map)

  def file_of(self, name: str) -> str:
    return os.path.join(self.model_dir, self.weight_map[name])

  def get(self, name: str) -> np.ndarray:
    """A memory-mapped view of tensor `name` (KeyError names the files searched)."""
    if name not in self.weight_map:
      raise KeyError(f"tensor {name!r} not found in {self.model_dir} (searched {', '.join(self.files)})")
    file = self.weight_map[name]
    if file not in self._open:
      self._open[file] = open_file(os.path.join(self.model_dir, file))
    tensors = self._open[file]
    if name not in tensors:
      raise KeyError(f"{os.path.join(self.model_dir, INDEX_FILE)} maps tensor {name!r} to {file}, "
                     f"which does not contain it")
    return tensors[name]


# ------------------------------------------------------------------------------------------------ writing


TensorSpec = tuple[str, np.dtype, tuple[int, ...]]  # (name, dtype, shape)


def write_file(path: str, specs: Sequence[TensorSpec], produce: Callable[[str], np.ndarray],
               metadata: dict[str, str] | None = None) -> None:
  """Writes one file; `produce(name)` is called once per tensor, in order, so only one is in memory.

  The header needs every offset up front, hence specs first and data after.
  """
  header, offset = {}, 0
  for name, dtype, shape in specs:
    dtype = np.dtype(dtype)
    if dtype not in DTYPE_NAMES:
      raise ValueError(f"{path}: tensor {name!r} has dtype {dtype}, not writable as safetensors")
    nbytes = math.prod(shape) * dtype.itemsize
    header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
    offset += nbytes
  header["__metadata__"] = {"format": "pt", **(metadata or {})}
  blob = json.dumps(header, separators=(",", ":")).encode()
  blob += b" " * (-len(blob) % 8)  # Pad so the data starts 8-byte aligned, as the reference writer does.
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(struct.pack("<Q", len(blob)) + blob)
    for name, dtype, shape in specs:
      array = np.asarray(produce(name))
      if array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
        raise ValueError(f"{path}: tensor {name!r} produced {array.dtype}{list(array.shape)}, "
                         f"declared {np.dtype(dtype)}{list(shape)}")
      f.write(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
  os.replace(tmp, path)


def save_file(path: str, tensors: dict[str, np.ndarray]) -> None:
  """Convenience: writes a dict of in-memory arrays to one file."""
  write_file(path, [(k, v.dtype, v.shape) for k, v in tensors.items()], tensors.__getitem__)


def plan_shards(specs: Sequence[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
  """Greedy split in order; a tensor larger than the limit gets a file of its own."""
  shards, size = [[]], 0
  for spec in specs:
    nbytes = math.prod(spec[2]) * np.dtype(spec[1]).itemsize
    if shards[-1] and size + nbytes > max_shard_bytes:
      shards.append([])
      size = 0
    shards[-1].append(spec)
    size += nbytes
  return shards


def write_checkpoint(out_dir: str, specs: Sequence[TensorSpec], produce: Callable[[str], np.ndarray],
                     max_shard_bytes: int) -> list[str]:
  """model.safetensors, or model-0000i-of-0000n.safetensors + the index when over the limit."""
  shards = plan_shards(specs, max_shard_bytes)
  if len(shards) == 1:
    write_file(os.path.join(out_dir, SINGLE_FILE), shards[0], produce)
    return [SINGLE_FILE]
  files, weight_map, total = [], {}, 0
  for i, shard in enumerate(shards):
    file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
    write_file(os.path.join(out_dir, file), shard, produce)
    files.append(file)
    for name, dtype, shape in shard:
      weight_map[name] = file
      total += math.prod(shape) * np.dtype(dtype).itemsize
  with open(os.path.join(out_dir, INDEX_FILE), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
  return files


def save_checkpoint(out_dir: str, tensors: dict[str, np.ndarray], max_shard_bytes: int = 5 << 30) -> list[str]:
  """Convenience for tests and tools: an in-memory dict -> a (possibly sharded) checkpoint."""
  os.makedirs(out_dir, exist_ok=True)
  return write_checkpoint(out_dir, [(k, v.dtype, v.shape) for k, v in tensors.items()], tensors.__getitem__,
                          max_shard_bytes)
