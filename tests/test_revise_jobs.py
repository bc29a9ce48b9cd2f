"""End to end on a smoke workdir: policy -> samples -> revision_data -> train_reviser -> chains on training
problems -> revision ORM (and re-runs skip)."""
import dataclasses
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import jax

from ttc_jax import export, shards
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.revise import dataset

REPO = pathlib.Path(__file__).resolve().parents[1]


def _main(workdir, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  result = subprocess.run([sys.executable, "-m", "ttc_jax.main", *args, f"--workdir={workdir}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-5000:]


def _reference(question: str) -> str:
  """The task's reference solution, recomputed from the question text."""
  value = int(re.match(r"Start with (\d+)\.", question).group(1))
  lines = []
  for verb, n in re.findall(r"(Add|Subtract|Multiply by) (\d+)\.", question):
    op = {"Add": "+", "Subtract": "-", "Multiply by": "*"}[verb]
    result = {"+": value + int(n), "-": value - int(n), "*": value * int(n)}[op]
    lines.append(f"{value} {op} {n} = {result}")
    value = result
  return "\n".join(lines + [f"The answer is {value}."])


def test_revision_data_and_reviser_smoke(tmp_path):
  _main(tmp_path, "--config=configs/policy.py:smoke")
  _main(tmp_path, "--config=configs/samples.py:smoke", "--config.sampling.samples_per_problem=4")
  records = shards.read_records(str(tmp_path / "samples" / "train"))
  # The 20-step smoke policy solves nothing: add each problem's reference solution as a correct
  # sample (drop it from a third of the problems, which then have no correct sample).
  for i, r in enumerate(records):
    assert _reference(r["question"]).endswith(f"The answer is {r['answer']}.")
    if i % 3:
      r["samples"].append({"text": _reference(r["question"]), "steps": [], "extracted": r["answer"], "correct": True,
                           "num_tokens": 0, "stop_reason": 1})
  shards.run_sharded(str(tmp_path / "samples" / "mixed"), 3, lambda i: records[4 * i:4 * i + 4], spec={})

  _main(tmp_path, "--config=configs/revision_data.py:smoke", "--config.revision.samples=samples/mixed")
  data_dir = tmp_path / "revisions" / "data"
  manifest = json.loads((data_dir / "manifest.json").read_text())
  trajs = shards.read_records(str(data_dir))
  assert manifest["num_shards"] == 3 and manifest["num_problems"] == 12
  assert manifest["problems_without_correct"] == 4 and manifest["problems_without_incorrect"] == 0
  assert manifest["num_trajectories"] == len(trajs) == 8 * 3  # 8 problems x per_correct=3
  assert sum(manifest["trajectories_by_k"].values()) == len(trajs)
  assert manifest["trajectories_by_k"]["0"] == 8 and manifest["first_attempt_fraction"] == 1 / 3  # one per target
  assert all(t["target"] == _reference(t["question"]) and t["target"] not in t["previous"] for t in trajs)
  # The dataset train_reviser reads: the shards' trajectories in their order, with prompt and text.
  info = json.loads((data_dir / dataset.INFO).read_text())
  assert info["num_records"] == len(trajs) and info["trajectories_by_k"] == manifest["trajectories_by_k"]
  assert dataset.read_trajectories(str(data_dir)) == [dataset.to_record(t) for t in trajs]

  _main(tmp_path, "--config=configs/reviser.py:smoke")
  stage = tmp_path / "reviser"
  summary = json.loads((stage / "train_summary.json").read_text())
  held = [t for t in trajs if t["problem_id"] == trajs[-1]["problem_id"]]  # ceil(0.1 x 8 problems) = the last one
  assert summary["heldout_problems"] == 1 and summary["heldout_trajectories"] == len(held) == 3
  assert summary["examples"] + summary["skipped"] == len(trajs) - len(held) == 21
  # One epoch of 21 examples in batches of 8 is 3 steps, under train.steps=6.
  assert summary["steps"] == 3 and summary["configured_steps"] == 6 and summary["examples"] == 21
  assert summary["epochs"] == 3 * 8 / 21 and summary["train"]["warmup_steps"] == 1
  assert summary["examples"] > 0 and summary["target_tokens"] > 0
  evaluation = json.loads((stage / "reviser_eval.json").read_text())
  assert evaluation["step"] == 3 and evaluation["git_commit"] and evaluation["heldout_problems"] == 1
  assert evaluation["examples"] + evaluation["skipped"] == 3 and evaluation["train_problems"] == 7
  assert math.isfinite(evaluation["reviser"]["loss"]) and math.isfinite(evaluation["policy"]["loss"])
  assert evaluation["reviser"]["loss"] != evaluation["policy"]["loss"]  # Three steps moved the reviser.
  first = evaluation["first_attempt"]  # The gate: first attempts on 12 validation problems x 2, both models.
  assert first["split"] == "validation" and first["problems"] == first["n"] == 12 and first["samples_per_problem"] == 2
  assert first["pass1"]["policy"].keys() == first["pass1"]["reviser"].keys() and len(first["pass1"]["policy"]) == 12
  assert first["low"] <= first["difference"] <= first["high"] and first["gate"] in ("worse", "better", "not worse",
                                                                                      "inconclusive")
  assert sum(r["examples"] for r in evaluation["by_k"].values()) == evaluation["examples"]
  assert all({"reviser", "policy", "targets"} <= r.keys() for r in evaluation["by_k"].values())
  metrics = [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines()]
  assert [m["step"] for m in metrics] == [3]
  reviser_cfg = export.read_model_config(str(stage / "model_config.json"))
  policy_cfg = export.read_model_config(str(tmp_path / "policy" / "model_config.json"))
  assert dataclasses.replace(reviser_cfg, max_len=policy_cfg.max_len) == policy_cfg  # the policy's network
  reviser = export.load_model(str(stage), make_mesh(MeshConfig(data=1), devices=jax.devices()[:1]))
  assert reviser.manifest.get("step") == 3

  # The revision ORM: the reviser's chains on other training problems, then the ORM from the reviser.
  _main(tmp_path, "--config=configs/revision_eval.py:train_smoke")
  chains = shards.read_records(str(tmp_path / "revisions" / "chains_train" / "P1xL4"))
  assert len(chains) == 4 and not {r["problem_id"] for r in chains} & {r["problem_id"] for r in records}
  check = json.loads((tmp_path / "revisions" / "chains_train" / "results.json").read_text())["reviser_check"]
  assert check["source"] == str(stage / "reviser_eval.json") and check["gate"] == first["gate"]  # eval_revisions read it
  _main(tmp_path, "--config=configs/revision_orm.py:smoke")
  orm_summary = json.loads((tmp_path / "revision_orm" / "train_summary.json").read_text())
  assert orm_summary["kind"] == "revision_orm" and orm_summary["policy"] == str(stage)
  assert (tmp_path / "revision_orm" / "verifier_eval.json").exists()

  mtimes = {p: p.stat().st_mtime_ns for p in (data_dir / "manifest.json", data_dir / dataset.FILENAME,
                                               data_dir / dataset.INFO, stage / "train_summary.json",
                                               stage / "reviser_eval.json")}
  _main(tmp_path, "--config=configs/revision_data.py:smoke", "--config.revision.samples=samples/mixed")
  _main(tmp_path, "--config=configs/reviser.py:smoke")
  assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # finished work is skipped
