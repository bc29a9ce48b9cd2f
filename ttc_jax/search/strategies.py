"""Named search strategies, and what each spends at a given generation budget.

A strategy is written as a short string in configs:
  "best_of_n"          N independent samples, best-of-N weighted
  "beam:4"             beam search with beam width M = 4
  "beam:sqrt"          beam search with M = sqrt(N) (rounded to a divisor of N)
  "lookahead:4:1"      lookahead search, M = 4, k = 1 greedy steps of lookahead
  "dvts:4"             diverse verifier tree search, subtrees of width 4
At generation budget B, lookahead keeps N = B / (k + 1) candidates (each costs
k + 1 generations, as the paper counts it); the others keep N = B. A strategy
that does not fit a budget (e.g. beam width 4 at B = 2) is skipped, not faked.
"""
import dataclasses
import math

from ttc_jax.search.config import SearchConfig

_METHODS = ("best_of_n", "beam", "lookahead", "dvts")


@dataclasses.dataclass(frozen=True)
class Strategy:
  name: str
  method: str
  beam_width: int | str = 1  # An int, or "sqrt".
  lookahead: int = 0


def parse_strategy(spec: str) -> Strategy:
  parts = spec.split(":")
  method = parts[0]
  try:
    if method == "best_of_n" and len(parts) == 1:
      return Strategy(spec, method)
    if method in ("beam", "dvts") and len(parts) == 2:
      return Strategy(spec, method, parts[1] if parts[1] == "sqrt" else int(parts[1]))
    if method == "lookahead" and len(parts) == 3:
      return Strategy(spec, method, parts[1] if parts[1] == "sqrt" else int(parts[1]), int(parts[2]))
  except ValueError:
    pass
  raise ValueError(f"search strategy {spec!r} is not one of: best_of_n, beam:M, beam:sqrt, lookahead:M:k, dvts:M "
                   f"(methods {_METHODS})")


def _sqrt_width(n: int) -> int:
  """The divisor of n closest to sqrt(n) (exact for the paper's 4, 16, 64, 256)."""
  return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - math.sqrt(n)), d))


def search_config(strategy: Strategy, generation_budget: int, **sizes) -> SearchConfig | None:
  """The SearchConfig that spends `generation_budget` generations, or None if the strategy does not fit it."""
  n = generation_budget // (strategy.lookahead + 1)
  if n < 1 or n * (strategy.lookahead + 1) != generation_budget:
    return None
  if strategy.method == "best_of_n":
    return SearchConfig(method="best_of_n", budget=n, beam_width=1, **sizes)
  m = _sqrt_width(n) if strategy.beam_width == "sqrt" else strategy.beam_width
  if m > n or n % m:
    return None
  return SearchConfig(method=strategy.method, budget=n, beam_width=m, lookahead=strategy.lookahead, **sizes)
