"""Our safetensors reader/writer: zero-copy views, bf16, shards, and every refusal with its message."""
import json
import os
import struct

import ml_dtypes
import numpy as np
import pytest

from ttc_jax.models.hf import safetensors_io as st


def _tensors():
  rng = np.random.default_rng(0)
  return {"a": rng.standard_normal((3, 5)).astype(np.float32), "b": rng.standard_normal(7).astype(ml_dtypes.bfloat16),
          "c": rng.standard_normal((2, 2)).astype(np.float16), "d": np.arange(6, dtype=np.int64).reshape(2, 3),
          "e": np.array([True, False, True]), "f": np.arange(4, dtype=np.int32)}


def test_write_then_read_is_exact_and_memory_mapped(tmp_path):
  tensors = _tensors()
  st.save_file(str(tmp_path / "model.safetensors"), tensors)
  got = st.open_file(str(tmp_path / "model.safetensors"))
  assert sorted(got) == sorted(tensors)
  for name, want in tensors.items():
    assert got[name].dtype == want.dtype and got[name].shape == want.shape
    assert got[name].tobytes() == want.tobytes()
    assert isinstance(got[name].base, np.memmap) or isinstance(got[name], np.memmap)  # A view, not a copy.


def test_reads_files_written_by_the_safetensors_package(tmp_path):
  safetensors_numpy = pytest.importorskip("safetensors.numpy")
  tensors = {k: v for k, v in _tensors().items() if k != "b"}  # Its numpy API has no bfloat16.
  safetensors_numpy.save_file(tensors, str(tmp_path / "x.safetensors"))
  got = st.open_file(str(tmp_path / "x.safetensors"))
  for name, want in tensors.items():
    np.testing.assert_array_equal(got[name], want)
  st.save_file(str(tmp_path / "y.safetensors"), tensors)  # And it reads ours.
  for name, want in safetensors_numpy.load_file(str(tmp_path / "y.safetensors")).items():
    np.testing.assert_array_equal(want, tensors[name])


def test_sharded_checkpoint_resolves_through_the_index(tmp_path):
  tensors = _tensors()
  files = st.save_checkpoint(str(tmp_path), tensors, max_shard_bytes=64)
  assert len(files) >= 2 and os.path.exists(tmp_path / st.INDEX_FILE)
  ckpt = st.Checkpoint(str(tmp_path))
  assert ckpt.names() == sorted(tensors)
  for name, want in tensors.items():
    assert ckpt.get(name).tobytes() == want.tobytes()


def test_missing_shard_names_index_and_tensor(tmp_path):
  st.save_checkpoint(str(tmp_path), _tensors(), max_shard_bytes=64)
  index = json.loads((tmp_path / st.INDEX_FILE).read_text())
  victim = index["weight_map"]["d"]
  os.remove(tmp_path / victim)
  with pytest.raises(FileNotFoundError, match=rf"{st.INDEX_FILE} maps tensor '.*' to {victim}, which is missing"):
    st.Checkpoint(str(tmp_path))


def test_header_length_beyond_file_is_truncated(tmp_path):
  path = tmp_path / "model.safetensors"
  path.write_bytes(struct.pack("<Q", 1000) + b"{}")
  with pytest.raises(ValueError, match="truncated.*header length 1000 is beyond the file size 10"):
    st.read_header(str(path))


def test_offsets_beyond_data_are_truncated(tmp_path):
  path = tmp_path / "model.safetensors"
  st.save_file(str(path), {"w": np.zeros((4, 4), np.float32)})
  path.write_bytes(path.read_bytes()[:-8])
  with pytest.raises(ValueError, match="truncated.*tensor 'w' ends at data offset 64 but the file holds only 56"):
    st.open_file(str(path))


def test_unsupported_dtype_is_named(tmp_path):
  header = json.dumps({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}).encode()
  path = tmp_path / "model.safetensors"
  path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
  with pytest.raises(ValueError, match="tensor 'w' has dtype 'C64', not supported"):
    st.read_header(str(path))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "pytorch_model-00001-of-00002.bin"])
def test_pickle_weights_are_refused_with_the_conversion(tmp_path, name):
  (tmp_path / name).write_bytes(b"not loaded")
  with pytest.raises(ValueError) as e:
    st.Checkpoint(str(tmp_path))
  msg = str(e.value)
  assert name in msg and "arbitrary code" in msg
  assert "save_file(torch.load('pytorch_model.bin'), 'model.safetensors')" in msg
  assert "save_pretrained(dir, safe_serialization=True)" in msg


def test_empty_directory_names_both_layouts(tmp_path):
  with pytest.raises(FileNotFoundError, match=f"neither {st.SINGLE_FILE} nor {st.INDEX_FILE}"):
    st.Checkpoint(str(tmp_path))
