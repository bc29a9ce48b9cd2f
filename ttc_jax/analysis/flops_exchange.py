"""FLOPs-matched exchange: test-time compute of a small model vs a model M times larger.

With pretraining FLOPs X = 6 N D_pretrain and inference FLOPs Y = 2 N D_inference, the
larger model costs M (X + Y). Spending that total on the small model instead lets it use

  k = M + 3 (M - 1) / R,   R = D_inference / D_pretrain

times its inference tokens (PAPER.md; *not* M + 3 R (M - 1)). With one greedy generation
of the larger model as the unit, k is a generation budget of the small model.
"""
import math
from typing import Mapping, Sequence

PAPER_RATIOS = (0.16, 0.79, 22.0)


def matched_budget(m: float, r: float) -> float:
  """k = M + 3 (M - 1) / R: the small model's inference multiple at equal total FLOPs."""
  if m <= 0 or r <= 0:
    raise ValueError(f"M={m} and R={r} must be positive")
  return m + 3.0 * (m - 1.0) / r


def value_at_budget(curve: Mapping[float, float], k: float) -> tuple[float | None, str]:
  """The curve's value at budget k and how it was obtained.

  "measured": k is a measured budget; "interpolated": linear in log2(budget) between the
  two measured budgets around k; "capped_at_max_budget": k is beyond the largest measured
  budget, the value there is used (this understates test-time compute, which would have had
  k generations); "raised_to_min_budget": k is below the smallest measured budget, the value
  there is used (this overstates it). (None, "no_data") for an empty curve.
  """
  pts = sorted((float(b), float(a)) for b, a in curve.items() if a is not None)
  if not pts:
    return None, "no_data"
  for b, a in pts:
    if math.isclose(b, k, rel_tol=1e-9):
      return a, "measured"
  if k > pts[-1][0]:
    return pts[-1][1], "capped_at_max_budget"
  if k < pts[0][0]:
    return pts[0][1], "raised_to_min_budget"
  for (b0, a0), (b1, a1) in zip(pts, pts[1:]):
    if b0 < k < b1:
      t = (math.log2(k) - math.log2(b0)) / (math.log2(b1) - math.log2(b0))
      return a0 + t * (a1 - a0), "interpolated"
  raise AssertionError("unreachable")


def exchange(m: float, ratios: Sequence[float], test_time_by_bin: Mapping[str, Mapping[float, float]],
             larger_by_bin: Mapping[str, float]) -> list[dict]:
  """One entry per R: {R, M, matched_budget, by_bin: {bin: {test_time, larger_model, flag,
  relative_improvement, winner}}}.

  relative_improvement = (test_time - larger_model) / larger_model (the paper's Figure 9
  bars; None when the larger model scores 0); winner is "test_time", "larger_model" or "tie".
  """
  out = []
  for r in ratios:
    k = matched_budget(m, r)
    by_bin = {}
    for b in sorted(set(test_time_by_bin) & set(larger_by_bin), key=str):
      tt, flag = value_at_budget(test_time_by_bin[b], k)
      large = larger_by_bin[b]
      rel = None if tt is None or large is None or large == 0 else (tt - large) / large
      winner = (None if tt is None or large is None else
                "tie" if math.isclose(tt, large, abs_tol=1e-12) else "test_time" if tt > large else "larger_model")
      by_bin[b] = {"test_time": tt, "larger_model": large, "flag": flag, "relative_improvement": rel,
                   "winner": winner}
    out.append({"R": r, "M": m, "matched_budget": k, "by_bin": by_bin})
  return out
