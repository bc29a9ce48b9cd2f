"""HF checkpoint import speed and memory: `load_hf_params` onto the single-GPU mesh.

Writes a random-weight bf16 checkpoint of each shape, with transformers
(`--writer transformers`: from_config on the GPU + save_pretrained, what a user's
files look like) or with our own safetensors writer (`--writer ttc_jax`: needs no
torch), then, in a fresh process per shape, imports it and records seconds, peak
host RSS (ru_maxrss), the largest host buffer the loader built, and device memory
in use.

  PYTHONPATH=. python3 bench/hf_import.py --writer transformers --out bench/results/hf_import_h200.json [--dir /tmp/hf_bench]
  PYTHONPATH=. python3 bench/hf_import.py --tiny --out /tmp/hf_import_tiny.json   # CPU smoke check
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

_LLAMA_1B = dict(model_type="llama", vocab_size=128256, hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                 num_key_value_heads=8, head_dim=64, intermediate_size=8192, max_position_embeddings=131072,
                 rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True,
                 rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 8192})
_QWEN_7B = dict(model_type="qwen2", vocab_size=152064, hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
                num_key_value_heads=4, head_dim=128, intermediate_size=18944, max_position_embeddings=32768,
                rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False)
_TINY = dict(model_type="qwen2", vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, intermediate_size=128, rms_norm_eps=1e-6, tie_word_embeddings=False)
SHAPES = {"llama3.2-1b": _LLAMA_1B, "qwen2.5-7b": _QWEN_7B}
SHARD_BYTES = 4 << 30  # Hub-like shard size, so the sharded path is exercised.


def log(*args):
  print(*args, flush=True)


def write_checkpoint(path: str, hf: dict) -> float:
  """Random bf16 tensors, written one at a time; returns seconds."""
  import ml_dtypes
  import numpy as np
  from ttc_jax.models.hf import safetensors_io
  if os.path.exists(os.path.join(path, "config.json")):
    return 0.0
  os.makedirs(path, exist_ok=True)
  t0 = time.perf_counter()
  rng = np.random.default_rng(0)
  names = _tensor_shapes(hf)
  specs = [(name, np.dtype(ml_dtypes.bfloat16), shape) for name, shape in names.items()]
  produce = lambda name: (rng.standard_normal(names[name], dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
  safetensors_io.write_checkpoint(path, specs, produce, SHARD_BYTES)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump({**hf, "torch_dtype": "bfloat16"}, f)
  return time.perf_counter() - t0


def write_checkpoint_transformers(path: str, hf: dict) -> float:
  """transformers' own files: random init in bf16 (on the GPU when there is one), save_pretrained."""
  import torch
  import transformers
  if os.path.exists(os.path.join(path, "config.json")):
    return 0.0
  t0 = time.perf_counter()
  fields = {k: v for k, v in hf.items() if k != "model_type"}
  config = transformers.AutoConfig.for_model(hf["model_type"], **fields)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  with torch.device(device):
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
  model.save_pretrained(path, max_shard_size="4GB")  # Hub-like shards: the sharded path is exercised.
  del model
  return time.perf_counter() - t0


def _tensor_shapes(hf: dict) -> dict:
  d, f, v = hf["hidden_size"], hf["intermediate_size"], hf["vocab_size"]
  n, k, h = hf["num_attention_heads"], hf["num_key_value_heads"], hf["head_dim"]
  out = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,)}
  for i in range(hf["num_hidden_layers"]):
    p = f"model.layers.{i}."
    out.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                p + "self_attn.q_proj.weight": (n * h, d), p + "self_attn.k_proj.weight": (k * h, d),
                p + "self_attn.v_proj.weight": (k * h, d), p + "self_attn.o_proj.weight": (d, n * h),
                p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d), p + "mlp.down_proj.weight": (d, f)})
    if hf["model_type"] == "qwen2":
      out.update({p + "self_attn.q_proj.bias": (n * h,), p + "self_attn.k_proj.bias": (k * h,),
                  p + "self_attn.v_proj.bias": (k * h,)})
  if not hf["tie_word_embeddings"]:
    out["lm_head.weight"] = (v, d)
  return out


def import_one(path: str) -> dict:
  """Runs in its own process so ru_maxrss is this import's peak."""
  import jax
  from ttc_jax.models import hf
  from ttc_jax.parallel import MeshConfig, make_mesh
  mesh = make_mesh(MeshConfig(), jax.devices()[:1])
  rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  cfg, _ = hf.read_hf_config(path)
  stats = hf.LoadStats()
  t0 = time.perf_counter()
  params = hf.load_hf_params(path, cfg, mesh, stats=stats)
  jax.block_until_ready(params)
  seconds = time.perf_counter() - t0
  leaves = jax.tree_util.tree_leaves(params)
  mem = jax.devices()[0].memory_stats() or {}
  return {"seconds": seconds, "param_count": sum(x.size for x in leaves),
          "param_bytes": sum(x.nbytes for x in leaves), "checkpoint_bytes": sum(
              os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors")),
          "peak_host_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          "host_rss_before_bytes": rss0 * 1024, "largest_host_buffer_bytes": stats.largest_buffer_bytes,
          "device_bytes_in_use": mem.get("bytes_in_use"), "device_peak_bytes": mem.get("peak_bytes_in_use"),
          "device": str(jax.devices()[0]), "gb_per_s": sum(x.nbytes for x in leaves) / seconds / 1e9}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--dir", default="/tmp/hf_import_bench")
  parser.add_argument("--tiny", action="store_true", help="CPU smoke check of the script")
  parser.add_argument("--writer", choices=["transformers", "ttc_jax"], default="transformers")
  parser.add_argument("--import_one", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.import_one:
    print("RESULT " + json.dumps(import_one(args.import_one)), flush=True)
    return
  from ttc_jax.provenance import git_commit
  shapes = {"tiny": _TINY} if args.tiny else SHAPES
  writer = {"transformers": "transformers from_config + save_pretrained (random bf16, 4 GB shards)",
            "ttc_jax": "ttc_jax safetensors_io (random bf16, 4 GiB shards)"}[args.writer]
  results = {"git_commit": os.environ.get("BENCH_COMMIT") or git_commit(), "writer": writer, "shapes": {}}
  for name, hf in shapes.items():
    path = os.path.join(args.dir, name)
    write_s = (write_checkpoint_transformers if args.writer == "transformers" else write_checkpoint)(path, hf)
    log(f"{name}: checkpoint at {path} ({write_s:.1f} s to write)")
    proc = subprocess.run([sys.executable, __file__, "--out", args.out, "--import_one", path], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", ".")})
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not line:
      raise RuntimeError(f"import of {path} failed:\n{proc.stderr[-3000:]}")
    results["shapes"][name] = {"write_seconds": write_s, **json.loads(line[0][len("RESULT "):])}
    r = results["shapes"][name]
    log(f"{name}: {r['param_count'] / 1e9:.2f}B params in {r['seconds']:.1f} s ({r['gb_per_s']:.2f} GB/s), "
        f"peak RSS {r['peak_host_rss_bytes'] / 2**30:.2f} GiB, largest host buffer "
        f"{r['largest_host_buffer_bytes'] / 2**20:.0f} MiB, device {r['device']}")
  results["device"] = results["shapes"][next(iter(shapes))]["device"]
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=2)
  log(f"wrote {args.out}")


if __name__ == "__main__":
  main()
