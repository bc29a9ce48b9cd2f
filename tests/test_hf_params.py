"""HF checkpoint -> sharded params -> HF checkpoint: placement, host-memory bound, exact round trip, errors."""
import json
import math
import os

import jax
import numpy as np
import pytest

from ttc_jax import export
from ttc_jax.models import ModelConfig
from ttc_jax.models import hf
from ttc_jax.models.hf import safetensors_io as st
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.testing.tiny_hf import CONFIGS, write_hf_model

FAMILIES = list(CONFIGS)


def _one():
  return make_mesh(MeshConfig(), jax.devices()[:1])


def _eight():
  return make_mesh(MeshConfig(data=1, fsdp=4, tensor=2), jax.devices())


@pytest.mark.parametrize("family", FAMILIES)
def test_sharded_load_equals_single_device_and_round_trips(tmp_path, family):
  tensors = write_hf_model(str(tmp_path / "in"), family, dtype="bfloat16", max_shard_bytes=20_000)
  assert len(st.Checkpoint(str(tmp_path / "in")).files) >= 2
  cfg, _ = hf.read_hf_config(str(tmp_path / "in"))
  one = hf.load_hf_params(str(tmp_path / "in"), cfg, _one())
  eight = hf.load_hf_params(str(tmp_path / "in"), cfg, _eight())
  q = eight["params"]["layers"]["attn"]["q"]
  assert q.dtype == jax.numpy.bfloat16 and len(q.sharding.device_set) == 8
  assert q.addressable_shards[0].data.size < q.size
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), one, eight)
  hf.save_hf_checkpoint(str(tmp_path / "out"), eight, cfg, max_shard_bytes=30_000)
  out = st.Checkpoint(str(tmp_path / "out"))
  assert out.names() == sorted(tensors)
  for name, want in tensors.items():
    assert out.get(name).dtype == want.dtype and out.get(name).tobytes() == want.tobytes(), name


def test_q_and_o_layouts_match_the_table(tmp_path):
  tensors = write_hf_model(str(tmp_path), "llama")
  cfg, _ = hf.read_hf_config(str(tmp_path))
  p = jax.device_get(hf.load_hf_params(str(tmp_path), cfg, _one()))["params"]
  q_hf = tensors["model.layers.1.self_attn.q_proj.weight"]  # [N*H, D]
  o_hf = tensors["model.layers.1.self_attn.o_proj.weight"]  # [D, N*H]
  n, h = cfg.n_heads, cfg.head_size
  # Head 3, dim 5 of the output row of q is row 3*h + 5 of q_proj.
  np.testing.assert_array_equal(p["layers"]["attn"]["q"][1][:, 3, 5], q_hf[3 * h + 5])
  np.testing.assert_array_equal(p["layers"]["attn"]["o"][1][3, 5], o_hf[:, 3 * h + 5])
  np.testing.assert_array_equal(p["layers"]["mlp_norm"]["scale"][0], tensors["model.layers.0.post_attention_layernorm.weight"])
  np.testing.assert_array_equal(p["unembed"]["kernel"], tensors["lm_head.weight"].T)
  assert n * h == q_hf.shape[0]


def test_gemma_norm_names(tmp_path):
  tensors = write_hf_model(str(tmp_path), "gemma2")
  cfg, _ = hf.read_hf_config(str(tmp_path))
  p = jax.device_get(hf.load_hf_params(str(tmp_path), cfg, _one()))["params"]["layers"]
  np.testing.assert_array_equal(p["post_attn_norm"]["scale"][1], tensors["model.layers.1.post_attention_layernorm.weight"])
  np.testing.assert_array_equal(p["mlp_norm"]["scale"][1], tensors["model.layers.1.pre_feedforward_layernorm.weight"])
  np.testing.assert_array_equal(p["post_mlp_norm"]["scale"][1], tensors["model.layers.1.post_feedforward_layernorm.weight"])


def test_largest_host_buffer_is_one_device_slice(tmp_path):
  big = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 4}
  tensors = write_hf_model(str(tmp_path), "llama", config_overrides=big)
  cfg, _ = hf.read_hf_config(str(tmp_path))
  stats = hf.LoadStats()
  params = hf.load_hf_params(str(tmp_path), cfg, _eight(), stats=stats)
  largest_tensor = max(v.nbytes for v in tensors.values())
  largest_shard = max(x.addressable_shards[0].data.nbytes for x in jax.tree_util.tree_leaves(params))
  assert stats.largest_buffer_bytes == largest_shard
  assert stats.largest_buffer_bytes <= largest_tensor // 4  # fsdp=4 x tensor=2 splits the embedding 8 ways.
  model_bytes = sum(v.nbytes for v in tensors.values())
  # Each byte built once: replicated slices (norms on 8 devices) are not rebuilt per device.
  assert stats.bytes_built < model_bytes * 1.01


def test_table_matches_the_model_tree_for_this_projects_architecture():
  for cfg in (ModelConfig(), ModelConfig(tie_embeddings=False, scalar_head=True)):
    mesh = _eight()
    ours = hf.abstract_hf_params(cfg, mesh)
    model = export.abstract_params(cfg, mesh)
    assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(model)
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(model)):
      assert (a.shape, a.dtype, a.sharding.spec) == (b.shape, b.dtype, b.sharding.spec)


def test_multimodal_gemma3_prefix_is_detected(tmp_path):
  tensors = write_hf_model(str(tmp_path / "t"), "gemma3_text")
  renamed = {k.replace("model.", "language_model.model.", 1): v for k, v in tensors.items()}
  renamed["vision_tower.vision_model.embeddings.patch_embedding.weight"] = np.zeros((2, 2), np.float32)
  st.save_checkpoint(str(tmp_path / "mm"), renamed)
  text = json.loads((tmp_path / "t" / "config.json").read_text())
  (tmp_path / "mm" / "config.json").write_text(json.dumps({"model_type": "gemma3", "text_config": text}))
  cfg, _ = hf.read_hf_config(str(tmp_path / "mm"))
  p = jax.device_get(hf.load_hf_params(str(tmp_path / "mm"), cfg, _one()))["params"]
  np.testing.assert_array_equal(p["embed"]["embedding"], tensors["model.embed_tokens.weight"])


def _edit(tmp_path, change):
  tensors = write_hf_model(str(tmp_path / "src"), "llama")
  change(tensors)
  st.save_checkpoint(str(tmp_path / "bad"), tensors)
  (tmp_path / "bad" / "config.json").write_text((tmp_path / "src" / "config.json").read_text())
  return str(tmp_path / "bad")


def _load(path):
  cfg, _ = hf.read_hf_config(path)
  return hf.load_hf_params(path, cfg, _one())


def test_shape_mismatch_names_file_tensor_and_shapes(tmp_path):
  path = _edit(tmp_path, lambda t: t.update({"model.layers.1.mlp.up_proj.weight": np.zeros((60, 32), np.float32)}))
  with pytest.raises(ValueError, match=r"model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight' has shape "
                                       r"\[60, 32\], but the config \(config.json\) implies \[64, 32\]"):
    _load(path)


def test_dtype_mismatch_names_file_and_tensor(tmp_path):
  path = _edit(tmp_path, lambda t: t.update({"model.norm.weight": np.zeros(32, np.int32)}))
  with pytest.raises(ValueError, match=r"model.safetensors: tensor 'model.norm.weight' has dtype int32, expected a floating"):
    _load(path)


def test_missing_tensor_names_it_and_the_files(tmp_path):
  path = _edit(tmp_path, lambda t: t.pop("model.layers.0.self_attn.k_proj.weight"))
  with pytest.raises(KeyError, match=r"'model.layers.0.self_attn.k_proj.weight' \(for layers/attn/k\) is missing.*"
                                     r"searched model.safetensors"):
    _load(path)


def test_unexpected_tensor_is_an_error_and_inv_freq_is_not(tmp_path):
  path = _edit(tmp_path, lambda t: t.update({"model.layers.0.self_attn.q_proj.bias": np.zeros(32, np.float32),
                                             "model.layers.0.self_attn.rotary_emb.inv_freq": np.zeros(4, np.float32)}))
  with pytest.raises(ValueError, match=r"1 tensors the config does not account for.*q_proj.bias"):
    _load(path)
  path = _edit(tmp_path, lambda t: t.update({"model.layers.0.self_attn.rotary_emb.inv_freq": np.zeros(4, np.float32)}))
  assert _load(path)["params"]["layers"]["attn"]["q"].shape[0] == 2


def test_pickle_only_directory_is_refused_on_load(tmp_path):
  write_hf_model(str(tmp_path), "llama")
  os.rename(tmp_path / "model.safetensors", tmp_path / "pytorch_model.bin")
  with pytest.raises(ValueError, match="(?s)pickle weights.*pytorch_model.bin.*safe_serialization=True"):
    _load(str(tmp_path))
