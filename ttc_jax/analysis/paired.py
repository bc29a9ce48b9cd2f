"""Paired comparisons over questions: a difference of means with a percentile bootstrap interval,
and the verdict it supports.

Both arms of a comparison are scored on the same questions, so the per-question difference
d_q = a_q - b_q carries the comparison: resampling questions (not the two arms separately)
keeps the correlation between arms, which is what makes a paired interval narrower than two
independent ones. Where a finding is per difficulty bin, questions are resampled within their
bin (stratified), so every resample keeps the bins' sizes.

Deterministic: a fixed seed and a fixed number of resamples, vectorised in numpy (2,000
resamples of 500 questions cost about 10 ms).
"""
from typing import Mapping, Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
# A difference whose whole interval lies within +-MARGIN is "no effect": 2 points of accuracy
# is below what any finding of the paper is about (its gains are 5-20 points).
MARGIN = 0.02
# The percentile bootstrap cannot show uncertainty it has not seen: with few questions, all of
# them agreeing gives a zero-width interval. Below MIN_QUESTIONS every verdict is inconclusive,
# and "no effect" needs enough questions that one question moves the mean by at most MARGIN.
MIN_QUESTIONS = 10

SUPPORTED, CONTRADICTED, NO_EFFECT, INCONCLUSIVE = "supported", "contradicted", "no effect", "inconclusive"
NOT_MEASURABLE = "not measurable"


def bootstrap_mean(d: Sequence[float], strata: Sequence | None = None, *, resamples: int = RESAMPLES,
                   seed: int = SEED, confidence: float = CONFIDENCE) -> dict:
  """Mean of `d` (one value per question) and its percentile bootstrap interval.

  strata: one label per question (e.g. its difficulty bin); questions are resampled within
  their stratum, so each resample has the strata's sizes. Returns {"mean", "low", "high", "n"};
  a single question (or identical values) gives a zero-width interval.
  """
  d = np.asarray(d, dtype=np.float64)
  n = len(d)
  if n == 0:
    raise ValueError("no questions to compare")
  labels = np.zeros(n, dtype=np.int64) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
  if len(labels) != n:
    raise ValueError(f"{len(labels)} strata for {n} questions")
  rng = np.random.default_rng(seed)
  totals = np.zeros(resamples)
  for s in range(labels.max() + 1):
    members = d[labels == s]
    totals += members[rng.integers(0, len(members), size=(resamples, len(members)))].sum(axis=1)
  alpha = (1.0 - confidence) / 2.0
  low, high = np.quantile(totals / n, [alpha, 1.0 - alpha])
  return {"mean": float(d.mean()), "low": float(low), "high": float(high), "n": n}


def verdict(low: float, high: float, n: int, margin: float = MARGIN) -> str:
  """`supported` (interval above 0), `contradicted` (below 0), `no effect` (within +-margin, over
  at least 1 / margin questions), else `inconclusive`; `inconclusive` below MIN_QUESTIONS."""
  if n < MIN_QUESTIONS:
    return INCONCLUSIVE
  if low > 0:
    return SUPPORTED
  if high < 0:
    return CONTRADICTED
  if -margin <= low and high <= margin and n * margin >= 1:
    return NO_EFFECT
  return INCONCLUSIVE


def verdict_at_least(low: float, high: float, n: int, bound: float) -> str:
  """For a claim "the difference is at least `bound`" (e.g. -MARGIN: "not worse than"):
  `supported` when the whole interval is at or above it, `contradicted` when below it."""
  if n < MIN_QUESTIONS:
    return INCONCLUSIVE
  return SUPPORTED if low >= bound else CONTRADICTED if high < bound else INCONCLUSIVE


def verdict_at_most(low: float, high: float, n: int, bound: float) -> str:
  """For a claim "the difference is at most `bound`" (e.g. "nothing helps much"): `supported`
  when the whole interval is at or below it, `contradicted` when above it."""
  if n < MIN_QUESTIONS:
    return INCONCLUSIVE
  return SUPPORTED if high <= bound else CONTRADICTED if low > bound else INCONCLUSIVE


def paired(a: Mapping[str, float], b: Mapping[str, float], strata: Mapping[str, object] | None = None, *,
           resamples: int = RESAMPLES, seed: int = SEED, confidence: float = CONFIDENCE) -> dict | None:
  """Mean of a - b over the questions present in both (and in `strata` when given), with its
  paired (stratified) bootstrap interval and `verdict`.

  a, b: {question id: outcome} (bool or float, e.g. correctness). Returns {"difference", "low",
  "high", "n", "mean_a", "mean_b", "verdict"}, or None when no question is in both.
  """
  pids = sorted(set(a) & set(b) & (set(strata) if strata is not None else set(a)))
  if not pids:
    return None
  xa = np.array([float(a[p]) for p in pids])
  xb = np.array([float(b[p]) for p in pids])
  s = bootstrap_mean(xa - xb, None if strata is None else [str(strata[p]) for p in pids], resamples=resamples,
                     seed=seed, confidence=confidence)
  return {"difference": s["mean"], "low": s["low"], "high": s["high"], "n": s["n"], "mean_a": float(xa.mean()),
          "mean_b": float(xb.mean()), "verdict": verdict(s["low"], s["high"], s["n"])}


def wilson(accuracy: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
  """Wilson score interval of a proportion `accuracy` over `n` questions (the accuracy curves'
  bands; unlike accuracy +- 1.96 SE it stays inside [0, 1] and is not empty at 0 or 1)."""
  if n <= 0:
    raise ValueError(f"n={n} must be positive")
  z = {0.95: 1.959963984540054, 0.9: 1.6448536269514722, 0.99: 2.5758293035489004}[confidence]
  p = min(max(float(accuracy), 0.0), 1.0)
  centre = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
  return float(max(0.0, centre - half)), float(min(1.0, centre + half))
