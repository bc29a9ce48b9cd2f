"""configs/experiments/math500.py:smoke end to end: an hf: policy and the Qwen2.5-Math-PRM-shaped
verifier on the MATH-500 fixture, through samples -> verifier accuracy -> difficulty -> search -> report."""
import json
import os
import shutil
import subprocess
import sys

from ttc_jax.testing.prm_goldens import GOLDEN_DIR
from ttc_jax.testing.tiny import load_config_module, load_file_module
from ttc_jax.testing.tiny_hf import write_hf_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRM = GOLDEN_DIR / "qwen_prm"
MATH500 = os.path.join(REPO, "tests", "data", "tasks", "math500", "test.jsonl")


def test_experiment_fields_reach_every_stage():
  module = load_file_module(os.path.join("configs", "experiments", "math500.py"), "math500")
  c = module.get_config("smoke")
  c.experiment.policy = "hf:/p"
  c.experiment.prm_format = "qwen_prm"
  stages = c.stages.to_dict()
  assert stages["samples_difficulty"]["sampling"]["policy"] == "hf:/p" == stages["search_eval"]["search_eval"]["policy"]
  assert stages["difficulty"]["difficulty"]["policy"] == "hf:/p"
  assert stages["verifier_eval"]["verifier_eval"]["orm_format"] == "qwen_prm"
  assert tuple(c.pipeline.only) == module.STAGES


def test_math500_smoke_experiment_runs_without_training(tmp_path):
  policy = tmp_path / "policy"
  vocab = json.loads((PRM / "config.json").read_text())["vocab_size"]
  write_hf_model(str(policy), "qwen2", config_overrides={"vocab_size": vocab})
  for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copyfile(PRM / name, policy / name)
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO}
  env.pop("XLA_FLAGS", None)
  args = [sys.executable, "-m", "ttc_jax.main", "--config=configs/experiments/math500.py:smoke",
          f"--workdir={tmp_path / 'w'}", f"--config.experiment.policy=hf:{policy}",
          f"--config.experiment.prm=hf:{PRM}", "--config.experiment.prm_format=qwen_prm",
          f"--config.experiment.data={MATH500}"]
  result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-5000:]
  w = tmp_path / "w"
  status = json.loads((w / "pipeline" / "status.json").read_text())["stages"]
  assert sorted(status) == sorted(["samples_difficulty", "verifier_eval", "difficulty", "search_eval", "report"])
  assert not (w / "policy").exists() and not (w / "prm").exists()  # Nothing trained.
  difficulty = json.loads((w / "difficulty" / "difficulty.json").read_text())
  assert difficulty["num_problems"] == 3 and "level" in difficulty  # MATH's levels give a third binning.
  search = json.loads((w / "eval" / "search" / "results.json").read_text())
  assert search["config"]["prm_format"] == "qwen_prm" and set(search["curves"]) == {"best_of_n", "beam:2"}
  report = (w / "report" / "report.md").read_text()
  assert "eval/revisions" in report or "revision" in report.lower()  # Says why the revision sections are absent.
