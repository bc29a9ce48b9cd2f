"""No silent stale or partial results (issue 17): each test injects one fault and checks it is caught.

Truncated or edited shards, a retrained model under an old evaluation, a deleted stage output, a
moved workdir, invalid JSON files, `pipeline.only`, an empty problem selection, and a pathological
answer graded off the main thread. Fast: fake jobs and fake training where the real ones are slow.
"""
import json
import os
import shutil
import threading
import time
import types

import ml_collections
import pytest

from ttc_jax import export, shards
from ttc_jax.jobs import common, pipeline
from ttc_jax.provenance import CorruptFileError, read_json, read_jsonl
from ttc_jax.testing.tiny import load_config_module


def _write_artifact(out_dir, num_shards=2, per_shard=3, job="the sample_solutions job (configs/samples.py)",
                    spec=None, workdir=None):
  calls = []

  def compute(i):
    calls.append(i)
    return [{"problem_id": f"p{i}-{k}", "samples": []} for k in range(per_shard)]

  manifest = shards.run_sharded(str(out_dir), num_shards, compute, spec=spec or {"x": 1}, job=job,
                                workdir=workdir)
  return manifest, calls


def _drop_last_line(path):
  with open(path) as f:
    lines = f.readlines()
  with open(path, "w") as f:
    f.writelines(lines[:-1])


# Row 2: a shard one record short is an error naming the file and the job, and that job remakes it.
def test_truncated_shard_is_an_error_naming_file_and_job(tmp_path):
  out = tmp_path / "samples" / "train"
  manifest, _ = _write_artifact(out)
  assert [s["num_records"] for s in manifest["shards"]] == [3, 3]
  shard = shards.shard_path(str(out), 1, 2)
  _drop_last_line(shard)
  assert not shards.is_complete(str(out))
  with pytest.raises(ValueError, match=rf"{shard}: holds 2 records, the manifest says 3.*sample_solutions"):
    shards.read_records(str(out))
  with pytest.raises(ValueError, match=r"labels\.samples=.*shard-00001-of-00002"):
    shards.require_complete(str(out), "labels.samples='samples/train'", "sample_solutions")

  # Same record count, other content: the digest catches it.
  _, calls = _write_artifact(out)  # Re-running the job remakes only the damaged shard.
  assert calls == [1] and os.path.exists(shard + ".damaged")
  assert len(shards.read_records(str(out))) == 6
  with open(shard) as f:
    lines = f.readlines()
  with open(shard, "w") as f:
    f.writelines([lines[0].replace("p1-0", "p1-9")] + lines[1:])
  with pytest.raises(ValueError, match="differs from the manifest's digest"):
    shards.read_records(str(out))


def test_label_and_prm_jobs_refuse_a_truncated_input(tmp_path):
  # The labels job on a truncated samples shard, and the PRM on a truncated labels shard, fail before
  # loading any model, naming the shard and the job that remakes it (they used to run on one problem fewer).
  samples = tmp_path / "samples" / "train"
  _write_artifact(samples)
  _drop_last_line(shards.shard_path(str(samples), 0, 2))
  config = load_config_module("labels").get_config("smoke")
  with pytest.raises(ValueError, match=r"shard-00000-of-00002.*sample_solutions"):
    pipeline.get_job("label_rollouts")(config, str(tmp_path))

  labels = tmp_path / "labels" / "train"
  _write_artifact(labels, job="the label_rollouts job (configs/labels.py)")
  _drop_last_line(shards.shard_path(str(labels), 1, 2))
  config = load_config_module("prm").get_config("smoke")
  with pytest.raises(ValueError, match=r"shard-00001-of-00002.*label_rollouts"):
    pipeline.get_job("train_verifier")(config, str(tmp_path))


# Row 3: an evaluation is keyed to the model it evaluated.
def test_retrained_policy_is_evaluated_again(tmp_path, monkeypatch):
  from ttc_jax.jobs import train_policy

  evaluated = []
  monkeypatch.setattr(train_policy, "train", lambda **kw: types.SimpleNamespace(params=None))
  monkeypatch.setattr(train_policy.grain_pipeline, "make_train_iterator", lambda *a, **kw: None)

  def fake_eval(model, params, tokenizer, task, cfg, rng):
    evaluated.append(model.cfg.d_model)
    return {"config": {f.name: getattr(cfg, f.name) for f in cfg.__dataclass_fields__.values()}}

  monkeypatch.setattr(train_policy, "evaluate_policy", fake_eval)
  monkeypatch.setattr(train_policy, "log_summary", lambda *a: None)
  config = load_config_module("policy").get_config("smoke")
  train_policy.run(config, str(tmp_path))
  train_policy.run(config, str(tmp_path))
  assert evaluated == [32]  # The same model: the evaluation is reused.
  config.seed += 1
  train_policy.run(config, str(tmp_path))
  config.model.d_model = 48
  train_policy.run(config, str(tmp_path))
  assert evaluated == [32, 32, 48]
  assert read_json(str(tmp_path / "policy" / "eval.json"))["model_fingerprint"]

  old = {"step": 20, "config": {}}  # An eval.json from before fingerprints: not trusted.
  path = str(tmp_path / "eval.json")
  with open(path, "w") as f:
    json.dump(old, f)
  assert not common.is_current(path, 20, "abc")


# Rows 4 and 11: the pipeline re-makes a deleted stage output, and says what a partial run left.
def _pipeline_with_fake_jobs(monkeypatch, workdir):
  config = load_config_module("pipeline").get_config("smoke")
  stages = pipeline.stage_configs(config)
  by_hash = {pipeline.config_hash(c): name for name, c in stages.items()}
  assert len(by_hash) == len(pipeline.STAGE_ORDER)
  ran = []

  def fake_job(stage, workdir):
    name = by_hash[pipeline.config_hash(stage)]
    ran.append(name)
    out = os.path.join(workdir, "report" if name == "report" else name)
    os.makedirs(out, exist_ok=True)
    if name == "samples_train":  # A sharded artifact, checked by its manifest.
      _write_artifact(out)
    with open(os.path.join(out, "report.md" if name == "report" else "result.json"), "w") as f:
      f.write("{}")

  monkeypatch.setattr(pipeline, "get_job", lambda job: fake_job)
  return config, ran


def test_pipeline_remakes_a_deleted_or_damaged_stage_output(tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path)
  config, ran = _pipeline_with_fake_jobs(monkeypatch, workdir)
  pipeline.run(config, workdir)
  assert ran == list(pipeline.STAGE_ORDER)
  assert "Report: " in capsys.readouterr().out
  ran.clear()
  pipeline.run(config, workdir)
  assert ran == []

  shutil.rmtree(tmp_path / "prm")
  pipeline.run(config, workdir)
  order = list(pipeline.STAGE_ORDER)
  assert ran == order[order.index("prm"):] and (tmp_path / "prm" / "result.json").exists()

  ran.clear()
  _drop_last_line(shards.shard_path(str(tmp_path / "samples_train"), 0, 2))
  pipeline.run(config, workdir)
  assert ran == order[order.index("samples_train"):]


def test_pipeline_only_says_what_exists(tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path)
  config, ran = _pipeline_with_fake_jobs(monkeypatch, workdir)
  config.pipeline.only = ("policy",)
  pipeline.run(config, workdir)
  out = capsys.readouterr().out
  assert ran == ["policy"]
  assert "Report:" not in out and "no report yet" in out
  assert os.path.join(workdir, "policy") in out


# Row 8: a moved workdir resumes its shards.
def test_moved_workdir_resumes(tmp_path):
  first, moved = tmp_path / "a", tmp_path / "b"
  out = first / "samples" / "train"
  spec = {"policy": str(first / "policy"), "nested": {"prm": "hf:" + str(first / "prm")}, "other": "/elsewhere"}
  _write_artifact(out, spec=spec, workdir=str(first))
  assert read_json(str(out / "spec.json")) == {"policy": "policy", "nested": {"prm": "hf:prm"}, "other": "/elsewhere"}
  os.remove(out / "manifest.json")
  os.remove(shards.shard_path(str(out), 1, 2))  # Half-finished.
  shutil.move(str(first), str(moved))
  spec = {"policy": str(moved / "policy"), "nested": {"prm": "hf:" + str(moved / "prm")}, "other": "/elsewhere"}
  _, calls = _write_artifact(moved / "samples" / "train", spec=spec, workdir=str(moved))
  assert calls == [1]

  # A spec.json written before specs were portable (absolute paths) still resumes.
  legacy = tmp_path / "legacy"
  os.makedirs(legacy)
  with open(legacy / "spec.json", "w") as f:
    json.dump({"policy": "/old/place/policy", "seed": 0}, f)
  _write_artifact(legacy, spec={"policy": str(tmp_path / "policy"), "seed": 0}, workdir=str(tmp_path))
  # A real change is refused, without advising to throw the finished shards away.
  with pytest.raises(ValueError, match=r"seed: 0 -> 1.*throws the finished shards away"):
    _write_artifact(legacy, spec={"policy": str(tmp_path / "policy"), "seed": 1}, workdir=str(tmp_path))


# Row 9: every JSON read names the file (and the line), and a torn last metrics line is dropped.
def test_invalid_json_files_are_named(tmp_path):
  path = tmp_path / "x.json"
  path.write_text('{"step": 3, "lo')
  with pytest.raises(CorruptFileError, match=rf"{path}: invalid JSON"):
    read_json(str(path))
  lines = tmp_path / "x.jsonl"
  lines.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
  with pytest.raises(CorruptFileError, match=rf"{lines}:2: invalid JSON line"):
    read_jsonl(str(lines))

  out = tmp_path / "art"
  _write_artifact(out)
  (out / "spec.json").write_text('{"x": ')
  with pytest.raises(CorruptFileError, match=r"spec\.json: invalid JSON"):
    _write_artifact(out)
  (out / "manifest.json").write_text("")
  with pytest.raises(CorruptFileError, match=r"manifest\.json: invalid JSON"):
    shards.read_records(str(out))

  (tmp_path / "model_config.json").write_text('{"d_model": 3')
  with pytest.raises(CorruptFileError, match=r"model_config\.json: invalid JSON"):
    export.read_model_config(str(tmp_path / "model_config.json"))
  os.makedirs(tmp_path / "pipeline")
  (tmp_path / "pipeline" / "status.json").write_text('{"stages": {')
  with pytest.raises(CorruptFileError, match=r"status\.json: invalid JSON.*delete it"):
    pipeline.read_status(str(tmp_path / "pipeline" / "status.json"))


def test_torn_metrics_line_is_dropped_on_resume(tmp_path):
  from ttc_jax.train.metrics import MetricsWriter

  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 5, "loss": 2.0}\n{"step": 10, "loss": 1.5}\n{"step": 15, "lo')
  MetricsWriter(str(tmp_path), resume_step=10, total_steps=20, tensorboard=False).close()
  assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [5, 10]
  path.write_text('{"step": 5, "lo\n{"step": 10, "loss": 1.5}\n')  # Damage before the end is not a tear.
  with pytest.raises(CorruptFileError, match=rf"{path}:1"):
    MetricsWriter(str(tmp_path), resume_step=10, total_steps=20, tensorboard=False)


# Row 12: an empty selection is a config error naming the field.
def test_zero_problems_is_a_config_error(tmp_path):
  from ttc_jax.jobs.evaluate_policy import PolicyEvalConfig
  from ttc_jax.jobs.sample_solutions import SampleJobConfig

  config = load_config_module("samples").get_config("smoke")
  config.sampling.num_problems = 0
  with pytest.raises(ValueError, match=r"sampling\.num_problems=0"):
    pipeline.get_job("sample_solutions")(config, str(tmp_path))
  assert not (tmp_path / "samples").exists()
  with pytest.raises(ValueError, match=r"eval\.num_problems=0"):
    PolicyEvalConfig(num_problems=0)
  assert SampleJobConfig(num_problems=-1).num_problems == -1
  with pytest.raises(ValueError, match="sampling.split='test'"):
    common.require_problems([], "sampling.split='test'", "test")
  with pytest.raises(ValueError, match="nothing to compute"):
    shards.run_sharded(str(tmp_path / "empty"), 0, lambda i: [], spec={})


# Row 13: a pathological answer graded off the main thread times out.
def test_math_verify_times_out_off_the_main_thread():
  from ttc_jax.tasks.grading import MathVerifyGrader

  grader = MathVerifyGrader(timeout_seconds=1)
  results = {}

  def grade():
    results["ok"] = grader.is_correct("so $\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}")  # Starts the helper.
    start = time.time()
    results["huge"] = grader.is_correct("\\boxed{" + "1+" * 500_000 + "1}", "3")  # 1 MB: minutes untimed.
    results["huge_s"] = time.time() - start
    results["after"] = grader.extract_answer("so $\\boxed{7}$")

  thread = threading.Thread(target=grade, daemon=True)
  thread.start()
  thread.join(timeout=120)
  assert not thread.is_alive(), "grading a 1 MB answer off the main thread did not time out"
  assert results["ok"] is True and results["huge"] is False and results["after"] == "7"
  assert results["huge_s"] < 30


def test_stuck_math_verify_helper_is_killed_and_replaced():
  # A call stuck where math_verify's own timeout cannot reach (here: the helper stopped) is cut off at
  # 3 x timeout + 2 s, graded as no answer, and the next call gets a fresh helper.
  import signal

  from ttc_jax.tasks import math_verify_worker
  from ttc_jax.tasks.grading import MathVerifyGrader

  grader = MathVerifyGrader(timeout_seconds=1)
  results = {}

  def grade():
    results["first"] = grader.extract_answer("so $\\boxed{7}$")
    stuck = math_verify_worker._local.worker
    os.kill(stuck.proc.pid, signal.SIGSTOP)
    start = time.time()
    results["stuck"] = grader.extract_answer("so $\\boxed{8}$")
    results["stuck_s"] = time.time() - start
    results["killed"] = stuck.proc.poll() is not None
    results["again"] = grader.extract_answer("so $\\boxed{9}$")

  thread = threading.Thread(target=grade, daemon=True)
  thread.start()
  thread.join(timeout=120)
  assert not thread.is_alive()
  assert results["first"] == "7" and results["stuck"] is None and results["again"] == "9"
  assert results["killed"] and 4.5 < results["stuck_s"] < 30
