"""Sampler throughput: ttc_jax `jit_sample` vs Hugging Face `generate` vs the memory-bandwidth roofline.

Work measured (the project's issue): a Llama-shaped model with random weights in
bf16, batch 16 / 64 / 256, prompt 256 tokens, 256 new tokens, sampling at
temperature 0.8 (top_p 1, no top-k), no early stop (every row produces all 256
tokens; checked). Tokens/s counts new tokens only: batch * 256 / wall time of the
whole call (prefill included, on both sides).

Roofline: decode is memory-bound. Per decode step t (context 256 + t) the floor
reads every bf16 weight once plus the K and V cache of the context filled so
far; floor time = sum over the 256 steps of bytes / measured bandwidth
(prefill not included; its compute floor is reported separately).

Each framework runs in its own process (they would fight over GPU memory):

  PYTHONPATH=. python3 bench/sampler.py --part all --out bench/results/sampler_<kind>.json

runs `--part jax`, `--part hf` and `--part report` in turn. The parts also run
alone (`--part jax --out jax.json`, ..., `--part report --inputs jax.json hf.json --out all.json`).
"""
import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time

PROMPT_LEN = 256
NEW_TOKENS = 256
TEMPERATURE = 0.8

# Llama-shaped, tied embeddings (as Llama 3.2 1B). rope_theta / norm_eps as Llama 3.
# "100m" is the shape suggested for the issue's "about 150M": it has 100.1M parameters.
SHAPES = {
    "100m": dict(vocab_size=32000, d_model=768, n_layers=12, n_heads=12, n_kv_heads=4, head_dim=64, d_ff=2048),
    "1.2b": dict(vocab_size=128256, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8, head_dim=64, d_ff=8192),
    # CPU smoke test of the script itself (not part of the benchmark).
    "tiny": dict(vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=128),
}
BENCH_SHAPES = ["100m", "1.2b"]
ROPE_THETA = 500_000.0
NORM_EPS = 1e-5


def log(*args):
  print(*args, flush=True)


def param_count(s: dict) -> int:
  """Exact count for tied embeddings (both implementations; checked against each tree)."""
  d, h = s["d_model"], s["head_dim"]
  per_layer = d * s["n_heads"] * h + 2 * d * s["n_kv_heads"] * h + s["n_heads"] * h * d + 3 * d * s["d_ff"] + 2 * d
  return s["vocab_size"] * d + s["n_layers"] * per_layer + d


def kv_bytes_per_position(s: dict) -> int:
  """bf16 K and V of one token, all layers."""
  return 2 * s["n_layers"] * s["n_kv_heads"] * s["head_dim"] * 2


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times), times


# ----------------------------------------------------------------------------------------------- JAX side


def jax_device_ceilings():
  """Device-to-device copy bandwidth (read + write bytes) and bf16 matmul rate, through JAX."""
  import jax
  import jax.numpy as jnp
  small = jax.default_backend() == "cpu"  # Smoke test only.
  n = 1 << (22 if small else 30)  # 1 Gi bf16 elements = 2 GiB, far larger than L2.
  x = jax.random.normal(jax.random.key(0), (n,), jnp.bfloat16)
  copy = jax.jit(lambda a: a * 2)  # One read, one write per element.
  copy(x).block_until_ready()
  t, _ = median_time(lambda: copy(x).block_until_ready(), 10)
  bandwidth = 2 * 2 * n / t
  del x
  m = 512 if small else 8192
  a = jax.random.normal(jax.random.key(1), (m, m), jnp.bfloat16)
  b = jax.random.normal(jax.random.key(2), (m, m), jnp.bfloat16)
  mm = jax.jit(lambda a, b: a @ b)
  mm(a, b).block_until_ready()
  t_mm, _ = median_time(lambda: mm(a, b).block_until_ready(), 10)
  return {"jax_copy_bandwidth_Bps": bandwidth, "jax_bf16_matmul_flops": 2 * m ** 3 / t_mm}


def kernel_breakdown(run, top: int = 40):
  """Runs `run` once under the JAX profiler; device kernel time grouped by HLO op / kernel name."""
  import glob
  import tempfile

  import jax
  from jax.profiler import ProfileData
  d = tempfile.mkdtemp()
  t0 = time.perf_counter()
  with jax.profiler.trace(d):
    run()
  wall = time.perf_counter() - t0
  path = glob.glob(os.path.join(d, "**", "*.xplane.pb"), recursive=True)[0]
  data = ProfileData.from_file(path)
  by_name, total_ns, lines_seen = {}, 0.0, set()
  for plane in data.planes:
    if not plane.name.startswith("/device:GPU"):
      continue
    lines = list(plane.lines)
    lines_seen.update(l.name for l in lines)
    streams = [l for l in lines if "Stream" in l.name] or lines
    for line in streams:
      for ev in line.events:
        stats = dict(ev.stats)
        key = str(stats.get("hlo_op", ev.name))
        entry = by_name.setdefault(key, {"ns": 0.0, "count": 0, "kernel": ev.name[:120]})
        entry["ns"] += ev.duration_ns
        entry["count"] += 1
        total_ns += ev.duration_ns
  rows = sorted(by_name.items(), key=lambda kv: -kv[1]["ns"])
  return {
      "wall_s": wall,
      "kernel_total_s": total_ns * 1e-9,
      "lines": sorted(lines_seen),
      "top": [{"op": k, "kernel": v["kernel"], "count": v["count"], "total_ms": v["ns"] * 1e-6} for k, v in rows[:top]],
  }


_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
                "f64": 8, "s64": 8, "u64": 8}


def large_copies(hlo_text: str, min_bytes: int = 1 << 20) -> dict:
  """Copy-like ops (copy, dynamic-slice, slice) of at least `min_bytes` in an optimized HLO module.

  Fusions count by their root op name as XLA prints it (e.g. `%copy.12 = bf16[...] fusion(...)`
  is not counted; `%dynamic-slice.3 = bf16[...] dynamic-slice(...)` is): what is counted is the
  ops that materialise a slice of a weight or cache buffer, which the decode loop should not do.
  """
  import re
  found = {}
  for m in re.finditer(r"= (\w+)\[([\d,]*)\][^ ]* (copy|dynamic-slice|slice)\(", hlo_text):
    dtype, dims, op = m.groups()
    n = _DTYPE_BYTES.get(dtype, 4) * math.prod(int(d) for d in dims.split(",") if d)
    if n >= min_bytes:
      entry = found.setdefault(op, {"count": 0, "bytes": 0})
      entry["count"] += 1
      entry["bytes"] += n
  return found


def device_memory() -> dict:
  """The device allocator's peak and current bytes in use (None where the backend keeps no stats)."""
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return {"peak_bytes_in_use": stats.get("peak_bytes_in_use"), "bytes_in_use": stats.get("bytes_in_use")}


def program_memory(compiled) -> dict:
  """What XLA reserves for one compiled program: arguments, outputs and temporaries (bytes)."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # Not every backend reports it.
    return {}
  if m is None:
    return {}
  total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
  return {"program_argument_bytes": m.argument_size_in_bytes, "program_output_bytes": m.output_size_in_bytes,
          "program_temp_bytes": m.temp_size_in_bytes, "program_total_bytes": total}


def run_jax(args, save) -> dict:
  import flax
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import numpy as np

  from ttc_jax.decode import STOP_LENGTH, SamplingConfig, jit_sample, prefill
  from ttc_jax.models import ModelConfig, Transformer
  from ttc_jax.models.flops import count_params, forward_flops_per_token, tree_param_count
  from ttc_jax.tokenization.steps import StopRule

  out = {"jax_version": jax.__version__, "flax_version": flax.__version__, "device": str(jax.devices()[0].device_kind),
         "backend": jax.default_backend(), "runs": [], "profiles": []}
  log(f"jax {jax.__version__} on {out['device']}")
  out.update(jax_device_ceilings())
  log(f"jax copy bandwidth {out['jax_copy_bandwidth_Bps'] / 1e12:.2f} TB/s, "
      f"bf16 matmul {out['jax_bf16_matmul_flops'] / 1e12:.0f} TFLOP/s")
  scfg = SamplingConfig(temperature=TEMPERATURE, top_p=1.0, max_new_tokens=NEW_TOKENS, stop_at_newline=False)
  for shape in args.shapes:
    s = SHAPES[shape]
    t0 = time.perf_counter()
    if args.hf_dir:  # An imported checkpoint in place of the native init (same shape, its own config).
      cfg, model, params = _imported(args.hf_dir)
    else:
      cfg = ModelConfig(**s, max_len=PROMPT_LEN + NEW_TOKENS, rope_theta=ROPE_THETA, norm_eps=NORM_EPS,
                        tie_embeddings=True, dtype="bfloat16")  # param_dtype stays float32 (master weights)...
      model = Transformer(cfg)
      params = nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))
      # ...and inference casts them to bf16, as a user serving the model would.
      params = jax.jit(lambda p: jax.tree.map(lambda x: x.astype(jnp.bfloat16), p), donate_argnums=0)(params)
    jax.block_until_ready(params)
    n_params = tree_param_count(params)
    assert n_params == count_params(cfg) == param_count(s), (n_params, count_params(cfg), param_count(s))
    log(f"[jax] {shape}: {n_params:,} params, init {time.perf_counter() - t0:.1f}s")
    for batch in args.batches:
      for impl, decode_impl in decode_variants(args):  # Adjacent, so a deadline never splits a pair.
        if decode_impl:  # Same parameters; only how decode steps read the cache differs.
          model = Transformer(dataclasses.replace(cfg, decode_attention_impl=decode_impl))
        if time.time() > args.deadline:
          log(f"[jax] deadline reached, skipping {shape} b{batch}")
          continue
        rng = np.random.default_rng(batch)
        prompts = jnp.asarray(rng.integers(0, s["vocab_size"], (batch, PROMPT_LEN)), jnp.int32)
        valid = jnp.ones((batch, PROMPT_LEN), bool)
        key = jax.random.key(batch)
        # eos / newline ids outside the vocabulary: no row stops before 256 tokens.
        fn = jit_sample(model, 1, scfg, StopRule.from_ids(model.cfg.vocab_size), 0)
        t0 = time.perf_counter()
        compiled = fn.lower(params, prompts, valid, key).compile()
        compile_s = time.perf_counter() - t0
        res = compiled(params, prompts, valid, key)  # Warm-up.
        lengths = np.asarray(res.lengths_B)
        reasons = np.asarray(res.stop_reason_B)
        tokens = np.asarray(res.tokens_BxN)
        assert (lengths == NEW_TOKENS).all() and (reasons == STOP_LENGTH).all(), (lengths, reasons)
        assert tokens.min() >= 0 and tokens.max() < s["vocab_size"]
        repeats = args.repeats
        t_total, times = median_time(lambda: jax.block_until_ready(compiled(params, prompts, valid, key)), repeats)
        # Prefill alone (same call the sampler makes), to split prefill from the decode loop.
        pf = jax.jit(lambda p, x, v: prefill(model, p, x, v, PROMPT_LEN + NEW_TOKENS))
        pf(params, prompts, valid)[0].block_until_ready()
        t_prefill, _ = median_time(lambda: jax.block_until_ready(pf(params, prompts, valid)), repeats)
        run = {"shape": shape, "impl": impl, "decode_attention_impl": model.cfg.decode_attention_impl,
               "batch": batch, "params": n_params, "compile_s": compile_s,
               "time_s": t_total, "times_s": times, "prefill_time_s": t_prefill,
               "tokens_per_s": batch * NEW_TOKENS / t_total,
               "decode_tokens_per_s": batch * NEW_TOKENS / max(t_total - t_prefill, 1e-9),
               "decode_step_ms": (t_total - t_prefill) / NEW_TOKENS * 1e3,
               "prefill_flops": batch * PROMPT_LEN * forward_flops_per_token(cfg, (PROMPT_LEN + 1) // 2),
               "lengths_all_256": True, "distinct_tokens": int(len(np.unique(tokens))),
               # Monotone over the process (JAX cannot reset it): rows run smallest first, so each
               # row's peak is its own unless an earlier row of a larger shape was higher.
               "device_peak_bytes": device_memory()["peak_bytes_in_use"], **program_memory(compiled),
               "hlo_large_copies": large_copies(compiled.as_text())}
        out["runs"].append(run)
        save(out)
        log(f"[jax {impl}] {shape} b{batch}: {run['tokens_per_s']:,.0f} tok/s  total {t_total * 1e3:.0f} ms  "
            f"prefill {t_prefill * 1e3:.0f} ms  step {run['decode_step_ms']:.2f} ms  compile {compile_s:.1f}s  "
            f"program {run.get('program_total_bytes', 0) / 2 ** 30:.2f} GiB  "
            f"peak {(run['device_peak_bytes'] or 0) / 2 ** 30:.2f} GiB  copies >= 1 MiB {run['hlo_large_copies']}")
        if (shape, batch) in args.profile:
          if args.dump_hlo:
            import gzip
            with gzip.open(os.path.join(args.dump_hlo, f"hlo_{impl}_{shape}_b{batch}.txt.gz"), "wt") as f:
              f.write(compiled.as_text())
          try:
            prof = kernel_breakdown(lambda: jax.block_until_ready(compiled(params, prompts, valid, key)))
            prof.update(shape=shape, impl=impl, batch=batch)
            out["profiles"].append(prof)
            save(out)
            log(f"  profile: wall {prof['wall_s'] * 1e3:.0f} ms, kernels {prof['kernel_total_s'] * 1e3:.0f} ms")
            for row in prof["top"][:12]:
              log(f"    {row['total_ms']:9.2f} ms  x{row['count']:<6d} {row['op'][:60]}  [{row['kernel'][:50]}]")
          except Exception as e:  # The profiler is a diagnostic; never lose the timings to it.
            log(f"  profile failed: {e!r}")
        del compiled, res
    del params
  return out


def decode_variants(args) -> list[tuple[str, str | None]]:
  """(row label, model.decode_attention_impl or None = the config's default) per variant to run."""
  choice = getattr(args, "decode_attention", None)  # Absent from callers that predate the option.
  if choice is None:
    return [(args.label, None)]
  impls = ["xla", "pallas"] if choice == "both" else [choice]
  return [(f"{args.label}+{impl}", impl) for impl in impls]


def _imported(model_dir: str):
  """(cfg, model, params) of a Hugging Face checkpoint loaded by `hf:` (bf16 weights as stored)."""
  import jax
  from ttc_jax.models import Transformer
  from ttc_jax.models.hf import load_hf_params, read_hf_config
  from ttc_jax.parallel import MeshConfig, make_mesh
  cfg, _ = read_hf_config(model_dir, dtype="bfloat16", param_dtype="bfloat16")
  params = load_hf_params(model_dir, cfg, make_mesh(MeshConfig(), jax.devices()[:1]))
  return cfg, Transformer(cfg), params


# ------------------------------------------------------------------------------------------------ HF side


def run_hf(args, save) -> dict:
  import inspect

  import torch
  import transformers
  from transformers import LlamaConfig, LlamaForCausalLM

  dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cpu: smoke test only.
  sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
  out = {"torch_version": torch.__version__, "transformers_version": transformers.__version__,
         "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "runs": []}
  # Copy bandwidth through torch (read + write bytes).
  if dev.type == "cuda":
    n = 1 << 30
    x = torch.randn(n, device=dev, dtype=torch.bfloat16)
    y = torch.empty_like(x)
    y.copy_(x)
    sync()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(10):
      start.record()
      y.copy_(x)
      end.record()
      sync()
      ts.append(start.elapsed_time(end) * 1e-3)
    out["torch_copy_bandwidth_Bps"] = 2 * 2 * n / statistics.median(ts)
    del x, y
  else:
    out["torch_copy_bandwidth_Bps"] = None
  log(f"torch {torch.__version__}, transformers {transformers.__version__} on {out['device']}; "
      f"copy bandwidth {(out['torch_copy_bandwidth_Bps'] or 0) / 1e12:.2f} TB/s")

  rope = ({"rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA}}
          if "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters else {"rope_theta": ROPE_THETA})
  for shape in args.shapes:
    s = SHAPES[shape]
    config = LlamaConfig(vocab_size=s["vocab_size"], hidden_size=s["d_model"], intermediate_size=s["d_ff"],
                         num_hidden_layers=s["n_layers"], num_attention_heads=s["n_heads"],
                         num_key_value_heads=s["n_kv_heads"], head_dim=s["head_dim"],
                         max_position_embeddings=2048, rms_norm_eps=NORM_EPS, tie_word_embeddings=True,
                         attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2, pad_token_id=0, **rope)
    torch.manual_seed(0)
    with dev:
      model = LlamaForCausalLM(config)
    model = model.to(dev, torch.bfloat16).eval()
    n_params = sum(p.numel() for p in model.parameters())  # Tied: the embedding counts once.
    assert n_params == param_count(s), (n_params, param_count(s))
    log(f"[hf] {shape}: {n_params:,} params, attention {model.config._attn_implementation}")
    for cache_impl in args.hf_cache:
      for batch in args.batches:
        if time.time() > args.deadline:
          log(f"[hf] deadline reached, skipping {shape} {cache_impl} b{batch}")
          continue
        g = torch.Generator(device=dev).manual_seed(batch)
        ids = torch.randint(0, s["vocab_size"], (batch, PROMPT_LEN), device=dev, generator=g)
        mask = torch.ones_like(ids)
        kw = dict(do_sample=True, temperature=TEMPERATURE, top_k=0, top_p=1.0, max_new_tokens=NEW_TOKENS,
                  min_new_tokens=NEW_TOKENS, pad_token_id=0)
        if cache_impl != "dynamic":
          kw["cache_implementation"] = cache_impl

        def gen():
          with torch.inference_mode():
            r = model.generate(input_ids=ids, attention_mask=mask, **kw)
          sync()
          return r

        try:
          t0 = time.perf_counter()
          r = gen()  # Warm-up (and, for the static cache, torch.compile).
          warm_s = time.perf_counter() - t0
          assert r.shape == (batch, PROMPT_LEN + NEW_TOKENS), r.shape
          t, times = median_time(gen, args.hf_repeats)
        except Exception as e:  # Record and go on (e.g. out of memory or a compile failure).
          log(f"[hf {cache_impl}] {shape} b{batch} failed: {e!r}"[:500])
          out["runs"].append({"shape": shape, "cache": cache_impl, "batch": batch, "error": repr(e)[:500]})
          continue
        run = {"shape": shape, "cache": cache_impl, "batch": batch, "params": n_params, "time_s": t,
               "times_s": times, "warmup_s": warm_s, "tokens_per_s": batch * NEW_TOKENS / t,
               "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if dev.type == "cuda" else None}
        out["runs"].append(run)
        save(out)
        log(f"[hf {cache_impl}] {shape} b{batch}: {run['tokens_per_s']:,.0f} tok/s  total {t * 1e3:.0f} ms  "
            f"warm-up {warm_s:.1f}s")
        if dev.type == "cuda":
          torch.cuda.empty_cache()
    del model
  return out


# ------------------------------------------------------------------------------------------------- report


def roofline(s: dict, batch: int, bandwidth: float) -> dict:
  weight_bytes = 2 * param_count(s)
  kv = kv_bytes_per_position(s)
  step_bytes = [weight_bytes + kv * batch * (PROMPT_LEN + t) for t in range(NEW_TOKENS)]
  floor = sum(step_bytes) / bandwidth
  # What this sampler reads by design: 256 model calls, each attending over the whole
  # fixed-size cache buffer (prompt + max_new_tokens slots), filled or not.
  whole = NEW_TOKENS * (weight_bytes + kv * batch * (PROMPT_LEN + NEW_TOKENS)) / bandwidth
  return {"weight_bytes": weight_bytes, "kv_bytes_per_position": kv, "decode_bytes": sum(step_bytes),
          "floor_s": floor, "roofline_tokens_per_s": batch * NEW_TOKENS / floor,
          "whole_buffer_floor_s": whole, "whole_buffer_tokens_per_s": batch * NEW_TOKENS / whole,
          "logits_bytes_per_step": batch * s["vocab_size"] * 4}


def load_part(spec: str) -> dict:
  """A part file; 'path:old=new,...' renames its JAX runs (to tell code versions apart)."""
  path, _, renames = spec.partition(":")
  part = json.load(open(path))
  names = dict(kv.split("=", 1) for kv in renames.split(",") if kv)
  for r in part.get("runs", []) + part.get("profiles", []):
    if "impl" in r:
      r["impl"] = names.get(r["impl"], r["impl"])
  part["source"] = os.path.basename(path)
  return part


def report(parts: list[dict], meta: dict) -> dict:
  """Merges part files (any number of JAX and HF parts; a later HF run of the same config wins)."""
  jxs = [p for p in parts if "jax_version" in p]
  hfs = [p for p in parts if "transformers_version" in p]
  jx = {"runs": [dict(r, source=p["source"] if "source" in p else None) for p in jxs for r in p["runs"]],
        "profiles": [q for p in jxs for q in p.get("profiles", [])]}
  hf = {"runs": [dict(r, source=p.get("source")) for p in hfs for r in p["runs"]]}
  jax_bw = max((p["jax_copy_bandwidth_Bps"] for p in jxs if p.get("jax_copy_bandwidth_Bps")), default=None)
  torch_bw = max((p["torch_copy_bandwidth_Bps"] for p in hfs if p.get("torch_copy_bandwidth_Bps")), default=None)
  bandwidth = max(b for b in (jax_bw, torch_bw) if b)
  matmul = max((p["jax_bf16_matmul_flops"] for p in jxs if p.get("jax_bf16_matmul_flops")), default=None)
  result = dict(meta)
  result.update({
      "device": (hfs or jxs)[0].get("device"),
      "versions": {k: v for p in parts for k, v in p.items() if k.endswith("_version")},
      "bandwidth_Bps": bandwidth,
      "bandwidth_source": "max over the part files of the JAX and torch device-to-device copies (read+write bytes)",
      "jax_copy_bandwidth_Bps": jax_bw, "torch_copy_bandwidth_Bps": torch_bw, "bf16_matmul_flops": matmul,
      "workload": {"prompt_len": PROMPT_LEN, "new_tokens": NEW_TOKENS, "temperature": TEMPERATURE, "top_p": 1.0,
                   "top_k": None, "early_stop": False, "weights": "random, bf16"},
      "shapes": {k: {**SHAPES[k], "params": param_count(SHAPES[k]), "tie_embeddings": True, "rope_theta": ROPE_THETA,
                     "norm_eps": NORM_EPS} for k in BENCH_SHAPES},
      "roofline_definition": ("decode only: sum over 256 steps of (bf16 weight bytes + K/V bytes of the filled "
                              "context 256+t) / bandwidth; prefill excluded (its compute floor is prefill_floor_s)"),
      "results": [], "jax_runs": jx["runs"], "hf_runs": hf["runs"], "profiles": jx["profiles"],
  })
  hf_by = {(r["shape"], r["cache"], r["batch"]): r for r in hf.get("runs", []) if "error" not in r}
  for r in jx.get("runs", []):
    s = SHAPES[r["shape"]]
    roof = roofline(s, r["batch"], bandwidth)
    row = {"shape": r["shape"], "impl": r["impl"], "decode_attention_impl": r.get("decode_attention_impl"),
           "batch": r["batch"], "params": r["params"],
           "ttc_jax_tokens_per_s": r["tokens_per_s"], "ttc_jax_time_s": r["time_s"],
           "ttc_jax_compile_s": r["compile_s"], "ttc_jax_prefill_s": r["prefill_time_s"],
           "ttc_jax_decode_step_ms": r["decode_step_ms"], "ttc_jax_decode_tokens_per_s": r["decode_tokens_per_s"],
           **roof,
           "floor_step_ms_mean": roof["floor_s"] / NEW_TOKENS * 1e3,
           "fraction_of_roofline": r["tokens_per_s"] / roof["roofline_tokens_per_s"],
           "decode_fraction_of_roofline": r["decode_tokens_per_s"] / roof["roofline_tokens_per_s"],
           "prefill_floor_s": r["prefill_flops"] / matmul if matmul else None, "source": r.get("source"),
           "device_peak_bytes": r.get("device_peak_bytes"), "program_total_bytes": r.get("program_total_bytes"),
           "hlo_large_copies": r.get("hlo_large_copies")}
    for cache in ("dynamic", "static"):
      h = hf_by.get((r["shape"], cache, r["batch"]))
      if h:
        row[f"hf_{cache}_tokens_per_s"] = h["tokens_per_s"]
        row[f"hf_{cache}_time_s"] = h["time_s"]
        row[f"speedup_vs_hf_{cache}"] = r["tokens_per_s"] / h["tokens_per_s"]
    result["results"].append(row)
  return result


def table(result: dict) -> str:
  lines = [f"device: {result['device']}  bandwidth {result['bandwidth_Bps'] / 1e12:.2f} TB/s  "
           f"commit {result.get('commit', '?')[:10]}{' (dirty)' if result.get('dirty') else ''}",
           f"{'shape':6s} {'impl':22s} {'B':>4s} {'jax tok/s':>10s} {'HF dyn':>9s} {'x dyn':>6s} {'HF stat':>9s} "
           f"{'x stat':>6s} {'roof tok/s':>10s} {'%roof':>6s} {'%roof dec':>9s} {'step ms':>8s} {'floor ms':>8s} "
           f"{'compile':>7s} {'prog GiB':>8s}"]
  gib = lambda n: "-" if n is None else f"{n / 2 ** 30:.2f}"
  for r in result["results"]:
    f = lambda k, fmt: format(r[k], fmt) if r.get(k) is not None else "-"
    lines.append(f"{r['shape']:6s} {r['impl'][:22]:22s} {r['batch']:4d} {r['ttc_jax_tokens_per_s']:10,.0f} "
                 f"{f('hf_dynamic_tokens_per_s', '9,.0f'):>9s} {f('speedup_vs_hf_dynamic', '6.1f'):>6s} "
                 f"{f('hf_static_tokens_per_s', '9,.0f'):>9s} {f('speedup_vs_hf_static', '6.1f'):>6s} "
                 f"{r['roofline_tokens_per_s']:10,.0f} {100 * r['fraction_of_roofline']:6.1f} "
                 f"{100 * r['decode_fraction_of_roofline']:9.1f} {r['ttc_jax_decode_step_ms']:8.2f} "
                 f"{r['floor_step_ms_mean']:8.2f} {r['ttc_jax_compile_s']:7.1f} {gib(r.get('program_total_bytes')):>8s}")
  return "\n".join(lines)


def git_meta() -> dict:
  def git(*a):
    try:
      return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
      return None
  commit = os.environ.get("BENCH_COMMIT") or git("rev-parse", "HEAD")
  dirty = os.environ.get("BENCH_DIRTY")
  if dirty is None:
    status = git("status", "--porcelain")
    dirty = None if status is None else bool(status)
  else:
    dirty = dirty not in ("0", "false", "")
  return {"commit": commit, "dirty": dirty, "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--part", choices=["all", "jax", "hf", "report"], default="all")
  p.add_argument("--shapes", nargs="+", default=BENCH_SHAPES, choices=list(SHAPES))
  p.add_argument("--batches", nargs="+", type=int, default=[16, 64, 256])
  p.add_argument("--label", default="ttc_jax", help="name of the JAX runs in the results (e.g. with XLA_FLAGS set)")
  p.add_argument("--decode-attention", choices=["xla", "pallas", "both"], default=None,
                 help="JAX part: model.decode_attention_impl of the runs (both: each config twice, rows labelled "
                      "<label>+xla and <label>+pallas); default: the config's own (auto)")
  p.add_argument("--hf-dir", default=None,
                 help="JAX part: load this Hugging Face checkpoint (of the one --shapes shape) instead of a fresh init")
  p.add_argument("--hf-cache", nargs="+", default=["dynamic"], choices=["dynamic", "static"])
  p.add_argument("--repeats", type=int, default=5, help="timed runs per JAX config (median reported)")
  p.add_argument("--hf-repeats", type=int, default=2, help="timed runs per HF config (median reported)")
  p.add_argument("--profile", nargs="*", default=[], help="shape:batch pairs to profile (kernel breakdown)")
  p.add_argument("--dump-hlo", default=None, help="folder for the optimized HLO of profiled configs")
  p.add_argument("--budget-s", type=float, default=None, help="skip configs that would start after this many seconds")
  p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
  p.add_argument("--inputs", nargs="*", default=[],
                 help="part files; 'path:old=new,...' renames JAX runs (impl old becomes new)")
  p.add_argument("--note", default=None, help="free text stored in the report")
  p.add_argument("--out", required=True)
  args = p.parse_args()
  args.profile = {(x.split(":")[0], int(x.split(":")[1])) for x in args.profile}
  if args.deadline is None:
    args.deadline = time.time() + args.budget_s if args.budget_s else math.inf

  def save(result):  # After every config: a run stopped at its time limit keeps what it measured.
    with open(args.out, "w") as f:
      json.dump(result, f, indent=1)

  if args.part == "jax":
    result = run_jax(args, save)
  elif args.part == "hf":
    result = run_hf(args, save)
  elif args.part == "report":
    result = report([load_part(f) for f in args.inputs], dict(git_meta(), note=args.note))
    log(table(result))
  else:
    stem = os.path.splitext(args.out)[0]
    common = ["--shapes", *args.shapes, "--batches", *map(str, args.batches), "--repeats", str(args.repeats),
              "--deadline", str(args.deadline)]
    jax_cmd = [sys.executable, __file__, "--part", "jax", "--label", args.label, "--out", stem + "_jax.json", *common]
    if args.decode_attention:
      jax_cmd += ["--decode-attention", args.decode_attention]
    if args.profile:
      jax_cmd += ["--profile", *[f"{s}:{b}" for s, b in sorted(args.profile)]]
    if args.dump_hlo:
      jax_cmd += ["--dump-hlo", args.dump_hlo]
    subprocess.run(jax_cmd, check=True)
    subprocess.run([sys.executable, __file__, "--part", "hf", "--hf-cache", *args.hf_cache, "--hf-repeats",
                    str(args.hf_repeats), "--out", stem + "_hf.json", *common], check=True)
    result = report([json.load(open(stem + "_jax.json")), json.load(open(stem + "_hf.json"))], git_meta())
    log(table(result))
  save(result)


if __name__ == "__main__":
  main()
