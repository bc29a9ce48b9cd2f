"""Per-problem pass@1 from graded samples, and how it spreads across problems."""
from typing import Mapping, Sequence

import numpy as np

PASS1_BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def pass_at_1(correct: Sequence[bool]) -> float:
  """Fraction of a problem's samples whose answer is correct (the unbiased pass@1 estimate)."""
  return float(np.mean(correct)) if len(correct) else 0.0


def spread_summary(pass1: Sequence[float]) -> dict:
  """How varied per-problem pass@1 is: what the difficulty bins need."""
  p = np.asarray(pass1, np.float64)
  hist, _ = np.histogram(p, bins=PASS1_BIN_EDGES)
  return {
      "num_problems": int(p.size),
      "mean_pass1": float(p.mean()),
      "std_pass1": float(p.std()),
      "quantiles": {q: float(np.quantile(p, float(q))) for q in ("0.1", "0.25", "0.5", "0.75", "0.9")},
      "frac_never_solved": float(np.mean(p == 0)),
      "frac_always_solved": float(np.mean(p == 1)),
      "frac_strictly_between": float(np.mean((p > 0) & (p < 1))),
      "histogram": {"bin_edges": list(PASS1_BIN_EDGES), "counts": hist.tolist()},
  }


def mean_by_key(pass1: Sequence[float], keys: Sequence) -> Mapping[str, float]:
  """Mean pass@1 grouped by a problem attribute (e.g. number of steps)."""
  groups: dict[str, list[float]] = {}
  for p, k in zip(pass1, keys):
    groups.setdefault(str(k), []).append(p)
  return {k: float(np.mean(v)) for k, v in sorted(groups.items(), key=lambda kv: kv[0])}
