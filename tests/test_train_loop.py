"""The shared training loop: sharding equivalence, accumulation, kill/resume, NaN stop."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import chex
import jax
import numpy as np
import pytest

from ttc_jax.models import Transformer
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.testing.tiny import grain_lm_iterator, random_lm_batches, tiny_model_config
from ttc_jax.train import LossOutput, NonFiniteLossError, TrainConfig, checkpoint_dir, next_token_loss, train
from ttc_jax.train.checkpoint import Checkpointer
from ttc_jax.train.metrics import TIMING_METRICS, InputWaitTimer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _losses(workdir, timing=False):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return records if timing else [{k: v for k, v in r.items() if k not in TIMING_METRICS} for r in records]


def _run(workdir, mesh_cfg=MeshConfig(), n_devices=1, steps=6, **train_overrides):
  cfg = tiny_model_config()
  model = Transformer(cfg)
  train_cfg = TrainConfig(**{**dict(steps=steps, batch_size=8, seq_len=17, warmup_steps=1, checkpoint_every=100,
                                    log_every=1), **train_overrides})
  data_iter = grain_lm_iterator(random_lm_batches(64, 17, cfg.vocab_size), batch_size=8)
  state = train(init_fn=lambda rng: model.init(rng, np.zeros((1, 16), np.int32)), loss_fn=next_token_loss(model),
                cfg=train_cfg, data_iter=data_iter, mesh=make_mesh(mesh_cfg, jax.devices()[:n_devices]),
                workdir=str(workdir), seed=0)
  return state, [m["loss"] for m in _losses(workdir)]


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
  """(state, losses) of 6 steps on one device: the reference every sharded layout is compared with."""
  return _run(tmp_path_factory.mktemp("one"))


@pytest.mark.parametrize("mesh_cfg", [MeshConfig(data=4, fsdp=2), MeshConfig(data=4, tensor=2),
                                      MeshConfig(data=2, fsdp=2, tensor=2)], ids=["dp_fsdp", "dp_tp", "dp_fsdp_tp"])
def test_sharded_training_matches_single_device(tmp_path, mesh_cfg, single_device_run):
  single, single_losses = single_device_run
  sharded, sharded_losses = _run(tmp_path / "eight", mesh_cfg, n_devices=8)
  np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-5)
  chex.assert_trees_all_close(jax.device_get(sharded.params), jax.device_get(single.params), atol=1e-5)
  # Really sharded: parameters are split over the 8 devices, not replicated.
  embed = sharded.params["params"]["embed"]["embedding"]
  assert len(embed.sharding.device_set) == 8
  assert embed.addressable_shards[0].data.size < embed.size


def test_gradient_accumulation_matches_full_batch(tmp_path, single_device_run):
  full, full_losses = single_device_run
  accum, accum_losses = _run(tmp_path / "accum", grad_accum_steps=4)
  np.testing.assert_allclose(accum_losses, full_losses, rtol=1e-5)
  chex.assert_trees_all_close(jax.device_get(accum.params), jax.device_get(full.params), atol=1e-5)


def _train_run(workdir, *flags):
  """Runs ttc_jax.testing.train_run in its own session; returns (returncode, stderr)."""
  cmd = [sys.executable, "-m", "ttc_jax.testing.train_run", f"--workdir={workdir}", *flags]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  # Output to a file, not a pipe: grain worker processes outlive a SIGKILLed run (as they would a
  # preempted host's) and would hold a pipe open. The run's own session lets them be ended after.
  with tempfile.TemporaryFile("w+") as log:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
      proc.wait(timeout=300)
    finally:
      try:
        os.killpg(proc.pid, signal.SIGKILL)  # The run's leftover workers, if any.
      except ProcessLookupError:
        pass
    log.seek(0)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout="", stderr=log.read())


def _final_params(workdir):
  with np.load(os.path.join(workdir, "final_params.npz")) as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("straight")
  result = _train_run(workdir)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


# The first case reads its batches in 2 grain worker processes, killed and resumed: the same
# batches as the straight run's in-process reading, before and after the kill (one case covers
# both, as each training subprocess costs tens of seconds on CI's two cores).
@pytest.mark.parametrize("kill_flag,committed_before_kill,workers", [
    ("--kill_at_step=7", 4, 2), ("--kill_in_save_at_step=8", 4, 0)],
                         ids=["sigkill_after_checkpoint_input_workers", "sigkill_during_checkpoint_write"])
def test_resume_after_sigkill_is_identical(tmp_path, straight_run, kill_flag, committed_before_kill, workers):
  workers_flag = f"--input_workers={workers}"
  killed = _train_run(tmp_path, kill_flag, workers_flag)
  assert killed.returncode == -9, "the run should have died by SIGKILL"
  assert not os.path.exists(tmp_path / "final_params.npz")
  # Only fully written checkpoints count; a half-written one is ignored.
  assert Checkpointer(checkpoint_dir(str(tmp_path)), keep=3, save_every=4).latest_step == committed_before_kill
  assert max(m["step"] for m in _losses(tmp_path)) > committed_before_kill  # Lines past the checkpoint get dropped.
  resumed = _train_run(tmp_path, workers_flag)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Restored checkpoint at step {committed_before_kill}" in resumed.stderr
  expected, got = _final_params(straight_run), _final_params(tmp_path)
  assert expected.keys() == got.keys()
  for k in expected:
    np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
  assert _losses(tmp_path) == _losses(straight_run)


def test_rerun_of_finished_training_is_a_no_op(tmp_path):
  _run(tmp_path, steps=3, checkpoint_every=3)
  before = _losses(tmp_path)
  state, _ = _run(tmp_path, steps=3, checkpoint_every=3)
  assert int(state.step) == 3
  assert _losses(tmp_path) == before


def test_non_finite_loss_stops_before_it_is_checkpointed(tmp_path):
  cfg = tiny_model_config()
  model = Transformer(cfg)
  base_loss = next_token_loss(model)

  def poisoned_loss(params, batch, rng):
    out = base_loss(params, batch, rng)
    poison = jax.numpy.any(batch["loss_mask"] == 2)  # Marks the batches that must blow up.
    return LossOutput(loss_sum=jax.numpy.where(poison, jax.numpy.nan, out.loss_sum), weight=out.weight,
                      metrics=out.metrics)

  import grain
  tokens = random_lm_batches(80, 17, cfg.vocab_size)
  masks = np.ones_like(tokens)
  masks[6 * 8:] = 2  # Batches 7+ (no shuffling: batch i holds examples 8i..8i+7).
  ds = grain.MapDataset.source(list(zip(tokens, masks))).map(lambda tm: {"tokens": tm[0], "loss_mask": tm[1]})
  data_iter = iter(ds.batch(8, drop_remainder=True).to_iter_dataset())
  train_cfg = TrainConfig(steps=9, batch_size=8, seq_len=17, warmup_steps=1, checkpoint_every=1, log_every=1,
                          keep_checkpoints=2)
  with pytest.raises(NonFiniteLossError, match="step 7"):
    train(init_fn=lambda rng: model.init(rng, np.zeros((1, 16), np.int32)), loss_fn=poisoned_loss, cfg=train_cfg,
          data_iter=data_iter, mesh=make_mesh(MeshConfig(), jax.devices()[:1]), workdir=str(tmp_path), seed=0)
  ckpt = Checkpointer(checkpoint_dir(str(tmp_path)), keep=2, save_every=1)
  assert ckpt.latest_step == 6
  assert all(np.isfinite(m["loss"]) for m in _losses(tmp_path))


def test_fewer_steps_than_the_checkpoint_is_an_error(tmp_path):
  _run(tmp_path, steps=3, checkpoint_every=3)
  with pytest.raises(ValueError, match="step 3, past train.steps=2"):
    _run(tmp_path, steps=2, checkpoint_every=1)


def test_input_wait_timer_measures_the_share_spent_waiting():
  timer = InputWaitTimer()
  for _ in range(3):
    with timer.waiting():
      time.sleep(0.06)  # Reading a batch.
    time.sleep(0.02)  # The step.
  got = timer.take()
  assert got["input_wait"] == pytest.approx(0.75, abs=0.1) and got["step_time_s"] == pytest.approx(0.08, abs=0.03)
  assert timer.take() == {}  # No batch read since: nothing to report (the last step, logged after the loop).
