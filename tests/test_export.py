"""Export from one device, restore resharded on an 8-device mesh: same logits."""
import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import export
from ttc_jax.parallel import MeshConfig, make_mesh

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args, cwd=REPO):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)  # The training and export processes see one device.
  return subprocess.run([sys.executable, "-m", "ttc_jax.main", *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=600)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("exp")
  train = _main("--config=configs/policy.py:smoke", f"--workdir={workdir}", "--config.eval.num_problems=1",
                "--config.eval.samples_per_problem=1")
  assert train.returncode == 0, train.stderr[-3000:]
  result = _main("--config=configs/export.py", f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_export_directory_is_self_contained(exported):
  out = exported / "export" / "policy"
  assert sorted(os.listdir(out)) == ["manifest.json", "model_config.json", "params", "tokenizer.model"]
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["step"] == 20  # smoke trains 20 steps
  assert manifest["source_workdir"] == str(exported / "policy")
  summary = json.loads((exported / "policy" / "train_summary.json").read_text())
  assert manifest["param_count"] == summary["params"]
  assert manifest["git_commit"]


def test_restore_on_eight_devices_gives_same_logits(exported):
  out = str(exported / "export" / "policy")
  one = export.load_exported(out, make_mesh(MeshConfig(), jax.devices()[:1]))
  eight = export.load_exported(out, make_mesh(MeshConfig(data=2, fsdp=2, tensor=2), jax.devices()))
  embed = eight.params["params"]["embed"]["embedding"]
  assert len(embed.sharding.device_set) == 8 and embed.addressable_shards[0].data.size < embed.size
  chex.assert_trees_all_equal(jax.device_get(one.params), jax.device_get(eight.params))
  tokens = jnp.asarray([one.tokenizer.encode("Question: Start with 3. Add 4. What is the result?\n")])
  logits_one = one.model.apply(one.params, tokens).logits_BxTxV
  logits_eight = jax.jit(eight.model.apply)(eight.params, tokens).logits_BxTxV
  np.testing.assert_allclose(logits_eight, logits_one, atol=1e-5)


def test_incomplete_export_is_rejected(tmp_path):
  with pytest.raises(FileNotFoundError, match="manifest.json"):
    export.load_exported(str(tmp_path), make_mesh(MeshConfig(), jax.devices()[:1]))


def test_export_without_training_names_missing_file(tmp_path):
  result = _main("--config=configs/export.py", f"--workdir={tmp_path}")
  assert result.returncode != 0
  assert "model_config.json is missing" in result.stderr
