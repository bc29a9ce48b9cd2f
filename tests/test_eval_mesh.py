"""Evaluation over the mesh: rows split over the data axis of 8 fake devices give one device's results,
and so does each prompt's rows reading one stored copy of its keys and values or a copy each (shared_prefix)."""
import json

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from ttc_jax import parallel, shards
from ttc_jax.jobs import eval_search, sample_solutions
from ttc_jax.parallel import batches, processes
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import devices, export_tiny_model, load_config_module


def test_rows_are_padded_to_the_data_parallel_size_placed_and_fetched_whole():
  mesh = parallel.make_mesh(parallel.MeshConfig(data=4, fsdp=2), devices(8))
  assert [batches.padded_rows(n, mesh) for n in (1, 8, 9, 16)] == [8, 8, 16, 16]
  assert batches.padded_rows(3) == 3  # No mesh in scope: as given.
  with parallel.activate(mesh):
    assert batches.padded_rows(3) == 8  # The mesh of the enclosing `jax.set_mesh`.
  rows = np.arange(8 * 3).reshape(8, 3)
  placed = batches.place_rows({"x": rows}, mesh)["x"]
  assert placed.sharding.spec == P(("data", "fsdp"))
  assert sorted(s.data.shape for s in placed.addressable_shards) == [(1, 3)] * 8  # One row per device.
  np.testing.assert_array_equal(batches.fetch(placed), rows)
  one = parallel.make_mesh(parallel.MeshConfig(), devices(1))
  assert batches.padded_rows(3, one) == 3 and batches.place_rows(rows, one) is rows


def test_work_is_shared_over_processes_in_order(monkeypatch):
  monkeypatch.setattr(processes.jax, "process_count", lambda: 3)
  shares, blocks = [], []
  for p in range(3):
    monkeypatch.setattr(processes.jax, "process_index", lambda p=p: p)
    shares.append(processes.my_share(list(range(7))))
    blocks.append(list(processes.my_block(7)))
  assert shares == [[0, 3, 6], [1, 4], [2, 5]]
  assert blocks == [[0, 1], [2, 3], [4, 5, 6]]  # Concatenated in process order: range(7).


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("eval_mesh")
  tokenizer = load_tokenizer()
  for stage, head in (("policy", {}), ("prm", {"scalar_head": True, "lm_head": False})):
    export_tiny_model(str(tmp_path / stage), tokenizer, **head)
  return tmp_path


def _same_up_to_rounding(a, b) -> bool:
  """Equal records, floats to float32 rounding: XLA's CPU kernels round a verifier score differently
  for another number of rows in the call (on one device too: 2 rows padded to 8 move it as much)."""
  if isinstance(a, float) and isinstance(b, float):
    return a == pytest.approx(b, rel=1e-5, abs=1e-6)
  if isinstance(a, dict) and isinstance(b, dict):
    return a.keys() == b.keys() and all(_same_up_to_rounding(a[k], b[k]) for k in a)
  if isinstance(a, list) and isinstance(b, list):
    return len(a) == len(b) and all(_same_up_to_rounding(x, y) for x, y in zip(a, b))
  return a == b


def test_mesh_num_devices_takes_the_first_n():
  mesh = parallel.make_mesh(parallel.MeshConfig(num_devices=2), devices(8))
  assert dict(mesh.shape) == {"data": 2, "fsdp": 1, "tensor": 1} and list(mesh.devices.flat) == devices(2)
  with pytest.raises(ValueError, match="mesh.num_devices=9 but there are only 8 devices"):
    parallel.make_mesh(parallel.MeshConfig(num_devices=9), devices(8))
  with pytest.raises(ValueError, match="mesh.num_devices=-1 must be >= 0"):
    parallel.MeshConfig(num_devices=-1)


def test_sample_solutions_over_8_devices_equals_one_device(workdir):
  c = load_config_module("samples").get_config("smoke")
  # 3 prompts x 2 samples a call: padded to 8 rows on the mesh; 5 problems leave a short last shard.
  c.sampling.update(num_problems=5, samples_per_problem=2, problems_per_shard=4, batch_size=3, max_new_tokens=16)
  c.sampling.name = "mesh"
  sample_solutions.run(c, str(workdir))
  c.mesh.num_devices = 1  # The one-device reference: the job's mesh over the first device only.
  c.sampling.name = "one"
  sample_solutions.run(c, str(workdir))
  mesh = shards.read_records(str(workdir / "samples" / "mesh"))
  one = shards.read_records(str(workdir / "samples" / "one"))
  assert len(one) == 5 and mesh == one
  assert len({s["text"] for r in one for s in r["samples"]}) > 1  # Real, varied samples were compared.
  # A copy of the prompt per sample: the same samples, and shards that do not record the layout.
  c.sampling.update(name="one_unshared", shared_prefix=False)
  sample_solutions.run(c, str(workdir))
  assert shards.read_records(str(workdir / "samples" / "one_unshared")) == one
  spec = json.loads((workdir / "samples" / "one_unshared" / "spec.json").read_text())
  assert "shared_prefix" not in spec["sampling"] and spec["sampling"]["name"] == "one_unshared"


def test_eval_search_over_8_devices_equals_one_device(workdir):
  c = load_config_module("search_eval").get_config("smoke")
  c.search_eval.update(num_problems=3, budgets=(4,), strategies=("beam:2",), problems_per_shard=2,
                       batch_size=2, out="eval/mesh")
  eval_search.run(c, str(workdir))
  c.mesh.num_devices = 1
  c.search_eval.out = "eval/one"
  eval_search.run(c, str(workdir))
  mesh = shards.read_records(str(workdir / "eval" / "mesh" / "beam_2" / "N4"))
  one = shards.read_records(str(workdir / "eval" / "one" / "beam_2" / "N4"))
  assert len(one) == 3 and _same_up_to_rounding(mesh, one)
  texts = lambda records: [[c["text"] for c in r["candidates"]] for r in records]
  assert texts(mesh) == texts(one) and [r["parents"] for r in mesh] == [r["parents"] for r in one]
  # N copies of each prompt in the policy's and the PRM's caches instead of one: the same search.
  c.search_eval.update(out="eval/one_unshared", shared_prefix=False)
  eval_search.run(c, str(workdir))
  unshared_dir = workdir / "eval" / "one_unshared" / "beam_2" / "N4"
  unshared = shards.read_records(str(unshared_dir))
  assert _same_up_to_rounding(unshared, one)
  assert texts(unshared) == texts(one) and [r["parents"] for r in unshared] == [r["parents"] for r in one]
  spec = lambda d: json.loads((d / "spec.json").read_text())
  assert spec(unshared_dir) == spec(workdir / "eval" / "one" / "beam_2" / "N4")  # The layout is not in it.
