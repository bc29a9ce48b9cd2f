"""bench/train.py on a tiny shape on CPU (2 timed steps through the real loop), so the script keeps running."""
from ttc_jax.testing.tiny import load_file_module


def _bench():
  return load_file_module("bench/train.py", "bench_train")


def test_tiny_row_through_the_training_loop():
  bench = _bench()
  row = bench.run_row("tiny", "xla", "none", batch=2, seq_len=32, warmup=0, timed=2, workers=0)
  assert row["timed_steps"] == 2 and len(row["step_times_s"]) == 2
  assert row["tokens_per_s"] == 2 * 32 / row["step_time_s"] > 0
  assert row["model_flops_per_s"] > 0 and 0 < row["mfu"] and row["bf16_matmul_flops"] > 0
  assert 0 <= row["input_wait"] <= 1 and row["compile_s"] > 0  # The loop's own metrics.jsonl timing.
  assert "tok/s" in bench.summary(row)
