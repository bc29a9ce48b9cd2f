"""Decode-attention kernel on its own: correctness of the compiled kernel, then its speed against XLA's.

One decode step's attention over a stack of layers' caches, at the issue's 1.2B shape
(kv heads 8, query heads 32, head size 64, 512 slots), batch 256, every row filled to its
own length drawn uniformly from 256..512 (what a decode of 256 tokens after a 256-token
prompt averages over its steps). Compared:

  xla     `attention.attend_cached`: scores all 512 slots of every row and masks the rest.
  pallas  `decode_attention.attend_cached_pallas`: reads each row up to its length, for a
          few block sizes and warp counts.

With --cascade, also the shared-prefix case of best-of-N (`prefix_attention`): N = 256 rows of
one problem read a prompt prefix of 128 or 1,024 tokens plus their own suffixes, for T = 1 (a
decode step) and T = 32 (a PRM chunk):

  xla     `prefix_attention.attend_cascade`: one matmul per kv head for the prefix, but its
          [rows, slots] scores are written and re-read through the softmax in float32.
  pallas  `decode_attention.attend_cascade_pallas`: prefix and suffix read by the kernel, no
          score matrix stored.

First the check (bf16 and float32, the kernel's slots past each length poisoned with NaN
so a read of one would show): the max abs error against XLA is printed, written, and
asserted (bf16 2e-2, float32 1e-4). Only then the timing: median time per layer, the bytes
each implementation must read, and the fraction of the measured copy bandwidth that is.

  PYTHONPATH=. python3 bench/decode_attention.py --out /tmp/decode_attention.json
"""
import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.models import attention, decode_attention, prefix_attention

K_HEADS, GROUPS, HEAD, SLOTS = 8, 4, 64, 512
TOLERANCE = {"bfloat16": 2e-2, "float32": 1e-4}


def log(*args):
  print(*args, flush=True)


def make_case(batch: int, layers: int, dtype, seed: int = 0):
  """Per-layer queries, new keys / values, caches (NaN past each row's length) and the clean caches."""
  rng = np.random.default_rng(seed)
  lengths = rng.integers(SLOTS // 2, SLOTS + 1, batch)
  filled = np.arange(SLOTS)[None] < lengths[:, None]
  key = jax.random.key(seed)
  normal = lambda i, shape: jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)
  q = [normal(5 * i, (batch, 1, K_HEADS * GROUPS, HEAD)).astype(dtype) for i in range(layers)]
  new_k = [normal(5 * i + 1, (batch, 1, K_HEADS, HEAD)).astype(dtype) for i in range(layers)]
  new_v = [normal(5 * i + 2, (batch, 1, K_HEADS, HEAD)).astype(dtype) for i in range(layers)]
  cache_k = [normal(5 * i + 3, (batch, K_HEADS, SLOTS, HEAD)).astype(dtype) for i in range(layers)]
  cache_v = [normal(5 * i + 4, (batch, K_HEADS, SLOTS, HEAD)).astype(dtype) for i in range(layers)]
  visible = jnp.asarray(filled)[:, None, :]
  self_mask = jnp.ones((batch, 1, 1), bool)
  return dict(q=q, new_k=new_k, new_v=new_v, cache_k=cache_k, cache_v=cache_v, visible=visible,
              self_mask=self_mask, lengths=lengths, filled=jnp.asarray(filled))


def layers_fn(attend, layers: int, **kw):
  """One decode step's attention over `layers` layers (each its own buffers), as the model runs them."""
  def run(c):
    return [attend(c["q"][i], c["new_k"][i], c["new_v"][i], c["self_mask"], c["cache_k"][i], c["cache_v"][i],
                   c["visible"], scale=HEAD ** -0.5, **kw) for i in range(layers)]
  return jax.jit(run)


def check(batch: int, dtype) -> dict:
  """Max abs error of the compiled kernel (through the model's entry point) against XLA, NaN past the lengths.

  Both sides' float32 matmuls at full precision (XLA may otherwise use TF32 on GPUs).
  """
  c = make_case(batch, 1, dtype, seed=1)
  poisoned = dict(c, cache_k=[jnp.where(c["filled"][:, None, :, None], x, jnp.nan) for x in c["cache_k"]],
                  cache_v=[jnp.where(c["filled"][:, None, :, None], x, jnp.nan) for x in c["cache_v"]])
  with jax.default_matmul_precision("highest"):
    want = layers_fn(attention.attend_cached, 1)(c)[0]
    got = layers_fn(decode_attention.attend_cached_pallas, 1)(poisoned)[0]
  err = float(jnp.max(jnp.abs(got.astype(jnp.float32) - want.astype(jnp.float32))))
  name = jnp.dtype(dtype).name
  result = {"dtype": name, "batch": batch, "max_abs_error": err, "tolerance": TOLERANCE[name],
            "finite": bool(jnp.isfinite(got.astype(jnp.float32)).all()),
            "max_abs_reference": float(jnp.max(jnp.abs(want.astype(jnp.float32))))}
  result["ok"] = result["finite"] and err <= TOLERANCE[name]
  log(f"check {name} B={batch}: max abs error {err:.3e} (tolerance {TOLERANCE[name]}), "
      f"finite {result['finite']}: {'ok' if result['ok'] else 'FAILED'}")
  return result


def make_cascade_case(prompt: int, t: int, layers: int, batch: int, dtype, seed: int = 0):
  """`make_case`'s suffix caches plus one problem's prefix of `prompt` tokens and T new tokens per row."""
  c = make_case(batch, layers, dtype, seed)
  key = jax.random.key(seed + 100)
  normal = lambda i, shape: jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32).astype(dtype)
  c.update(q=[normal(4 * i, (batch, t, K_HEADS * GROUPS, HEAD)) for i in range(layers)],
           new_k=[normal(4 * i + 1, (batch, t, K_HEADS, HEAD)) for i in range(layers)],
           new_v=[normal(4 * i + 2, (batch, t, K_HEADS, HEAD)) for i in range(layers)],
           prefix_k=[normal(4 * i + 3, (1, K_HEADS, prompt, HEAD)) for i in range(layers)],
           prefix_v=[normal(4 * i + 3, (1, K_HEADS, prompt, HEAD)) * 0.5 for i in range(layers)],
           prefix_valid=jnp.ones((1, prompt), bool), self_mask=jnp.tril(jnp.ones((batch, t, t), bool)))
  return c


def cascade_fn(impl: str, layers: int):
  """One call's attention over `layers` layers with a shared prefix, by `impl`."""
  def run(c):
    out = []
    for i in range(layers):
      args = (c["q"][i], c["new_k"][i], c["new_v"][i], c["self_mask"], c["cache_k"][i], c["cache_v"][i],
              c["visible"], c["prefix_k"][i], c["prefix_v"][i])
      if impl == "xla":
        out.append(prefix_attention.attend_cascade(*args, c["prefix_valid"][:, None, None], scale=HEAD ** -0.5))
      else:
        out.append(decode_attention.attend_cascade_pallas(*args, c["prefix_valid"], scale=HEAD ** -0.5))
    return out
  return jax.jit(run)


def cascade(args, out, save):
  """The shared-prefix rows: check the kernel against XLA (bf16), then time both per prompt length and T."""
  for prompt in args.prompts:
    for t in (1, 32):
      c = make_cascade_case(prompt, t, 1, args.batch, jnp.bfloat16, seed=2)
      with jax.default_matmul_precision("highest"):
        want, got = cascade_fn("xla", 1)(c)[0], cascade_fn("pallas", 1)(c)[0]
      err = float(jnp.max(jnp.abs(got.astype(jnp.float32) - want.astype(jnp.float32))))
      row = {"prompt": prompt, "t": t, "max_abs_error_bf16": err, "ok": err <= TOLERANCE["bfloat16"]}
      if row["ok"]:
        c = make_cascade_case(prompt, t, args.layers, args.batch, jnp.bfloat16)
        for impl in ("xla", "pallas"):
          row[f"{impl}_ms_per_layer"] = median_ms(cascade_fn(impl, args.layers), c, args.repeats) / args.layers
      out["cascade"].append(row)
      save()
      log(f"cascade prompt {prompt:5d} T={t:3d}: error {err:.2e} {'ok' if row['ok'] else 'FAILED'}; ms/layer "
          f"xla {row.get('xla_ms_per_layer', float('nan')):.4f} pallas {row.get('pallas_ms_per_layer', float('nan')):.4f}")


def median_ms(fn, arg, repeats: int) -> float:
  jax.block_until_ready(fn(arg))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(arg))
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3


def copy_bandwidth() -> float:
  """Device-to-device copy bandwidth (read + write bytes), as bench/sampler.py measures it."""
  n = 1 << (16 if jax.default_backend() == "cpu" else 28)
  x = jnp.ones((n,), jnp.bfloat16)
  f = jax.jit(lambda a: a * 2)
  ms = median_ms(f, x, 10)
  return 2 * 2 * n / (ms * 1e-3)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--layers", type=int, default=16, help="layers per timed call (each its own cache buffers)")
  p.add_argument("--repeats", type=int, default=20)
  p.add_argument("--configs", nargs="+", default=["64:4:2", "32:4:2", "128:4:2", "64:8:2", "64:4:3"],
                 help="pallas settings to time, block_k:num_warps:num_stages")
  p.add_argument("--cascade", action="store_true", help="also the shared-prefix rows (best-of-N's layout)")
  p.add_argument("--cascade-only", action="store_true", help="only the shared-prefix rows")
  p.add_argument("--prompts", type=int, nargs="+", default=[128, 1024], help="prefix lengths for --cascade")
  p.add_argument("--out", required=True)
  args = p.parse_args()
  out = {"jax_version": jax.__version__, "device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
         "shape": {"batch": args.batch, "kv_heads": K_HEADS, "query_heads": K_HEADS * GROUPS, "head_size": HEAD,
                   "slots": SLOTS, "layers": args.layers, "lengths": f"uniform {SLOTS // 2}..{SLOTS}"},
         "checks": [], "timings": [], "cascade": []}
  save = lambda: json.dump(out, open(args.out, "w"), indent=1)
  log(f"jax {jax.__version__} on {out['device']}")
  if jax.default_backend() == "cpu":  # A smoke test of the script itself (interpret mode is slow).
    args.batch, args.layers, args.repeats, args.configs, args.prompts = 4, 2, 2, args.configs[:1], [32]
    out["shape"].update(batch=args.batch, layers=args.layers)
  if args.cascade or args.cascade_only:
    cascade(args, out, save)
    if args.cascade_only:
      return
  for dtype in (jnp.bfloat16, jnp.float32):
    out["checks"].append(check(args.batch, dtype))
    save()
  if not all(c["ok"] for c in out["checks"]):
    raise SystemExit("the compiled kernel disagrees with XLA: not timing it")

  out["copy_bandwidth_Bps"] = bw = copy_bandwidth()
  c = make_case(args.batch, args.layers, jnp.bfloat16)
  kv_slot_bytes = 2 * K_HEADS * HEAD * 2  # bf16 K and V of one slot, one layer.
  read_bytes = {"xla": args.layers * args.batch * SLOTS * kv_slot_bytes,
                "pallas": args.layers * int(c["lengths"].sum()) * kv_slot_bytes}
  out.update(kv_read_bytes=read_bytes, copy_bandwidth_note="read + write bytes of a device-to-device copy")
  log(f"copy bandwidth {bw / 1e12:.2f} TB/s; K/V bytes per call: xla {read_bytes['xla'] / 1e9:.2f} GB, "
      f"pallas {read_bytes['pallas'] / 1e9:.2f} GB (the filled slots)")
  runs = [("xla", {}, layers_fn(attention.attend_cached, args.layers))]
  for spec in args.configs:
    block_k, warps, stages = map(int, spec.split(":"))
    runs.append(("pallas", dict(block_k=block_k, num_warps=warps, num_stages=stages),
                 layers_fn(functools.partial(decode_attention.attend_cached_pallas, block_k=block_k,
                                             num_warps=warps, num_stages=stages), args.layers)))
  for impl, settings, fn in runs:
    try:
      ms = median_ms(fn, c, args.repeats)
    except Exception as e:  # A launch setting Triton rejects: record it, time the rest.
      log(f"{impl} {settings}: failed {e!r}"[:400])
      out["timings"].append({"impl": impl, **settings, "error": repr(e)[:400]})
      save()
      continue
    floor_ms = read_bytes[impl] / bw * 1e3
    row = {"impl": impl, **settings, "ms_per_call": ms, "ms_per_layer": ms / args.layers,
           "kv_read_floor_ms": floor_ms, "fraction_of_copy_bandwidth": floor_ms / ms,
           "xla_bytes_floor_ms": read_bytes["xla"] / bw * 1e3}
    out["timings"].append(row)
    save()
    log(f"{impl:6s} {str(settings):50s} {ms / args.layers:8.4f} ms/layer  floor {floor_ms / args.layers:8.4f}  "
        f"{100 * row['fraction_of_copy_bandwidth']:5.1f}% of copy bandwidth")
  save()


if __name__ == "__main__":
  main()
