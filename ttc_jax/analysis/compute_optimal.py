"""Compute-optimal strategy selection by two-fold cross-validation, and its efficiency.

For every difficulty bin and generation budget, the paper picks the strategy (search method
and its hyperparameters, or the sequential:parallel ratio of revisions) that is best on
half of the test questions and scores it on the other half, then swaps and averages. Here:

  outcomes: {strategy: {budget: {problem_id: correct}}}  (strategy order matters, see ties)
  bins: {problem_id: bin}

Folds: within each bin, questions are ordered by `difficulty.tie_key(problem_id, seed)` and
alternate between fold 0 and fold 1 (stratified, halves equal +-1). The questions of fold f
are scored with the strategy chosen on fold 1-f (same bin, same budget), so every question
is scored exactly once, by a choice it did not influence.

Ties (equal accuracy on the choosing half) go to the strategy listed first in `outcomes`;
callers list the baseline first (best_of_n; the all-parallel revision split), so a tie never
credits selection with a gain over the baseline. A bin with no question in the choosing
half (a bin of one question) chooses on the whole choosing half, all bins pooled.
"""
import math
from typing import Mapping, Sequence

import numpy as np

from ttc_jax.analysis.difficulty import tie_key

Outcomes = Mapping[str, Mapping[int, Mapping[str, bool]]]


def two_folds(bins: Mapping[str, int], seed: int = 0) -> dict[str, int]:
  """problem_id -> fold 0 or 1, alternating within each bin in `tie_key` order."""
  folds = {}
  for b in sorted(set(bins.values())):
    members = sorted((pid for pid, pb in bins.items() if pb == b), key=lambda pid: (tie_key(pid, seed), pid))
    for i, pid in enumerate(members):
      folds[pid] = i % 2
  return folds


def _best(strategies: Sequence[str], outcomes: Outcomes, budget: int, pids: Sequence[str]) -> str:
  """The strategy with the highest accuracy on `pids` (first listed on ties; first if `pids` is empty)."""
  best, best_acc = strategies[0], -1.0
  for s in strategies:
    acc = float(np.mean([outcomes[s][budget][p] for p in pids])) if pids else 0.0
    if acc > best_acc + 1e-12:
      best, best_acc = s, acc
  return best


def candidates(outcomes: Outcomes, budget: int, pids: Sequence[str]) -> list[str]:
  """Strategies evaluated at `budget` on every one of `pids`, in `outcomes` order."""
  return [s for s, by_budget in outcomes.items()
          if budget in by_budget and all(p in by_budget[budget] for p in pids)]


def cross_validated(outcomes: Outcomes, bins: Mapping[str, int], *, seed: int = 0,
                    budgets: Sequence[int] | None = None) -> dict:
  """Two-fold cross-validated compute-optimal accuracy per budget.

  Returns:
    accuracy: {budget: mean over all questions of the CV-chosen strategy's correctness}
    accuracy_by_bin: {bin: {budget: accuracy}}
    chosen: {bin: {budget: [strategy scoring fold 0, strategy scoring fold 1]}} (each chosen on
      the other fold)
    in_sample: {budget: accuracy when choosing and scoring on all questions} (optimistic; for
      comparison only)
    candidates: {budget: [strategies]}
    per_question: {budget: {problem_id: correctness of the CV-chosen strategy}} (for paired
      comparisons with other curves)
  Budgets where no strategy covers every question are left out.
  """
  pids = sorted(bins)
  if not pids:
    raise ValueError("no problems to select strategies on")
  folds = two_folds(bins, seed)
  all_budgets = sorted({b for by_budget in outcomes.values() for b in by_budget}) if budgets is None else budgets
  bin_ids = sorted(set(bins.values()))
  members = {b: [p for p in pids if bins[p] == b] for b in bin_ids}
  out = {"accuracy": {}, "accuracy_by_bin": {str(b): {} for b in bin_ids},
         "chosen": {str(b): {} for b in bin_ids}, "in_sample": {}, "candidates": {},
         "per_question": {}}
  for budget in all_budgets:
    strategies = candidates(outcomes, budget, pids)
    if not strategies:
      continue
    out["candidates"][budget] = strategies
    scored, in_sample = {}, {}
    for b in bin_ids:
      choices = []
      for fold in (0, 1):
        choose_on = [p for p in members[b] if folds[p] != fold]
        if not choose_on:
          choose_on = [p for p in pids if folds[p] != fold]
        choice = _best(strategies, outcomes, budget, choose_on)
        choices.append(choice)
        for p in members[b]:
          if folds[p] == fold:
            scored[p] = bool(outcomes[choice][budget][p])
      out["chosen"][str(b)][budget] = choices
      whole = _best(strategies, outcomes, budget, members[b])
      in_sample.update({p: bool(outcomes[whole][budget][p]) for p in members[b]})
      out["accuracy_by_bin"][str(b)][budget] = float(np.mean([scored[p] for p in members[b]]))
    out["accuracy"][budget] = float(np.mean([scored[p] for p in pids]))
    out["per_question"][budget] = {p: scored[p] for p in pids}
    out["in_sample"][budget] = float(np.mean([in_sample[p] for p in pids]))
  return out


def accuracy_curve(outcomes: Mapping[int, Mapping[str, bool]], pids: Sequence[str]) -> dict[int, float]:
  """{budget: accuracy over `pids`} of one strategy (budgets missing some of `pids` are left out)."""
  return {b: float(np.mean([res[p] for p in pids])) for b, res in sorted(outcomes.items())
          if pids and all(p in res for p in pids)}


def shift_budgets(curve: Mapping[int, float], extra: float) -> dict[float, float]:
  """The same accuracies at budget + extra (e.g. generations spent estimating difficulty)."""
  return {b + extra: a for b, a in curve.items()}


def efficiency(optimal: Mapping[float, float], baseline: Mapping[float, float]) -> dict:
  """How much less budget compute-optimal needs to match the baseline at its largest budget.

  target = baseline accuracy at its largest budget B. `measured`: the smallest measured budget
  b where `optimal` reaches the target, ratio B / b. `interpolated`: the budget where the
  optimal curve, linear in log2(budget) between its measured points, first reaches the target
  (never below its smallest measured budget), ratio B / b*. Both None with a `reason` if the
  target is never reached.
  """
  if not baseline or not optimal:
    return {"ratio": None, "ratio_interpolated": None, "reason": "a curve is empty"}
  top = max(baseline)
  target = float(baseline[top])
  pts = sorted((float(b), float(a)) for b, a in optimal.items())
  peak = max(baseline, key=lambda b: (baseline[b], -b))
  out = {"baseline_budget": top, "target_accuracy": target, "baseline_peak": {"budget": peak, "accuracy": baseline[peak]},
         "budget": None, "ratio": None,
         "budget_interpolated": None, "ratio_interpolated": None, "reason": None}
  for i, (b, a) in enumerate(pts):
    if a >= target - 1e-12:
      out["budget"], out["ratio"] = b, top / b
      if i == 0:
        star = b
      else:
        (b0, a0) = pts[i - 1]
        t = (target - a0) / (a - a0)
        star = 2 ** (math.log2(b0) + t * (math.log2(b) - math.log2(b0)))
      out["budget_interpolated"], out["ratio_interpolated"] = star, top / star
      return out
  best_b, best_a = max(pts, key=lambda x: (x[1], -x[0]))
  out["reason"] = (f"never reached: compute-optimal peaks at {best_a:.3f} (budget {best_b:g}), below the "
                   f"baseline's {target:.3f} at budget {top:g}")
  return out
