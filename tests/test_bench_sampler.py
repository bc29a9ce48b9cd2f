"""bench/sampler.py's CPU smoke mode (`--shapes tiny`): one row with its memory and HLO copy records."""
import json
import math
import types

from ttc_jax.testing.tiny import load_file_module


def _bench():
  return load_file_module("bench/sampler.py", "bench_sampler")


def test_large_copies_counts_only_copy_like_ops_above_the_threshold():
  hlo = ("%copy.1 = bf16[4,1024,256]{2,1,0} copy(%p)\n"  # 2 MiB: counted.
         "%dynamic-slice.2 = f32[1,512,512]{2,1,0} dynamic-slice(%a, %i, %j, %k)\n"  # 1 MiB: counted.
         "%copy.3 = f32[16]{0} copy(%q)\n"  # Small.
         "%fusion.4 = bf16[4,1024,256]{2,1,0} fusion(%p), kind=kLoop\n")  # Not copy-like.
  assert _bench().large_copies(hlo) == {"copy": {"count": 1, "bytes": 2 << 20},
                                        "dynamic-slice": {"count": 1, "bytes": 1 << 20}}


def test_tiny_cpu_run_records_memory_and_copies(tmp_path):
  bench = _bench()
  args = types.SimpleNamespace(shapes=["tiny"], batches=[2], label="ttc_jax", hf_dir=None, repeats=1,
                               deadline=math.inf, profile=set(), dump_hlo=None)
  out = bench.run_jax(args, lambda result: None)
  (run,) = out["runs"]
  assert run["tokens_per_s"] > 0 and run["program_total_bytes"] > 0
  assert isinstance(run["hlo_large_copies"], dict)
  path = tmp_path / "jax.json"
  path.write_text(json.dumps(out))
  result = bench.report([bench.load_part(str(path))], {"commit": "x"})
  (row,) = result["results"]
  assert row["program_total_bytes"] == run["program_total_bytes"]
  assert "prog GiB" in bench.table(result)
