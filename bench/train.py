"""Training throughput through the real training loop: tokens/s, MFU, peak memory, input wait, compile time.

Work measured (issue 14): the Llama-shaped 1.2B (Llama-3.2-1B) and 100M models of bench/sampler.py,
random weights, AdamW over float32 master weights with bf16 compute, sequence 2,048 (each example
has 2,049 tokens: the model reads 2,048 and predicts 2,048), one device. Each row is one
(shape, model.attention_impl, model.remat) through `ttc_jax.train.train` itself: the grain input
(random tokens, `train.input_workers` worker processes), the memory check, the jitted step, metrics
read one step late. The loop is stopped after its last timed step, before it writes a final
checkpoint (a 1.2B state is 14 GiB of disk writes that are not training).

Per row: tokens/s = batch * 2,048 / median loop step time over the timed steps (`step_time_s` of
metrics.jsonl, the loop's own wall clock per step); MFU = model FLOPs per second / the bf16 matmul
rate measured in the same process (an 8192^3 matmul, bench/sampler.py's rule); model FLOPs are
`ttc_jax.models.flops` training FLOPs of the causal sequence (3x forward; remat's recomputation is
not counted, so this is MFU, not hardware utilisation); `input_wait` is the loop's fraction of wall
time spent waiting for batches; compile_s is the wall time from calling `train` to the first step
dispatched (state init, tracing and compilation); peak memory is the device allocator's peak.
A row the memory check refuses is recorded with its message (nothing compiled).

Each row runs in its own process (peak memory is per process, and a failed row leaves no state):

  PYTHONPATH=. python3 bench/train.py     # writes bench/results/train/train_<device>.json
  PYTHONPATH=. python3 bench/train.py --shapes 1.2b --impls cudnn --remats none --batch 8 --out x.json
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from bench.sampler import NORM_EPS, ROPE_THETA, SHAPES, git_meta, jax_device_ceilings, log

SEQ_LEN = 2048
BATCHES = {"100m": 16, "1.2b": 8, "tiny": 2}  # Per device; the measured batch sizes.


class _StopBeforeFinalCheckpoint(Exception):
  pass


def model_config(shape: str, impl: str, remat: str, dtype: str):
  from ttc_jax.models import ModelConfig
  return ModelConfig(**SHAPES[shape], max_len=SEQ_LEN, rope_theta=ROPE_THETA, norm_eps=NORM_EPS, dtype=dtype,
                     param_dtype="float32", remat=remat, attention_impl=impl)


def run_row(shape: str, impl: str, remat: str, batch: int, seq_len: int, warmup: int, timed: int,
            workers: int) -> dict:
  """One row in this process; returns its record."""
  import jax
  import numpy as np

  from ttc_jax.models import Transformer
  from ttc_jax.models.flops import span_forward_flops
  from ttc_jax.parallel import MeshConfig, make_mesh
  from ttc_jax.testing.tiny import grain_lm_iterator
  from ttc_jax.train import TrainConfig, next_token_loss, train
  from ttc_jax.train.memory import TrainMemoryError

  on_cpu = jax.default_backend() == "cpu"
  cfg = model_config(shape, impl, remat, "float32" if on_cpu else "bfloat16")
  row = {"shape": shape, "attention_impl": impl, "remat": remat, "batch": batch, "seq_len": seq_len,
         "input_workers": workers, "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend()}
  row["bf16_matmul_flops"] = jax_device_ceilings()["jax_bf16_matmul_flops"]
  model = Transformer(cfg)
  tokens = np.random.RandomState(0).randint(0, cfg.vocab_size, size=(4 * batch, seq_len + 1)).astype(np.int32)
  # Logged: steps 1 .. steps - 2 (metrics are read one step late and the stop comes in the last
  # step, before its predecessor is logged); step 1's window holds the compile, then `warmup`.
  steps = 1 + warmup + timed + 2
  train_cfg = TrainConfig(steps=steps, batch_size=batch, seq_len=seq_len + 1, warmup_steps=1,
                          checkpoint_every=10 ** 9, log_every=1, input_workers=workers)
  marks = {}

  def on_step_end(step, state, ckpt):
    del state, ckpt
    if step == 1:
      marks["first_step"] = time.perf_counter()
    if step == steps:
      raise _StopBeforeFinalCheckpoint()

  workdir = tempfile.mkdtemp(prefix="bench_train_")
  start = time.perf_counter()
  try:
    train(init_fn=lambda rng: model.init(rng, np.zeros((1, seq_len), np.int32)), loss_fn=next_token_loss(model),
          cfg=train_cfg, data_iter=grain_lm_iterator(tokens, batch, workers=workers),
          mesh=make_mesh(MeshConfig(), jax.devices()[:1]), workdir=workdir, seed=0, on_step_end=on_step_end,
          model_cfg=cfg)
  except _StopBeforeFinalCheckpoint:
    pass
  except TrainMemoryError as e:
    return {**row, "refused": str(e)}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f][1 + warmup:]
  assert len(records) == timed, (len(records), timed)
  step_s = statistics.median(r["step_time_s"] for r in records)
  flops_per_step = 3.0 * float(span_forward_flops(cfg, seq_len, 0)) * batch
  row.update(
      compile_s=marks["first_step"] - start, timed_steps=len(records), step_time_s=step_s,
      step_times_s=[r["step_time_s"] for r in records], tokens_per_s=batch * seq_len / step_s,
      model_flops_per_step=flops_per_step, model_flops_per_s=flops_per_step / step_s,
      input_wait=statistics.fmean(r["input_wait"] for r in records), loss_last=records[-1]["loss"])
  row["mfu"] = row["model_flops_per_s"] / row["bf16_matmul_flops"]
  stats = jax.devices()[0].memory_stats() or {}
  row["peak_bytes"] = stats.get("peak_bytes_in_use")
  row["bytes_limit"] = stats.get("bytes_limit")
  return row


def run_all(args) -> dict:
  """Every (shape, impl, remat) row, each in a child process running `--part row`."""
  rows = []
  deadline = time.time() + args.time_limit_s
  for shape in args.shapes:
    for impl in args.impls:
      for remat in args.remats:
        label = f"{shape} {impl} remat={remat}"
        if time.time() > deadline:
          log(f"[train] time limit reached, skipping {label}")
          rows.append({"shape": shape, "attention_impl": impl, "remat": remat, "skipped": "time limit"})
          continue
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
          cmd = [sys.executable, os.path.abspath(__file__), "--part", "row", "--shapes", shape, "--impls", impl,
                 "--remats", remat, "--seq_len", str(args.seq_len), "--warmup", str(args.warmup), "--steps", str(args.steps), "--workers",
                 str(args.workers), "--out", out.name] + (["--batch", str(args.batch)] if args.batch else [])
          result = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": _pythonpath()}, capture_output=True,
                                  text=True)
          if result.returncode == 0:
            row = json.load(open(out.name))
          else:
            tail = (result.stderr or result.stdout).strip().splitlines()[-12:]
            row = {"shape": shape, "attention_impl": impl, "remat": remat, "failed": "\n".join(tail)}
        rows.append(row)
        log(f"[train] {label}: {summary(row)}")
  device = next((r["device"] for r in rows if "device" in r), None)
  return {**git_meta(), "device": device, "seq_len": args.seq_len, "input_workers": args.workers, "rows": rows}


def _pythonpath() -> str:
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.pathsep.join([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + [repo])


def summary(row: dict) -> str:
  if "tokens_per_s" in row:
    peak = f"{row['peak_bytes'] / 2 ** 30:.1f} GiB" if row.get("peak_bytes") else "?"
    return (f"{row['tokens_per_s']:,.0f} tok/s, MFU {100 * row['mfu']:.1f}% of "
            f"{row['bf16_matmul_flops'] / 1e12:.0f} TFLOP/s, step {1e3 * row['step_time_s']:.0f} ms, "
            f"input wait {100 * row['input_wait']:.1f}%, compile {row['compile_s']:.0f} s, peak {peak}")
  return row.get("refused") or row.get("failed") or row.get("skipped", "?")


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--part", choices=["all", "row"], default="all")
  p.add_argument("--shapes", nargs="+", default=["100m", "1.2b"], choices=list(SHAPES))
  p.add_argument("--impls", nargs="+", default=["xla", "cudnn"], choices=["auto", "xla", "cudnn", "chunked"])
  p.add_argument("--remats", nargs="+", default=["none", "dots"], choices=["none", "dots", "full"])
  p.add_argument("--batch", type=int, default=0, help="per-device batch (0: the shape's default)")
  p.add_argument("--seq_len", type=int, default=SEQ_LEN)
  p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (which compiles)")
  p.add_argument("--steps", type=int, default=8, help="timed steps")
  p.add_argument("--workers", type=int, default=2, help="train.input_workers")
  p.add_argument("--time_limit_s", type=float, default=420.0, help="start no new row after this")
  p.add_argument("--out", help="default: bench/results/train/train_<device>.json (--part all only)")
  args = p.parse_args()
  if args.part == "row" and not args.out:
    p.error("--part row needs --out")
  if args.part == "row":
    (shape,), (impl,), (remat,) = args.shapes, args.impls, args.remats
    result = run_row(shape, impl, remat, args.batch or BATCHES[shape], args.seq_len, args.warmup, args.steps,
                     args.workers)
  else:
    result = run_all(args)
    if not args.out:
      device = re.sub(r"[^A-Za-z0-9]+", "-", result["device"] or "unknown").strip("-").lower()
      args.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "train", f"train_{device}.json")
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  log(f"wrote {args.out}")


if __name__ == "__main__":
  main()
