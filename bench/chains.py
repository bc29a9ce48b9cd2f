"""Revision-chain sampling with the question stored once per problem vs a copy in every row.

Work measured: one revision step of `revise.chains.run_chains` after attempt 0, at the
sampler. P questions of Q tokens, N chains each (P * N = --rows rows a call), every row's
rest of R tokens (its previous attempts and "Solution:"), --new-tokens new tokens.
  shared:   `decode.sampler.jit_sample_after_prefix` (run_chains(shared_prefix=True)): each
            question prefilled once into a `SharedPrefix`, each row's rest into its own slots.
  unshared: `decode.sampler.jit_sample` with one sample of each whole prompt, Q + R tokens
            (run_chains(shared_prefix=False)): every row holds and reads the question.
A Llama-shaped model (`bench/sampler.py` SHAPES) with random weights in bf16, random token
ids, temperature 0.8; eos / newline ids outside the vocabulary, so every row samples all
--new-tokens (checked). Compile is timed apart, then one warm-up call and the median of
--repeats calls. Each configuration records both programs' memory (arguments, outputs,
temporaries) and the fraction of sampled tokens the two agree on (bf16: summation order
differs, so rows drift apart once a near-tie flips; float32 equality is tests/test_chains_shared_prefix.py).

  PYTHONPATH=. python3 bench/chains.py --out chains.json                # the benchmark (GPU)
  PYTHONPATH=. python3 bench/chains.py --smoke --out /tmp/chains.json   # CPU test of this script
"""
import argparse
import json
import time

from bench.sampler import NORM_EPS, ROPE_THETA, SHAPES, git_meta, log, median_time, program_memory

TEMPERATURE = 0.8


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--shape", default="100m", choices=sorted(SHAPES))
  p.add_argument("--question-tokens", type=int, nargs="+", default=[256, 1024], help="Q: the shared question")
  p.add_argument("--rest-tokens", type=int, default=384, help="R: a row's previous attempts and header")
  p.add_argument("--chains", type=int, nargs="+", default=[4, 16], help="N: chains per question")
  p.add_argument("--rows", type=int, default=64, help="rows a call (P = rows / N questions)")
  p.add_argument("--new-tokens", type=int, default=128)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--budget-s", type=float, default=540.0, help="skip configurations started after this")
  p.add_argument("--smoke", action="store_true", help="tiny shape and sizes (CPU test of the script)")
  p.add_argument("--out", required=True)
  args = p.parse_args(argv)
  if args.smoke:
    args.shape, args.question_tokens, args.rest_tokens, args.chains = "tiny", [32], 16, [2]
    args.rows, args.new_tokens, args.repeats = 4, 8, 1
  return args


def _timed_call(fn, *inputs, repeats: int) -> tuple[dict, object]:
  t0 = time.perf_counter()
  compiled = fn.lower(*inputs).compile()
  compile_s = time.perf_counter() - t0
  out = compiled(*inputs)  # Warm-up.
  t, times = median_time(lambda: compiled(*inputs).tokens_BxN.block_until_ready(), repeats)
  return {"time_s": t, "times_s": times, "compile_s": compile_s, **program_memory(compiled)}, out


def run(args) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import flax.linen as nn

  from ttc_jax.decode import STOP_LENGTH, SamplingConfig
  from ttc_jax.decode.sampler import jit_sample, jit_sample_after_prefix
  from ttc_jax.models import ModelConfig, Transformer
  from ttc_jax.tokenization.steps import StopRule

  start = time.time()
  s = SHAPES[args.shape]
  longest = max(args.question_tokens) + args.rest_tokens + args.new_tokens
  cfg = ModelConfig(**s, max_len=longest, rope_theta=ROPE_THETA, norm_eps=NORM_EPS, tie_embeddings=True,
                    dtype="bfloat16")  # As bench/sampler.py builds it.
  model = Transformer(cfg)
  params = nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))
  params = jax.jit(lambda p: jax.tree.map(lambda x: x.astype(jnp.bfloat16), p), donate_argnums=0)(params)
  scfg = SamplingConfig(temperature=TEMPERATURE, max_new_tokens=args.new_tokens)
  stop = StopRule.from_ids(cfg.vocab_size)  # No stop inside the vocabulary: every row runs all new tokens.
  result = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(), "shape": args.shape,
            "rows": args.rows, "rest_tokens": args.rest_tokens, "new_tokens": args.new_tokens,
            "temperature": TEMPERATURE, **git_meta(), "configurations": []}
  for q_len in args.question_tokens:
    for n in args.chains:
      if time.time() - start > args.budget_s:
        log(f"budget reached: skipping Q={q_len} N={n}")
        continue
      p = args.rows // n
      rng = np.random.default_rng(q_len * 1000 + n)
      question = rng.integers(3, cfg.vocab_size, (p, q_len)).astype(np.int32)
      rest = rng.integers(3, cfg.vocab_size, (p * n, args.rest_tokens)).astype(np.int32)
      whole = np.concatenate([np.repeat(question, n, axis=0), rest], axis=1)
      key = jax.random.key(n)
      shared, out_shared = _timed_call(jit_sample_after_prefix(model, scfg, stop, 0), params, question,
                                       np.ones(question.shape, bool), rest, np.ones(rest.shape, bool), key,
                                       repeats=args.repeats)
      unshared, out_unshared = _timed_call(jit_sample(model, 1, scfg, stop, 0), params, whole,
                                           np.ones(whole.shape, bool), key, repeats=args.repeats)
      for out in (out_shared, out_unshared):
        assert (np.asarray(out.lengths_B) == args.new_tokens).all()
        assert (np.asarray(out.stop_reason_B) == STOP_LENGTH).all()
      agree = float(np.mean(np.asarray(out_shared.tokens_BxN) == np.asarray(out_unshared.tokens_BxN)))
      row = {"question_tokens": q_len, "chains": n, "questions_per_call": p, "shared": shared,
             "unshared": unshared, "speedup": unshared["time_s"] / shared["time_s"],
             "memory_ratio": (shared.get("program_total_bytes", 0) / unshared["program_total_bytes"]
                              if unshared.get("program_total_bytes") else None),
             "token_agreement": agree}
      result["configurations"].append(row)
      log(f"Q={q_len} R={args.rest_tokens} N={n} P={p}: shared {shared['time_s']:.3f}s, unshared "
          f"{unshared['time_s']:.3f}s ({row['speedup']:.2f}x); program memory ratio {row['memory_ratio']}; "
          f"tokens agree {agree:.2f}")
      with open(args.out, "w") as f:  # After every configuration: a stopped run keeps what it measured.
        json.dump(result, f, indent=1)
  return result


def main(argv=None):
  args = parse_args(argv)
  result = run(args)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
