"""The pipeline job: the whole chain at smoke size, stopped and resumed, and its config errors."""
import json
import os

import ml_collections
import pytest

from ttc_jax.jobs import pipeline
from ttc_jax.testing.tiny import load_config_module


def _config(**pipeline_fields) -> ml_collections.ConfigDict:
  config = load_config_module("pipeline").get_config("smoke")
  config.pipeline.update(pipeline_fields)
  # The chain on one device: at smoke size, splitting every call over 8 fake devices on a couple of
  # cores only slows it; tests/test_eval_mesh.py checks that the jobs give the same over 8.
  config.mesh.num_devices = 1
  return config


def _status(workdir) -> dict:
  with open(os.path.join(workdir, "pipeline", "status.json")) as f:
    return json.load(f)["stages"]


def test_stopped_pipeline_resumes_and_a_finished_one_skips_everything(tmp_path):
  workdir = str(tmp_path)
  # A time limit of 1 s stops the chain before the second stage starts: like a run cut short.
  pipeline.run(_config(time_limit_s=1.0), workdir)
  assert list(_status(workdir)) == ["policy"]
  assert not os.path.exists(os.path.join(workdir, "large_policy"))

  pipeline.run(_config(), workdir)  # Goes on from the second stage.
  status = _status(workdir)
  assert list(status) == list(pipeline.STAGE_ORDER)
  with open(os.path.join(workdir, "report", "results.json")) as f:
    results = json.load(f)
  for key in ("config", "git_commit", "policy", "large_policy", "difficulty", "curves", "curves_by_bin",
              "compute_optimal", "efficiency", "flops_matched", "revisions"):
    assert key in results, key
  assert results["policy"]["params"] < results["large_policy"]["params"]
  assert results["policy"]["train_tokens"] == results["large_policy"]["train_tokens"]
  assert set(results["compute_optimal"]) >= {"oracle", "predicted", "predicted_with_cost"}
  assert os.path.exists(os.path.join(workdir, "report", "report.md"))
  # The reviser's first-attempt gate: train_reviser -> eval_revisions' results.json -> the report.
  check = results["revisions"]["reviser_check"]
  assert check["source"] == os.path.join(workdir, "reviser", "reviser_eval.json") and check["n"] == 12
  with open(os.path.join(workdir, "report", "report.md")) as f:
    warned = "**Warning: the reviser's first attempt" in f.read()
  assert warned == (check["gate"] in ("worse", "inconclusive"))
  assert any(name.endswith(".png") for name in os.listdir(os.path.join(workdir, "report")))

  # Every evaluation ran on the same test problems.
  assert results["num_problems"] == 8
  # The verifiers' within-question ranking, from eval_verifiers on the same samples, over the report's bins.
  ranking = results["verifier_ranking"]
  assert ranking["num_problems"] == 8 and set(ranking["verifiers"]) == {"orm", "prm_last", "prm_min", "prm_prod"}

  pipeline.run(_config(), workdir)  # Nothing left: every stage is skipped, the record is unchanged.
  assert _status(workdir) == status


def test_unknown_stage_in_only_is_named():
  with pytest.raises(ValueError, match="unknown stage 'polcy'"):
    pipeline.run(_config(only=("polcy",)), "/tmp/unused")


def test_a_stage_may_not_set_a_shared_section():
  config = _config()
  config.stages.prm.task = ml_collections.ConfigDict({"train_size": 5})
  with pytest.raises(ValueError, match="stages.prm.task: set the top-level `task`"):
    pipeline.stage_configs(config)


def test_missing_stage_is_named():
  config = _config()
  del config.stages["report"]
  with pytest.raises(ValueError, match=r"missing \['report'\]"):
    pipeline.stage_configs(config)


@pytest.mark.parametrize("arg", ["", "gpu", "smoke", "countdown", "countdown_gpu", "countdown_smoke"])
def test_every_pipeline_config_builds_valid_stage_configs(arg):
  config = load_config_module("pipeline").get_config(arg)
  stages = pipeline.stage_configs(config)
  # Same training tokens for both policies: the FLOPs-matched comparison depends on it.
  for field in ("steps", "batch_size", "seq_len"):
    assert stages["policy"].train[field] == stages["large_policy"].train[field]
  assert stages["large_policy"].eval.temperature == 0.0  # Greedy, as the paper compares.
  n = stages["search_eval"].search_eval.num_problems
  assert stages["revision_eval"].revision_eval.num_problems == n
  assert stages["samples_difficulty"].sampling.num_problems == n
  assert stages["samples_difficulty"].sampling.split == "test"
  assert stages["large_policy"].eval.num_problems == n
  # The countdown arguments change the task only; the arith ones keep arith.
  from ttc_jax.jobs import common
  spec, generator = common.parse_task(config.task)
  assert spec.name == ("countdown" if arg.startswith("countdown") else "arith")
  if arg.startswith("countdown"):
    plain = pipeline.stage_configs(load_config_module("pipeline").get_config(arg.removeprefix("countdown_")
                                                                             .removeprefix("countdown")))
    drop_task = lambda cs: {k: {f: x for f, x in v.to_dict().items() if f != "task"} for k, v in cs.items()}
    assert drop_task(stages) == drop_task(plain)  # The same sizes as the arith argument.
    assert generator.max_steps + 1 <= stages["search_eval"].search_eval.max_solution_tokens // \
        stages["search_eval"].search_eval.max_step_tokens
