"""Sharded resumable artifacts, and the sampling job killed mid-run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ttc_jax import shards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_sharded_computes_only_missing_shards(tmp_path):
  calls = []

  def compute(i):
    calls.append(i)
    return [{"shard": i, "k": k} for k in range(2)]

  out = str(tmp_path / "a")
  os.makedirs(out)
  # A finished shard from an earlier run, and the temp file of an interrupted one.
  with open(shards.shard_path(out, 1, 3), "w") as f:
    f.write(json.dumps({"shard": 1, "k": "old"}) + "\n")
  with open(shards.shard_path(out, 2, 3) + ".tmp-123", "w") as f:
    f.write('{"half": ')
  with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
    shards.read_records(out)
  manifest = shards.run_sharded(out, 3, compute, spec={"x": 1}, summarize=lambda rs: {"n": len(rs)})
  assert calls == [0, 2]
  assert manifest["num_records"] == 5 and manifest["n"] == 5
  records = shards.read_records(out)
  assert [r["shard"] for r in records] == [0, 0, 1, 2, 2]
  # Complete: a re-run computes nothing.
  shards.run_sharded(out, 3, compute, spec={"x": 1})
  assert calls == [0, 2]


def test_resuming_with_another_spec_is_refused(tmp_path):
  out = str(tmp_path)
  shards.run_sharded(out, 2, lambda i: [{"i": i}], spec={"temperature": 1.0, "seed": 0})
  with pytest.raises(ValueError, match=r"\['temperature'\]"):
    shards.run_sharded(out, 2, lambda i: [{"i": i}], spec={"temperature": 0.5, "seed": 0})


def _main(*args, **kwargs):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  return subprocess.Popen([sys.executable, "-m", "ttc_jax.main", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_sampling_job_killed_mid_run_resumes_to_the_same_result(tmp_path):
  base = tmp_path / "base"
  policy = _main("--config=configs/policy.py:smoke", f"--workdir={base}", "--config.eval.num_problems=1")
  assert policy.wait(timeout=300) == 0, policy.stderr.read()[-3000:]
  killed_dir = tmp_path / "killed"
  shutil.copytree(base, killed_dir)
  sample_args = ["--config=configs/samples.py:smoke", "--config.sampling.problems_per_shard=1"]

  straight = _main(*sample_args, f"--workdir={base}")
  assert straight.wait(timeout=300) == 0, straight.stderr.read()[-3000:]

  proc = _main(*sample_args, f"--workdir={killed_dir}")
  out = killed_dir / "samples" / "train"
  deadline = time.time() + 300
  while not (out / "shard-00001-of-00012.jsonl").exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -9, "the sampling job finished before it could be killed"
  assert not (out / "manifest.json").exists()
  done = [f for f in os.listdir(out) if f.endswith(".jsonl")]
  assert 2 <= len(done) < 12

  resumed = _main(*sample_args, f"--workdir={killed_dir}")
  assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-3000:]
  assert "resuming" in resumed.stderr.read()
  assert shards.read_records(str(out)) == shards.read_records(str(base / "samples" / "train"))
