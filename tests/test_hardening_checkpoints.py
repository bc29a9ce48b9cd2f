"""Issue 17: no hangs, no silent stale or partial results (checkpoints, stage lock, config edge).

Faults are injected (tests may run as root, where chmod stops nothing): a folder that refuses
writes (`testing/faults.py`), a commit that fails in Orbax's background thread, a damaged step.
"""
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest

from ttc_jax.jobs import common, train_policy
from ttc_jax.models import Transformer
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing import faults
from ttc_jax.testing.tiny import grain_lm_iterator, load_config_module, random_lm_batches, tiny_model_config
from ttc_jax.train import TrainConfig, checkpoint_dir, next_token_loss, stage, train
from ttc_jax.train.checkpoint import Checkpointer, CheckpointError, restore_params

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(workdir, steps=4, on_step_end=None, **overrides):
  cfg = tiny_model_config()
  model = Transformer(cfg)
  train_cfg = TrainConfig(**{**dict(steps=steps, batch_size=8, seq_len=17, warmup_steps=1, checkpoint_every=2,
                                    log_every=1, keep_checkpoints=3), **overrides})
  data_iter = grain_lm_iterator(random_lm_batches(64, 17, cfg.vocab_size), batch_size=8)
  return train(init_fn=lambda rng: model.init(rng, np.zeros((1, 16), np.int32)), loss_fn=next_token_loss(model),
               cfg=train_cfg, data_iter=data_iter, mesh=make_mesh(MeshConfig(), jax.devices()[:1]),
               workdir=str(workdir), seed=0, on_step_end=on_step_end)


def _main(workdir, *args, module="ttc_jax.main", timeout=240):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  start = time.time()
  result = subprocess.run([sys.executable, "-m", module, "--config=configs/policy.py:smoke", f"--workdir={workdir}",
                           *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
  return result, time.time() - start


def _fatal(stderr: str) -> str:
  lines = [line for line in stderr.splitlines() if line.startswith("FATAL")]
  assert lines, stderr[-3000:]
  return lines[-1]


def _steps(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line)["step"] for line in f]


# ------------------------------------------------------------------ row 1: save errors never hang


def test_unwritable_checkpoint_folder_stops_the_job_at_once(tmp_path):
  # Before: training ran to the first save, then the main thread sat out Orbax's 300 s timeout in save().
  ckpts = tmp_path / "policy" / "checkpoints"
  ckpts.mkdir(parents=True)
  result, seconds = _main(tmp_path, "--config.train.steps=30", f"--unwritable={ckpts}",
                          module="ttc_jax.testing.faults")
  assert result.returncode == 1, result.stderr[-3000:]
  fatal = _fatal(result.stderr)
  assert "CheckpointError" in fatal and f"{ckpts} is not writable" in fatal and "Permission denied" in fatal
  assert "Traceback" not in result.stderr  # The message says it all.
  assert not (tmp_path / "policy" / "metrics.jsonl").exists()  # Stopped before training.
  assert not (tmp_path / "policy" / stage.LOCK_NAME).exists()
  assert seconds < 200


def test_checkpoint_path_under_a_file_names_it(tmp_path):
  workdir = tmp_path / "a_file"
  workdir.write_text("")
  with pytest.raises(CheckpointError, match=f"{workdir}/checkpoints is not writable"):
    _train(workdir)


def _state(n=8, value=0.0):
  return {"params": {"w": np.full((2, n), value, np.float32)}, "step": np.int32(value)}


def _abstract(n=8):
  one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one), _state(n))


def _checkpointer(directory, **kwargs):
  return Checkpointer(str(directory), **{**dict(keep=3, save_every=2), **kwargs})


def test_folder_turning_unwritable_stops_at_that_save(tmp_path):
  ckpt = _checkpointer(tmp_path)
  ckpt.save(2, _state(), None)
  ckpt.wait()
  with faults.unwritable(str(tmp_path)), pytest.raises(CheckpointError,
                                                       match=rf"{tmp_path} is not writable \(saving step 4\)"):
    ckpt.save(4, _state(), None)
  ckpt.close()
  assert _checkpointer(tmp_path).latest_step == 2


def test_background_commit_error_surfaces_on_the_main_thread(tmp_path):
  ckpt = _checkpointer(tmp_path)
  with faults.failing_commit(2):
    ckpt.save(2, _state(), None)
    with pytest.raises(CheckpointError, match=rf"checkpoint of step 2 under {tmp_path} failed: PermissionError"):
      for _ in range(100):  # The loop calls check() every step: the error comes at the first step after it.
        ckpt.check()
        time.sleep(0.05)
      ckpt.save(4, _state(), None)  # At the latest when the next save starts.
  ckpt.close()


def test_background_commit_error_stops_training(tmp_path):
  reached = []
  with faults.failing_commit(2), pytest.raises(CheckpointError, match="step 2") as e:
    _train(tmp_path, steps=8, on_step_end=lambda step, *_: reached.append(step))
  assert checkpoint_dir(str(tmp_path)) in str(e.value) and max(reached) <= 4


def test_too_little_disk_space_names_sizes_and_step(tmp_path, monkeypatch):
  from ttc_jax.train import checkpoint
  real = shutil.disk_usage
  monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
  ckpt = _checkpointer(tmp_path)
  with pytest.raises(CheckpointError, match=rf"Not enough disk space under {tmp_path} for the checkpoint of "
                                            r"step 2: it needs about 0.4 MiB, 0.0 MiB are free"):
    ckpt.save(2, _state(50_000), None)
  ckpt.close()


# ------------------------------------------------------------------ row 7: damaged newest checkpoint


def _damage(step_dir, what):
  state = os.path.join(step_dir, "state")
  if what == "metadata":  # The tree structure (a train state does not restore without it).
    os.remove(os.path.join(state, "_METADATA"))
  elif what == "manifest":
    for r, _, fs in os.walk(state):
      for f in fs:
        if f == "manifest.ocdbt":
          os.remove(os.path.join(r, f))
  else:  # The data blobs of the OCDBT store.
    blobs = [os.path.join(r, f) for r, _, fs in os.walk(state) for f in fs if os.sep + "d" + os.sep in r + os.sep]
    assert blobs, os.listdir(state)
    for b in blobs:
      os.remove(b)


def _two_steps(directory):
  ckpt = _checkpointer(directory)
  for step in (2, 4):
    ckpt.save(step, _state(value=step), None)
  ckpt.close()


@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_damaged_newest_step_falls_back_with_a_warning(tmp_path, what, caplog):
  _two_steps(tmp_path)
  _damage(str(tmp_path / "4"), what)
  ckpt = _checkpointer(tmp_path)
  with caplog.at_level(logging.WARNING):
    state, step = ckpt.restore(_abstract(), None)
  assert step == 2 and float(state["params"]["w"][0, 0]) == 2.0
  assert f"{tmp_path}/4 does not restore" in caplog.text and "skipping step 4" in caplog.text
  assert os.path.isdir(f"{tmp_path}.damaged/4")  # Kept for inspection, out of Orbax's way:
  ckpt.save(4, _state(value=4), None)  # the re-run step saves again.
  ckpt.close()
  assert _checkpointer(tmp_path).latest_step == 4


def test_training_resumes_past_a_damaged_step(tmp_path, caplog):
  _train(tmp_path, steps=4)
  ckpts = checkpoint_dir(str(tmp_path))
  _damage(os.path.join(ckpts, "4"), "metadata")
  with caplog.at_level(logging.WARNING):
    state = _train(tmp_path, steps=6)
  assert int(state.step) == 6 and "skipping step 4" in caplog.text
  assert _steps(tmp_path) == [1, 2, 3, 4, 5, 6]  # Steps 3-4 were re-run and logged once.


def test_no_restorable_step_names_the_directory_and_moves_nothing(tmp_path):
  _two_steps(tmp_path)
  for s in ("2", "4"):
    _damage(str(tmp_path / s), "blob")
  with pytest.raises(CheckpointError, match=rf"No checkpoint under {tmp_path} restores \(step 4: .*; step 2: "):
    _checkpointer(tmp_path).restore(_abstract(), None)
  assert sorted(os.listdir(tmp_path)) == ["2", "4"] and not os.path.exists(f"{tmp_path}.damaged")


def test_shape_mismatch_names_the_tensor_and_the_checkpoint(tmp_path):
  _two_steps(tmp_path)
  with pytest.raises(CheckpointError, match=rf"step 4: .*params.w stored \(2, 8\), wanted \(2, 16\)"):
    _checkpointer(tmp_path).restore(_abstract(16), None)
  with pytest.raises(CheckpointError, match=rf"Checkpoint {tmp_path}/4 does not hold .*params.w stored \(2, 8\)"):
    restore_params(str(tmp_path), _abstract(16)["params"])
  with pytest.raises(CheckpointError, match=rf"Checkpoint {tmp_path}/4 does not hold .*params.params.w missing"):
    restore_params(str(tmp_path), _abstract(8))  # Another tree: a partial restore would skip it silently.


# ------------------------------------------------------------------ row 6: one writer per stage


def _dead_pid() -> int:
  p = subprocess.Popen([sys.executable, "-c", "pass"])
  p.wait()
  return p.pid


def test_live_lock_refuses_naming_the_holder(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    (tmp_path / stage.LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                                        "since": "earlier"}))
    with pytest.raises(stage.StageError, match=rf"in use by pid {holder.pid} on host {socket.gethostname()}"):
      stage.acquire(str(tmp_path), "stage 'policy'")
  finally:
    holder.kill()
    holder.wait()


def test_stale_lock_is_taken_over_with_a_warning(tmp_path, caplog):
  dead = _dead_pid()
  (tmp_path / stage.LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead}))
  with caplog.at_level(logging.WARNING):
    with stage.locked(str(tmp_path), "stage 'policy'"):
      assert json.loads((tmp_path / stage.LOCK_NAME).read_text())["pid"] == os.getpid()
  assert f"pid {dead}" in caplog.text and "stale" in caplog.text
  assert not (tmp_path / stage.LOCK_NAME).exists()


def test_lock_from_another_host_refuses(tmp_path):
  (tmp_path / stage.LOCK_NAME).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
  with pytest.raises(stage.StageError, match="pid 1 on host elsewhere"):
    stage.acquire(str(tmp_path), "stage 'policy'")


def _policy_config(**model) -> ml_collections.ConfigDict:
  config = load_config_module("policy").get_config("smoke")
  config.model.update(model)
  return config


def test_second_training_run_on_a_stage_is_refused_before_writing(tmp_path):
  out = tmp_path / "policy"
  out.mkdir()
  (out / stage.LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
  with pytest.raises(stage.StageError, match=rf"stage 'policy' \({out}\) is in use by pid {os.getppid()}"):
    train_policy.run(_policy_config(), str(tmp_path))
  assert sorted(os.listdir(out)) == [stage.LOCK_NAME]  # Nothing written: no model_config.json, checkpoints.


# ------------------------------------------------------------------ row 5: changed model on a finished stage


def test_changed_model_on_a_finished_stage_is_refused_before_writing(tmp_path):
  out = tmp_path / "policy"
  config = _policy_config()
  import dataclasses
  from ttc_jax.provenance import write_json
  model_cfg = common.parse_model(config.model, load_tokenizer(config.task.tokenizer or None))
  write_json(str(out / "model_config.json"), dataclasses.asdict(model_cfg))
  ckpt = Checkpointer(checkpoint_dir(str(out)), keep=1, save_every=1, async_save=False)
  ckpt.save(1, {"x": np.zeros(2, np.float32)}, None)
  ckpt.close()
  before = (out / "model_config.json").read_text()
  with pytest.raises(stage.StageError, match=r"stage 'policy' .* holds checkpoints of another model \(model\.d_model: "
                                             r"32 in the stage, 48 now\)"):
    train_policy.run(_policy_config(d_model=48), str(tmp_path))
  assert (out / "model_config.json").read_text() == before
  assert not (out / stage.LOCK_NAME).exists()


# ------------------------------------------------------------------ rows 10, 14: the config edge


def test_unknown_override_is_one_paragraph_with_the_dotted_name(tmp_path):
  result, _ = _main(tmp_path / "w", "--config.train.stepz=5", timeout=60)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert "Unknown config field 'train.stepz' (did you mean 'train.steps'?)" in result.stderr
  assert not (tmp_path / "w").exists()


def test_config_error_in_the_job_leaves_no_workdir(tmp_path):
  result, _ = _main(tmp_path / "w", "--config.model.n_heads=3")
  assert result.returncode == 1
  assert "model.n_heads=3" in _fatal(result.stderr)
  assert not (tmp_path / "w").exists()
