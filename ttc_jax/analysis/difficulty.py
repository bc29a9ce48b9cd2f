"""Question difficulty: oracle (policy pass@1), predicted (mean verifier score) or published level, in bins.

The paper bins test questions into 5 quantiles of the base policy's pass@1 ("oracle
difficulty", ground truth needed) or of the mean final verifier score of the same samples
("predicted difficulty", no ground truth). Bin 1 is the easiest (highest value), as the
paper's level 1.

Ties: questions are ranked by value (highest first), equal values by `tie_key(problem_id,
seed)`, a hash, so the order (and thus which of two tied questions lands in the lower bin)
does not depend on file order, and bins have equal sizes +-1: rank r of n goes to bin
1 + floor(r * num_bins / n). Many questions share pass@1 = 1.0 or 0.0, so a bin edge often
falls inside a tie; the hash decides, deterministically, which side each one goes to.

A third binning needs neither samples nor a verifier: the level a benchmark publishes with each
problem (MATH's "Level 1".."Level 5", in the `level` metadata of sample records). Level k is bin k,
so bin 1 is again the easiest; bins hold as many questions as the levels do (not quantiles).

Also the cost of estimating difficulty (generations, tokens, FLOPs), which the paper does
not count (the FLOPs come from `models.flops.span_forward_flops`).
"""
import hashlib
from typing import Mapping, Sequence

import numpy as np


def tie_key(problem_id: str, seed: int = 0) -> int:
  """A stable pseudo-random integer for `problem_id` (independent of Python's hash seed)."""
  return int.from_bytes(hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()[:8], "big")


def quantile_bins(values: Mapping[str, float], num_bins: int = 5, *, seed: int = 0) -> dict[str, int]:
  """problem_id -> bin in 1..num_bins; bin 1 holds the highest values (the easiest questions).

  Bins have equal sizes +-1 (the first n % num_bins bins never hold fewer than the others);
  ties are ordered by `tie_key`.
  """
  if num_bins < 1:
    raise ValueError(f"num_bins={num_bins} must be positive")
  order = sorted(values, key=lambda pid: (-float(values[pid]), tie_key(pid, seed)))
  n = len(order)
  return {pid: 1 + (rank * num_bins) // n for rank, pid in enumerate(order)}


def level_bins(sample_records: Sequence[Mapping]) -> dict[str, int] | None:
  """problem_id -> the problem's published level (its bin), or None when no record has a level.

  Records hold it as metadata["level"] (`decode.solutions` records). Raises if only some do: bins
  over part of the questions would not be comparable with the oracle and predicted ones.
  """
  levels = {r["problem_id"]: (r.get("metadata") or {}).get("level") for r in sample_records}
  missing = [pid for pid, level in levels.items() if level is None]
  if len(missing) == len(levels):
    return None
  if missing:
    raise ValueError(f"{len(missing)} of {len(levels)} problems have no level metadata (first: {missing[0]}): "
                     "level bins need every problem's level")
  bad = [(pid, level) for pid, level in levels.items() if isinstance(level, bool) or not isinstance(level, int)
         or level < 1]
  if bad:
    raise ValueError(f"problem {bad[0][0]}: level {bad[0][1]!r} is not a positive integer")
  return levels


def oracle_pass1(sample_records: Sequence[Mapping]) -> dict[str, float]:
  """problem_id -> fraction of its sampled solutions graded correct."""
  out = {}
  for r in sample_records:
    if not r["samples"]:
      raise ValueError(f"problem {r['problem_id']} has no samples")
    out[r["problem_id"]] = float(np.mean([bool(s["correct"]) for s in r["samples"]]))
  return out


def final_score(step_scores: Sequence[float]) -> float:
  """The PRM's prediction at the last step (the paper's aggregation); 0.0 for a solution with no steps."""
  return float(step_scores[-1]) if len(step_scores) else 0.0


def predicted_scores(score_lines: Sequence[Mapping], field: str = "prm_steps") -> dict[str, float]:
  """problem_id -> mean final verifier score over its samples (eval_verifiers' scores.jsonl lines)."""
  out = {}
  for line in score_lines:
    scores = line[field]
    if not scores:
      raise ValueError(f"problem {line['problem_id']} has no scored samples")
    out[line["problem_id"]] = float(np.mean([final_score(s) for s in scores]))
  return out


def bin_summary(values: Mapping[str, float], bins: Mapping[str, int], num_bins: int) -> dict[str, dict]:
  """Per bin ("1".."num_bins"): count and mean / min / max of `values` (e.g. pass@1) over its questions."""
  out = {}
  for b in range(1, num_bins + 1):
    v = [float(values[pid]) for pid, pb in bins.items() if pb == b]
    out[str(b)] = {"count": len(v), "mean": float(np.mean(v)) if v else None,
                   "min": min(v) if v else None, "max": max(v) if v else None}
  return out


def bin_table(pass1: Mapping[str, float], predicted: Mapping[str, float], bins: Mapping[str, int],
              num_bins: int) -> dict[str, dict]:
  """Per bin: count, mean / min / max pass@1 and mean predicted score of its questions (difficulty.json's
  `oracle` / `predicted` sections, and the report's)."""
  p, s = bin_summary(pass1, bins, num_bins), bin_summary(predicted, bins, num_bins)
  return {b: {"count": p[b]["count"], "mean_pass1": p[b]["mean"], "min_pass1": p[b]["min"],
              "max_pass1": p[b]["max"], "mean_predicted_score": s[b]["mean"]} for b in p}


def estimation_cost(per_problem: Mapping[str, Mapping[str, float]]) -> dict:
  """Totals and per-problem means of the per-problem cost counts ({pid: {name: value}})."""
  names = sorted({k for v in per_problem.values() for k in v})
  n = max(len(per_problem), 1)
  total = {k: float(sum(v.get(k, 0) for v in per_problem.values())) for k in names}
  total["flops"] = total.get("policy_flops", 0.0) + total.get("verifier_flops", 0.0)
  return {"num_problems": len(per_problem), "total": total, "per_problem": {k: v / n for k, v in total.items()}}
