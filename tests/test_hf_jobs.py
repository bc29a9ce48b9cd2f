"""import_hf / export_hf end to end through ttc_jax.main, hf: references, tokenizers, transformers parity."""
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from ttc_jax import export, model_refs
from ttc_jax.models.hf import safetensors_io as st
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.tasks.tokenizer import shipped_model_path
from ttc_jax.testing.tiny_hf import write_hf_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO}
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, "-m", "ttc_jax.main", *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("hf") / "tiny-llama"
  tensors = write_hf_model(str(d), "llama", dtype="bfloat16", max_shard_bytes=30_000,
                           config_overrides={"vocab_size": 192})  # The shipped tokenizer's size.
  shutil.copyfile(shipped_model_path(), d / "tokenizer.model")
  return d, tensors


def test_import_then_export_is_byte_identical(hf_dir, tmp_path):
  src, tensors = hf_dir
  result = _main("--config=configs/import_hf.py", f"--workdir={tmp_path}", f"--config.import_hf.source=hf:{src}")
  assert result.returncode == 0, result.stderr[-3000:]
  exported = tmp_path / "export" / "tiny-llama"
  manifest = json.loads((exported / "manifest.json").read_text())
  assert manifest["hf_model_type"] == "llama" and manifest["hf_source"] == str(src)
  assert sorted(os.listdir(exported)) == ["manifest.json", "model_config.json", "params", "tokenizer.model"]
  assert json.loads((exported / "model_config.json").read_text())["param_dtype"] == "bfloat16"
  result = _main("--config=configs/export_hf.py", f"--workdir={tmp_path}", "--config.export_hf.source=export/tiny-llama",
                 "--config.export_hf.max_shard_gb=0.00003")
  assert result.returncode == 0, result.stderr[-3000:]
  out = tmp_path / "hf" / "tiny-llama"
  ckpt = st.Checkpoint(str(out))
  assert len(ckpt.files) >= 2 and ckpt.names() == sorted(tensors)
  for name, want in tensors.items():
    assert ckpt.get(name).tobytes() == want.tobytes(), name
  assert json.loads((out / "config.json").read_text())["model_type"] == "llama"
  assert os.path.exists(out / "tokenizer.model") and os.path.exists(out / "generation_config.json")


def test_hf_reference_loads_through_load_model(hf_dir, tmp_path):
  src, tensors = hf_dir
  ref = model_refs.resolve(str(tmp_path), f"hf:{src}")
  assert ref == f"hf:{src}"
  assert model_refs.resolve("/w", "hf:models/x") == "hf:/w/models/x"
  loaded = export.load_model(ref, make_mesh(MeshConfig(), jax.devices()[:1]))
  assert loaded.manifest["hf_model_type"] == "llama" and loaded.tokenizer.vocab_size == 192
  np.testing.assert_array_equal(np.asarray(loaded.params["params"]["embed"]["embedding"]),
                                tensors["model.embed_tokens.weight"])


def test_tokenizer_missing_or_unreadable_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="tokenizer missing: .* neither tokenizer.json nor tokenizer.model"):
    export.tokenizer_in(str(tmp_path))
  (tmp_path / "tokenizer.json").write_text("{}")
  with pytest.raises(ValueError, match=r"tokenizer\.json: not a tokenizers JSON file"):
    export.tokenizer_in(str(tmp_path))


def test_import_without_tokenizer_fails_naming_it(tmp_path):
  write_hf_model(str(tmp_path / "m"), "qwen2")
  result = _main("--config=configs/import_hf.py", f"--workdir={tmp_path}", f"--config.import_hf.source={tmp_path / 'm'}")
  assert result.returncode != 0 and "tokenizer missing" in result.stderr


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3_text"])
def test_transformers_loads_our_export_with_the_same_tensors(tmp_path, family):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from ttc_jax.models import hf
  tensors = write_hf_model(str(tmp_path / "in"), family)
  cfg, text = hf.read_hf_config(str(tmp_path / "in"))
  params = hf.load_hf_params(str(tmp_path / "in"), cfg, make_mesh(MeshConfig(), jax.devices()[:1]))
  hf.save_hf_checkpoint(str(tmp_path / "out"), params, cfg, model_type=text["model_type"])
  model = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
  state = model.state_dict()
  for name, want in tensors.items():
    np.testing.assert_array_equal(state[name].to(torch.float32).numpy(), want, err_msg=name)


def test_prm_trains_from_an_hf_policy(hf_dir, tmp_path):
  """verifier.policy=hf:DIR: config, tokenizer and initial weights come from the HF directory."""
  from ttc_jax import shards
  src, _ = hf_dir
  steps = ["7 + 5 = 12", "12 * 3 = 36", "The answer is 36."]
  records = [{"problem_id": f"p{i}", "question": "Start with 7. Add 5. Multiply by 3. What is the result?",
              "answer": "36", "num_steps": 2, "max_operand": 9, "ops": "+*",
              "samples": [{"steps": steps, "correct": True, "step_labels": [1.0, 1.0, 1.0]},
                          {"steps": steps[1:], "correct": False, "step_labels": [0.5, 0.0]}]} for i in range(10)]
  shards.run_sharded(str(tmp_path / "labels" / "train"), 2, lambda i: records[i * 5:(i + 1) * 5], spec={})
  result = _main("--config=configs/prm.py:smoke", f"--workdir={tmp_path}", f"--config.verifier.policy=hf:{src}")
  assert result.returncode == 0, result.stderr[-5000:]
  assert f"Initialised from the policy at hf:{src}" in result.stderr
  stage = tmp_path / "prm"
  assert {"tokenizer.model", "model_config.json", "checkpoints"} <= set(os.listdir(stage))
  cfg = export.read_model_config(str(stage / "model_config.json"))
  hf_cfg = export.model_config_of(f"hf:{src}", "test")
  assert cfg.scalar_head and not cfg.lm_head and cfg.rope_scaling == hf_cfg.rope_scaling == "llama3"
  assert (cfg.d_model, cfg.n_layers, cfg.vocab_size) == (hf_cfg.d_model, hf_cfg.n_layers, hf_cfg.vocab_size)
  prm = export.load_model(str(stage), make_mesh(MeshConfig(), jax.devices()[:1]))
  assert prm.tokenizer.vocab_size == 192


def test_model_config_of_names_the_field(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"verifier.policy='x': .*\(no model_config.json\).*; run it first"):
    export.model_config_of(str(tmp_path), "verifier.policy='x'", "run it first")
