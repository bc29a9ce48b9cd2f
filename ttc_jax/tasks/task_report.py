"""Prints the difficulty mix and token lengths of generated problems (justifies seq_len).

  python -m ttc_jax.tasks.task_report --n=2000
  python -m ttc_jax.tasks.task_report --task=countdown --n=1000 --min_numbers=4 --max_numbers=4
"""

from __future__ import annotations

import argparse
import collections

from ttc_jax.tasks import countdown, examples, synthetic
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


def _quantiles(values: list[int]) -> str:
  v = sorted(values)
  return "  ".join(f"{name} {v[min(int(q * len(v)), len(v) - 1)]}"
                   for name, q in (("min", 0), ("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75),
                                   ("p90", 0.9), ("max", 1.0)))


def countdown_report(cfg: countdown.CountdownConfig, n: int) -> str:
  """Distinct-solution counts (per number count) and how many legal first lines are dead ends."""
  problems = countdown.generate_splits(cfg, {"train": n})["train"]
  tok = load_tokenizer()
  lengths = sorted(len(examples.encode_example(tok, synthetic.prompt_text(p), p.solution)[0]) for p in problems)
  rows = [f"{n} train problems of {cfg}"]
  by_count = collections.defaultdict(list)
  for p in problems:
    by_count[len(p.numbers)].append(p)
  for k, group in [*sorted(by_count.items()), ("all", problems)]:
    counts = [p.num_solutions for p in group]
    # Share of the distinct legal first lines (canonical) from which the target is out of reach.
    dead = []
    for p in group:
      firsts = [line for line, _ in countdown._moves(tuple(sorted(p.numbers)), p.ops)]
      dead.append(sum(not countdown.prefix_solvable(p.puzzle, [line]) for line in firsts) / len(firsts))
    share = lambda pred: sum(map(pred, counts)) / len(counts)
    rows.append(f"numbers={k!s:>3} n={len(group):4d}  solutions: {_quantiles(counts)}  =1: {share(lambda c: c == 1):.0%}"
                f"  <=10: {share(lambda c: c <= 10):.0%}  dead-end first lines: {sum(dead) / len(dead):.0%}")
  rows.append(f"tokens (bos+prompt+solution+eos): mean {sum(lengths) / n:.1f}  p50 {lengths[n // 2]}  "
              f"max {lengths[-1]}  (DEFAULT_SEQ_LEN {examples.DEFAULT_SEQ_LEN})")
  return "\n".join(rows)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--task", choices=("arith", "countdown"), default="arith")
  parser.add_argument("--n", type=int, default=2000)
  parser.add_argument("--seed", type=int, default=0)
  defaults = countdown.CountdownConfig()
  for field in ("min_numbers", "max_numbers", "min_number", "max_number", "max_target"):
    parser.add_argument(f"--{field}", type=int, default=getattr(defaults, field), help="countdown")
  parser.add_argument("--ops", default=defaults.ops, help="countdown")
  parser.add_argument("--subset", action="store_true", help="countdown: use_all=False")
  args = parser.parse_args()
  if args.task == "arith":
    print(report(synthetic.TaskConfig(seed=args.seed), args.n))
    return
  print(countdown_report(countdown.CountdownConfig(
      min_numbers=args.min_numbers, max_numbers=args.max_numbers, min_number=args.min_number,
      max_number=args.max_number, max_target=args.max_target, ops=args.ops, use_all=not args.subset,
      seed=args.seed), args.n))


if __name__ == "__main__":
  main()
