"""A changed input re-makes what depends on it: artifacts and results record the identity of the models and
artifacts they were computed from, and one made from other inputs is moved aside (kept) and made again."""
import json
import os
import shutil

import pytest

from ttc_jax import export, shards
from ttc_jax.jobs import common, sample_solutions
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import export_tiny_model, load_config_module


def _run(out, inputs, calls, spec=None):
  def compute(i):
    calls.append(i)
    return [{"i": i, "inputs": inputs}]
  return shards.run_sharded(str(out), 2, compute, spec=spec or {"x": 1}, inputs=inputs)


def test_shards_made_from_other_inputs_are_moved_aside_and_made_again(tmp_path):
  out, calls = tmp_path / "art", []
  _run(out, {"policy": "a"}, calls)
  assert calls == [0, 1]
  _run(out, {"policy": "a"}, calls)  # Same inputs: finished, nothing computed.
  assert calls == [0, 1]
  _run(out, {"policy": "b"}, calls)
  assert calls == [0, 1, 0, 1]
  assert [r["inputs"] for r in shards.read_records(str(out))] == [{"policy": "b"}] * 2
  old = tmp_path / "art.stale-1"  # Kept, not deleted.
  assert [r["inputs"] for r in shards.read_records(str(old))] == [{"policy": "a"}] * 2
  with pytest.raises(ValueError, match="different spec"):  # Another config is still refused, not moved.
    _run(out, {"policy": "b"}, calls, spec={"x": 2})


def test_an_artifact_from_before_inputs_were_recorded_is_adopted(tmp_path):
  out, calls = tmp_path / "art", []
  shards.run_sharded(str(out), 1, lambda i: calls.append(i) or [{"i": i}], spec={"x": 1})
  _run_one = lambda: shards.run_sharded(str(out), 1, lambda i: calls.append(i) or [{"i": i}], spec={"x": 1},
                                        inputs={"policy": "a"})
  _run_one()
  assert calls == [0] and json.loads((out / "spec.json").read_text())["inputs"] == {"policy": "a"}


def test_a_result_from_other_inputs_is_moved_aside_with_its_cached_files(tmp_path):
  result, cache = tmp_path / "results.json", tmp_path / "scores.jsonl"
  assert not common.current_result(str(result), {"prm": "a"})
  result.write_text(json.dumps({"inputs": {"prm": "a"}}))
  cache.write_text("{}\n")
  assert common.current_result(str(result), {"prm": "a"})
  assert not common.current_result(str(result), {"prm": "b"}, str(cache))
  assert not result.exists() and not cache.exists()
  assert (tmp_path / "results.json.stale-1").exists() and (tmp_path / "scores.jsonl.stale-1").exists()
  result.write_text(json.dumps({"curves": {}}))  # Written before inputs were recorded: current.
  assert common.current_result(str(result), {"prm": "b"})


def test_model_identity_follows_the_weights_not_the_path(tmp_path):
  tok = load_tokenizer()
  export_tiny_model(str(tmp_path / "a"), tok, seed=0)
  export_tiny_model(str(tmp_path / "b"), tok, seed=0)
  export_tiny_model(str(tmp_path / "c"), tok, seed=1)
  ident = lambda name: export.model_identity(str(tmp_path / name))
  assert ident("a") == ident("b") != ident("c")
  stage = tmp_path / "stage"
  stage.mkdir()
  (stage / "model_config.json").write_text(json.dumps({"d_model": 8}))
  (stage / "train_summary.json").write_text(json.dumps({"model_fingerprint": "seed0"}))
  first = export.model_identity(str(stage))
  (stage / "train_summary.json").write_text(json.dumps({"model_fingerprint": "seed1"}))
  assert export.model_identity(str(stage)) != first
  hf_dir = tmp_path / "hf"
  hf_dir.mkdir()
  (hf_dir / "config.json").write_text(json.dumps({"model_type": "llama"}))
  (hf_dir / "model.safetensors").write_bytes(b"\0" * 100)
  before = export.model_identity(f"hf:{hf_dir}")
  (hf_dir / "model.safetensors").write_bytes(b"\0" * 99 + b"\1")
  assert export.model_identity(f"hf:{hf_dir}") != before


def test_samples_of_a_replaced_policy_are_made_again(tmp_path):
  """The issue's case: the policy is retrained (here: replaced by another seed's export at the same path) and the
  sampling job runs again; before, it reported the old policy's samples as finished."""
  tok = load_tokenizer()
  c = load_config_module("samples").get_config("smoke")
  c.sampling.update(policy=str(tmp_path / "policy"), num_problems=2, samples_per_problem=2, problems_per_shard=2)
  export_tiny_model(str(tmp_path / "policy"), tok, seed=0)
  sample_solutions.run(c, str(tmp_path))
  out = next(p for p in (tmp_path / "samples").iterdir() if (p / "manifest.json").exists())
  first = [s["text"] for r in shards.read_records(str(out)) for s in r["samples"]]
  sample_solutions.run(c, str(tmp_path))  # Same policy: kept.
  assert not os.path.exists(f"{out}.stale-1")
  shutil.rmtree(tmp_path / "policy")
  export_tiny_model(str(tmp_path / "policy"), tok, seed=1)
  sample_solutions.run(c, str(tmp_path))
  assert os.path.exists(f"{out}.stale-1")
  assert [s["text"] for r in shards.read_records(f"{out}.stale-1") for s in r["samples"]] == first
  assert shards.is_complete(str(out))


def test_one_writer_per_artifact(tmp_path):
  """Two jobs writing one artifact at once: the second is refused, naming the first; a dead one's lock is taken."""
  import socket
  import subprocess
  import sys

  from ttc_jax import locks
  out = tmp_path / "art"
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    (tmp_path / "art.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
    with pytest.raises(locks.LockError, match=rf"\({out}\) is in use by pid {holder.pid}"):
      _run(out, {"policy": "a"}, [])
  finally:
    holder.kill()
    holder.wait()
  calls = []
  _run(out, {"policy": "a"}, calls)  # The holder is gone: its lock is taken over, then released.
  assert calls == [0, 1] and not (tmp_path / "art.lock").exists()
