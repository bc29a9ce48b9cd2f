"""End to end: `configs/policy.py:smoke` trains, evaluates, writes its outputs, and a re-run skips the work."""
import glob
import json
import math
import os
import pathlib
import subprocess
import sys
import time

from ttc_jax.models import ModelConfig
from ttc_jax.models.flops import count_params
from ttc_jax.tasks.tokenizer import load_tokenizer

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_smoke(workdir):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  start = time.time()
  result = subprocess.run([sys.executable, "-m", "ttc_jax.main", "--config=configs/policy.py:smoke",
                           f"--workdir={workdir}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-5000:]
  return time.time() - start


def _read_bytes(stage, names):
  return {n: (stage / n).read_bytes() for n in names}


def test_smoke_policy_run_and_rerun(tmp_path):
  # One test, not several sharing a fixture: pytest-xdist would run the job once per worker.
  first_wall = run_smoke(tmp_path)
  stage = tmp_path / "policy"

  metrics = [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines()]
  assert [m["step"] for m in metrics] == [5, 10, 15, 20]  # log_every=5, steps=20.
  assert all(math.isfinite(m["loss"]) and m["loss"] > 0 for m in metrics)
  assert metrics[-1]["loss"] < metrics[0]["loss"]  # It learns something in 20 steps.

  events = glob.glob(str(stage / "tensorboard" / "events.out.tfevents.*"))
  assert events and all(os.path.getsize(e) > 0 for e in events)

  model_cfg = ModelConfig(**json.loads((stage / "model_config.json").read_text()))
  assert model_cfg.vocab_size == load_tokenizer().vocab_size and model_cfg.d_model == 32

  summary = json.loads((stage / "train_summary.json").read_text())
  assert summary["params"] == count_params(model_cfg)
  assert summary["train_tokens"] == 20 * 8 * 128  # steps * batch_size * seq_len of smoke.

  result = json.loads((stage / "eval.json").read_text())
  assert 0.0 <= result["summary"]["mean_pass1"] <= 1.0
  assert result["summary"]["num_problems"] == 8 and result["step"] == 20
  problems = result["problems"]
  assert len(problems) == 8 and len({p["id"] for p in problems}) == 8
  assert all(0.0 <= p["pass1"] <= 1.0 and 0 < p["mean_tokens"] <= 48 for p in problems)
  mean = sum(p["pass1"] for p in problems) / len(problems)
  assert math.isclose(result["summary"]["mean_pass1"], mean, abs_tol=1e-9)

  # Finished work is skipped: no new training, no new evaluation.
  kept = ["eval.json", "metrics.jsonl"]
  before = _read_bytes(stage, kept)
  # Bytes alone would not show a skip: a deterministic re-evaluation writes the same file.
  mtimes = {n: (stage / n).stat().st_mtime_ns for n in kept}
  checkpoints = sorted(os.listdir(stage / "checkpoints"))
  second_wall = run_smoke(tmp_path)
  assert _read_bytes(stage, kept) == before
  assert {n: (stage / n).stat().st_mtime_ns for n in kept} == mtimes
  assert sorted(os.listdir(stage / "checkpoints")) == checkpoints
  assert second_wall < first_wall
