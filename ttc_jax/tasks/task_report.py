"""Prints the difficulty mix and token lengths of generated problems (justifies seq_len).

  python -m ttc_jax.tasks.task_report --n=2000
"""

from __future__ import annotations

import argparse
import collections

from ttc_jax.tasks import examples, synthetic
from ttc_jax.tasks.tokenizer import load_tokenizer


def report(cfg: synthetic.TaskConfig, n: int) -> str:
  problems = synthetic.generate_splits(cfg, {"train": n})["train"]
  tok = load_tokenizer()
  # Example length as trained: bos + prompt + solution + eos.
  lengths = sorted(len(examples.encode_example(tok, synthetic.prompt_text(p), p.solution)[0])
                   for p in problems)

  def dist(key):
    counts = collections.Counter(key(p) for p in problems)
    return "  ".join(f"{k}: {v}" for k, v in sorted(counts.items()))

  return "\n".join([
      f"{n} train problems of {cfg}",
      f"num_steps    {dist(lambda p: p.num_steps)}",
      f"max_operand  {dist(lambda p: p.max_operand)}",
      f"ops used     {dist(lambda p: p.ops)}",
      f"tokens (bos+prompt+solution+eos): mean {sum(lengths) / n:.1f}  "
      f"p50 {lengths[n // 2]}  p99 {lengths[int(n * 0.99)]}  max {lengths[-1]}  "
      f"(DEFAULT_SEQ_LEN {examples.DEFAULT_SEQ_LEN})",
  ])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=2000)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  print(report(synthetic.TaskConfig(seed=args.seed), args.n))


if __name__ == "__main__":
  main()
