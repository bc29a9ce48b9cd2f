"""Two processes joined by jax.distributed (2 fake CPU devices each) give the one-process results:
an evaluation job (each process samples its own shards) and training steps on one mesh over both."""
import os

import numpy as np

from ttc_jax import parallel, shards
from ttc_jax.jobs import common, sample_solutions
from ttc_jax.provenance import write_json
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing import multihost_run
from ttc_jax.testing.tiny import devices, export_tiny_model, load_config_module

TRAIN_STEPS, TRAIN_BATCH, SEQ = 3, 8, 17


def _samples_config(name: str):
  c = load_config_module("samples").get_config("smoke")
  # 5 problems in 3 shards: process 0 samples shards 0 and 2, process 1 shard 1.
  c.sampling.update(name=name, num_problems=5, samples_per_problem=2, problems_per_shard=2, batch_size=3,
                    max_new_tokens=16)
  return c


def _train(mesh_devices, workdir: str) -> dict[str, np.ndarray]:
  """TRAIN_STEPS steps of the tiny policy on fixed batches over a (data=2, fsdp=2) mesh; the final params."""
  import grain
  import jax
  from jax.experimental import multihost_utils

  from ttc_jax.models import Transformer
  from ttc_jax.parallel.sharding import batch_sharding
  from ttc_jax.testing.tiny import random_lm_batches, tiny_model_config
  from ttc_jax.train import TrainConfig, next_token_loss, train

  cfg = tiny_model_config()
  model = Transformer(cfg)
  mesh = parallel.make_mesh(parallel.MeshConfig(data=2, fsdp=2), mesh_devices)
  # Each process feeds the rows of the global batch that its devices hold (every process the same batches).
  local = batch_sharding(mesh).addressable_devices_indices_map((TRAIN_BATCH, SEQ))
  rows = sorted({r for index in local.values() for r in range(*index[0].indices(TRAIN_BATCH))})
  assert rows == list(range(rows[0], rows[-1] + 1)), rows  # A contiguous block, as the loop's global batch needs.
  tokens = random_lm_batches(TRAIN_STEPS * TRAIN_BATCH, SEQ, cfg.vocab_size)
  ds = grain.MapDataset.source(tokens).batch(TRAIN_BATCH).map(
      lambda b: {"tokens": b[rows[0]:rows[-1] + 1], "loss_mask": np.ones_like(b[rows[0]:rows[-1] + 1])})
  train_cfg = TrainConfig(steps=TRAIN_STEPS, batch_size=TRAIN_BATCH, seq_len=SEQ, warmup_steps=1,
                          checkpoint_every=TRAIN_STEPS, log_every=1)
  state = train(init_fn=lambda rng: model.init(rng, np.zeros((1, SEQ - 1), np.int32)),
                loss_fn=next_token_loss(model), cfg=train_cfg, data_iter=iter(ds.to_iter_dataset()), mesh=mesh,
                workdir=workdir, seed=0)
  params = multihost_utils.process_allgather(state.params, tiled=True)
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(params)}


def scenario(workdir: str) -> dict:
  """What each of the two processes runs (`multihost_run.launch`)."""
  import jax

  from ttc_jax.parallel import batches, processes

  # A result made from other inputs: both processes are told to recompute; only the lead moves it aside.
  stale_is_current = common.current_result(os.path.join(workdir, "old_result.json"), {"model": "new"})
  sample_solutions.run(_samples_config("hosts"), workdir)
  # Only the lead's metrics writer imports tensorboardX (seconds): every process does it first, so
  # they reach the first collective together (on CPU, gloo gives up on a peer after 30 s).
  import tensorboardX  # noqa: F401
  processes.barrier("scenario.train")
  # Rows over one mesh spanning both processes, as the policy's evaluation after training places them.
  mesh = parallel.make_mesh(parallel.MeshConfig(), jax.devices())
  rows = np.arange(8 * 3).reshape(8, 3)
  doubled = batches.fetch(jax.jit(lambda x: x * 2)(batches.place_rows(rows, mesh)))
  params = _train(jax.devices(), os.path.join(workdir, "train_hosts"))
  if jax.process_index() == 0:
    np.savez(os.path.join(workdir, "params_hosts.npz"), **params)
  return {"process": jax.process_index(), "processes": jax.process_count(), "devices": jax.device_count(),
          "local_devices": jax.local_device_count(), "stale_is_current": stale_is_current,
          "global_rows_doubled": doubled.tolist() == (2 * rows).tolist(),
          "gathered": processes.gather_json({"from": jax.process_index(), "text": "é" * jax.process_index()})}


def test_two_processes_equal_one(tmp_path):
  export_tiny_model(str(tmp_path / "policy"), load_tokenizer())
  one = _samples_config("one")
  one.mesh.num_devices = 1  # The one-device reference (it also builds the task data the processes read).
  sample_solutions.run(one, str(tmp_path))
  reference = _train(devices(4), str(tmp_path / "train_one"))

  write_json(str(tmp_path / "old_result.json"), {"inputs": {"model": "old"}})
  results = multihost_run.launch("tests.test_multihost:scenario", {"workdir": str(tmp_path)}, num_processes=2,
                                 devices_per_process=2)
  gathered = [{"from": 0, "text": ""}, {"from": 1, "text": "é"}]  # eval_verifiers gathers its scores so.
  assert results == [{"process": i, "processes": 2, "devices": 4, "local_devices": 2, "stale_is_current": False,
                      "global_rows_doubled": True, "gathered": gathered} for i in range(2)]
  assert not (tmp_path / "old_result.json").exists() and (tmp_path / "old_result.json.stale-1").exists()
  assert not (tmp_path / "old_result.json.stale-2").exists()  # Moved once, by the lead.
  hosts = shards.read_records(str(tmp_path / "samples" / "hosts"))
  assert len(hosts) == 5 and hosts == shards.read_records(str(tmp_path / "samples" / "one"))
  trained = np.load(tmp_path / "params_hosts.npz")
  assert sorted(trained) == sorted(reference)
  for name, value in reference.items():
    np.testing.assert_allclose(trained[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
