"""Evaluation over the data axis: sampler throughput on 1, 2, ... N devices of one host, same samples.

Work measured: `decode.generate` (what sample_solutions, label_rollouts and the policy's
evaluation call) on a Llama-shaped model with random bf16 weights, `--prompts` prompts of 128
tokens, `--samples` samples each, `--batch_size` prompts per sampler call, 256 new tokens at
temperature 1 with no stop token in the vocabulary (every row produces all tokens). For each device count the
mesh is (data=n) over the first n devices, the rows of each call are split over it
(`parallel.batches`), and the timed pass follows a compiling pass. Reported per device count:
new tokens/s, speed-up over one device, and how many prompts' samples equal the one-device run
(bf16 on GPUs may round a few rows differently when each device holds fewer rows; equal on CPU).

  PYTHONPATH=. python3 bench/eval_mesh.py --shape 100m --out bench/results/eval_mesh_<host>.json
  # CPU smoke test of the script: 8 fake devices, a tiny model
  XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu PYTHONPATH=. \\
      python3 bench/eval_mesh.py --shape tiny --prompts 16 --max_new_tokens 8 --out /tmp/eval_mesh.json
"""
import argparse
import json
import time

from bench.sampler import NORM_EPS, ROPE_THETA, SHAPES, git_meta, log

PROMPT_LEN = 128


def device_counts(total: int) -> list[int]:
  """1, 2, 4, ... up to every device (powers of two, and the total)."""
  counts = [1]
  while counts[-1] * 2 <= total:
    counts.append(counts[-1] * 2)
  return counts if counts[-1] == total else counts + [total]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--shape", choices=sorted(SHAPES), default="100m")
  parser.add_argument("--prompts", type=int, default=256)
  parser.add_argument("--samples", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=64, help="prompts per sampler call")
  parser.add_argument("--max_new_tokens", type=int, default=256)
  parser.add_argument("--out", required=True)
  args = parser.parse_args()

  import jax
  import jax.numpy as jnp
  import numpy as np

  from ttc_jax import parallel
  from ttc_jax.decode.generate import generate_from_ids
  from ttc_jax.decode.sampling import SamplingConfig
  from ttc_jax.models import ModelConfig, Transformer

  from ttc_jax.tokenization.steps import StopRule

  class RandomTokens:  # What the sampler reads of a tokenizer.
    pad_id = 0

    def decode(self, ids):
      return " ".join(map(str, ids))

  class NoStops:  # Stop ids outside the vocabulary: every row samples all max_new_tokens.
    def rule(self, tokenizer, vocab_size):
      return StopRule.from_ids(vocab_size)

  cfg = ModelConfig(**SHAPES[args.shape], max_len=PROMPT_LEN + args.max_new_tokens, rope_theta=ROPE_THETA,
                    norm_eps=NORM_EPS, dtype="bfloat16")
  model = Transformer(cfg)
  rng = np.random.RandomState(0)
  prompts = [rng.randint(3, cfg.vocab_size, size=PROMPT_LEN).tolist() for _ in range(args.prompts)]
  sampling = SamplingConfig(temperature=1.0, max_new_tokens=args.max_new_tokens, stop_at_newline=False)
  runs, reference = [], None
  for n in device_counts(jax.device_count()):
    mesh = parallel.make_mesh(parallel.MeshConfig(data=n), jax.devices()[:n])
    params, _ = parallel.sharded_init(lambda key: model.init(key, jnp.zeros((1, 8), jnp.int32)), mesh,
                                      jax.random.key(0))
    params = jax.jit(lambda p: jax.tree.map(lambda x: x.astype(jnp.bfloat16), p))(params)  # Served in bf16.

    def sample():
      with jax.set_mesh(mesh):
        return generate_from_ids(model, params, RandomTokens(), prompts, jax.random.key(1), num_samples=args.samples,
                                 cfg=sampling, batch_size=args.batch_size, buckets=(PROMPT_LEN,), step_format=NoStops())

    sample()  # Compiles.
    start = time.perf_counter()
    out = sample()
    seconds = time.perf_counter() - start
    tokens = sum(g.num_tokens for gens in out for g in gens)
    ids = [[g.token_ids for g in gens] for gens in out]
    reference = reference or ids
    runs.append({"devices": n, "seconds": seconds, "new_tokens": tokens, "tokens_per_s": tokens / seconds,
                 "prompts_equal_to_one_device": sum(a == b for a, b in zip(ids, reference))})
    log(f"{n} device(s): {tokens / seconds:,.0f} new tokens/s, "
        f"{runs[-1]['prompts_equal_to_one_device']}/{args.prompts} prompts as on one device")
  for r in runs:
    r["speedup"] = r["tokens_per_s"] / runs[0]["tokens_per_s"]
  result = {**git_meta(), "device": jax.devices()[0].device_kind, "platform": jax.default_backend(),
            "shape": args.shape, "prompts": args.prompts, "samples": args.samples, "batch_size": args.batch_size,
            "prompt_len": PROMPT_LEN, "max_new_tokens": args.max_new_tokens, "runs": runs}
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  log(f"-> {args.out}")


if __name__ == "__main__":
  main()
