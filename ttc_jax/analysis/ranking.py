"""Does a verifier rank the solutions of one question, or only know how hard the question is?

A verifier's mean score per difficulty bin can track pass@1, and best-of-N weighted can still
fail, because a score that is the same for every solution of a question (its difficulty) helps
no selection. Two measures separate the two:

- Within-question AUROC: for a question with both correct and incorrect sampled solutions, the
  probability that a random correct solution outscores a random incorrect one (ties count half).
  1 ranks perfectly, 0.5 is no better than chance (any score constant within a question),
  0 ranks backwards. Questions whose samples are all correct or all wrong have no pair to rank:
  they are excluded and counted. Averaged over questions (each weighs the same), overall and per
  difficulty bin, with a percentile bootstrap interval over questions (`paired.bootstrap_mean`;
  stratified by bin when pooling bins).
- Difficulty-only baseline: predict each solution's correctness by its question's pass rate
  among the *other* samples of the question (leave-one-out), smoothed by the Krichevsky-Trofimov
  estimator (s_other + 1/2) / (k - 1 + 1), so a question with one odd solution does not get a
  probability of exactly 0 or 1 for it (which would make the baseline's log-loss explode and the
  verifier look good for free). Its log-loss and Brier score next to the verifier's own (its
  score read as a probability of being correct) tell whether the verifier adds anything to
  knowing each question's pass@1. `pass_rate_in_sample` (every sample's own question mean, the
  best any per-question constant can do on these samples: it has seen the label it predicts) is the
  optimistic floor. A predictor that knows only difficulty, however well, lands between the two
  (one that knows each question's true pass rate beats the leave-one-out estimate by about 0.02
  nats at k = 16): a verifier below the in-sample floor knows something about the solution.

Pure numpy; no file or model I/O.
"""
from typing import Mapping, Sequence

import numpy as np

from ttc_jax.analysis import paired as pd

# The GPU-scale target of project issue 12: a verifier that ranks, on the middle difficulty bins.
TARGET_AUROC = 0.85
EPS = 1e-7  # Probabilities are clipped to [EPS, 1 - EPS] in the log-loss (as `verify.heldout`).
KT = 0.5  # Pseudo-count of the leave-one-out pass rate (Krichevsky-Trofimov).
LOSSES = ("log_loss", "brier")
PREDICTORS = ("verifier", "pass_rate", "pass_rate_in_sample")
METHOD = ("within-question AUROC (P(correct outscores incorrect), ties half) averaged over questions with both "
          "classes; 95% percentile bootstrap over questions (stratified by bin when pooling bins); baseline: "
          "leave-one-out pass rate of the question's other samples, (s + 1/2) / k")


def auroc(scores: Sequence[float], correct: Sequence[bool]) -> float | None:
  """P(score of a random correct solution > that of a random incorrect one), ties counting half,
  over one question's solutions; None when they are all correct or all incorrect."""
  s, c = np.asarray(scores, np.float64), np.asarray(correct, bool)
  if len(s) != len(c):
    raise ValueError(f"{len(s)} scores for {len(c)} solutions")
  pos, neg = s[c], s[~c]
  if not len(pos) or not len(neg):
    return None
  d_PxN = pos[:, None] - neg[None, :]
  return float(((d_PxN > 0) + 0.5 * (d_PxN == 0)).mean())


def loo_pass_rate(correct: Sequence[bool]) -> np.ndarray:
  """float64[k]: each solution's predicted probability of being correct from the other k - 1
  solutions of its question, (correct others + 1/2) / k."""
  c = np.asarray(correct, np.float64)
  return (c.sum() - c + KT) / (len(c) - 1 + 2 * KT)


def _log_loss(p: np.ndarray, t: np.ndarray) -> float:
  p = np.clip(p, EPS, 1 - EPS)
  return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def question_record(scores: Sequence[float], correct: Sequence[bool]) -> dict:
  """One question's ranking and calibration: {"k", "correct", "auroc" (None for a single-class
  question), "log_loss": {predictor: mean over solutions}, "brier": {...}} for the verifier
  (`scores` read as probabilities in [0, 1]), the leave-one-out pass rate and the in-sample one."""
  s, t = np.asarray(scores, np.float64), np.asarray(correct, np.float64)
  if not len(t):
    raise ValueError("a question without solutions")
  preds = {"verifier": s, "pass_rate": loo_pass_rate(correct), "pass_rate_in_sample": np.full_like(t, t.mean())}
  return {"k": len(t), "correct": int(t.sum()), "auroc": auroc(s, correct),
          "log_loss": {n: _log_loss(p, t) for n, p in preds.items()},
          "brier": {n: float(((p - t) ** 2).mean()) for n, p in preds.items()}}


def _interval(values: Sequence[float], strata: Sequence | None) -> dict | None:
  return pd.bootstrap_mean(values, strata) if len(values) else None


def _cell(records: Mapping[str, dict], bins: Mapping[str, object]) -> dict:
  """Summary over the questions of `records` (bins: the strata of the pooled bootstrap)."""
  pids = sorted(records)
  used = [p for p in pids if records[p]["auroc"] is not None]
  strata = [str(bins[p]) for p in used] if len({str(bins[p]) for p in pids}) > 1 else None
  out = {"questions": len(pids), "used": len(used),
         "all_correct": sum(records[p]["correct"] == records[p]["k"] for p in pids),
         "all_wrong": sum(records[p]["correct"] == 0 for p in pids),
         "auroc": _interval([records[p]["auroc"] for p in used], strata)}
  loss_strata = [str(bins[p]) for p in pids] if strata is not None else None
  for loss in LOSSES:
    vals = {n: [records[p][loss][n] for p in pids] for n in PREDICTORS}
    out[loss] = {n: float(np.mean(v)) if v else None for n, v in vals.items()}
    # Per question, verifier minus each baseline: below the in-sample one (the optimistic floor of every
    # difficulty-only predictor) the verifier surely knows more than difficulty.
    out[loss]["difference"] = _interval(np.subtract(vals["verifier"], vals["pass_rate"]), loss_strata)
    out[loss]["difference_in_sample"] = _interval(np.subtract(vals["verifier"], vals["pass_rate_in_sample"]),
                                                  loss_strata)
  return out


def middle_bins(num_bins: int) -> list[str]:
  """Bins 2..num_bins-1 (neither the easiest nor the hardest); empty with fewer than 3 bins."""
  return [str(b) for b in range(2, num_bins)]


def summarise(records: Mapping[str, dict], bins: Mapping[str, object], num_bins: int) -> dict:
  """{"overall", "by_bin": {"1".."num_bins"}, "target"} over the questions in both `records`
  ({pid: `question_record`}) and `bins` ({pid: bin 1..num_bins}).

  Each cell: questions, used (with both classes), all_correct, all_wrong, auroc ({mean, low, high,
  n} or None when no question has both classes), and per loss (log_loss, brier) the mean of each
  predictor plus `difference` (verifier minus leave-one-out pass rate) and `difference_in_sample`
  (verifier minus in-sample pass rate), per question, each with its interval.
  `target`: the AUROC pooled over the middle bins against TARGET_AUROC, with
  `paired.verdict_at_least` (`supported`: the whole interval at or above it).
  """
  pids = [p for p in records if p in bins]
  by_bin = {str(b): {p: records[p] for p in pids if str(bins[p]) == str(b)} for b in range(1, num_bins + 1)}
  middle = middle_bins(num_bins)
  pooled = _cell({p: r for b in middle for p, r in by_bin[b].items()}, bins) if middle else None
  a = pooled and pooled["auroc"]
  target = {"auroc": TARGET_AUROC, "bins": middle, "measured": a or None,
            "verdict": (pd.NOT_MEASURABLE if not a else pd.verdict_at_least(a["low"], a["high"], a["n"], TARGET_AUROC))}
  if not middle:
    target["reason"] = "fewer than 3 bins"
  elif not a:
    target["reason"] = "no middle-bin question has both correct and incorrect samples"
  return {"overall": _cell({p: records[p] for p in pids}, bins), "by_bin": {b: _cell(r, bins) for b, r in by_bin.items()},
          "target": target}


def _auroc_text(a: dict | None) -> str:
  return "n/a" if not a else f"{a['mean']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"


def describe(summary: dict) -> str:
  """One line of a `summarise` result: overall AUROC, the middle bins' against the target, log-loss."""
  o, t = summary["overall"], summary["target"]
  ll = o["log_loss"]
  loss = "n/a" if ll["verifier"] is None else f"{ll['verifier']:.3f} vs {ll['pass_rate']:.3f}"
  return (f"within-question AUROC {_auroc_text(o['auroc'])} over {o['used']} of {o['questions']} questions "
          f"({o['all_correct']} all correct, {o['all_wrong']} all wrong); middle bins {_auroc_text(t['measured'])} "
          f"vs target {t['auroc']:.2f}: {t['verdict']}; log-loss {loss} (verifier vs leave-one-out pass rate)")


def ranking(scores: Mapping[str, Sequence[Sequence[float]]], correct: Sequence[Sequence[bool]], pids: Sequence[str],
            bins: Mapping[str, object], num_bins: int) -> dict:
  """eval_verifiers' `ranking` block for every verifier score (e.g. `orm`, `prm_last`).

  scores[name][q][i], correct[q][i]: solution i of question q (`pids[q]`). Returns {"method",
  "target_auroc", "num_bins", "verifiers": {name: `summarise`}, "per_question": {name: {pid:
  `question_record`}}} (the per-question records let the report re-bin over its own questions).
  """
  per_question = {name: {pid: question_record(s, c) for pid, s, c in zip(pids, vals, correct)}
                  for name, vals in scores.items()}
  return {"method": METHOD, "target_auroc": TARGET_AUROC, "num_bins": num_bins,
          "verifiers": {name: summarise(r, bins, num_bins) for name, r in per_question.items()},
          "per_question": per_question}


LINE_METHOD = ("per question: P(a right line's step score > the score at an incorrect sample's first wrong line), ties "
               "half, over all its samples' lines (right lines: those before a sample's first error); averaged over "
               "questions with both; 95% percentile bootstrap over questions (stratified by bin when pooling bins)")


def first_wrong_line_auroc(step_scores: Sequence[Sequence[float]], line_right: Sequence[Sequence[float]]) -> float | None:
  """One question: does the step score drop at the first wrong line? AUROC of the scores of right
  lines (label 1) against the score at each sample's first wrong line (the first label 0); None
  without both. Samples whose scores and labels differ in length are skipped (no line to align)."""
  pos, neg = [], []
  for scores, labels in zip(step_scores, line_right):
    if len(scores) != len(labels):
      continue
    pos += [s for s, right in zip(scores, labels) if right == 1.0]
    wrong = [i for i, right in enumerate(labels) if right == 0.0]
    if wrong:
      neg.append(scores[wrong[0]])
  return auroc(pos + neg, [True] * len(pos) + [False] * len(neg)) if pos and neg else None


def summarise_lines(records: Mapping[str, float | None], bins: Mapping[str, object], num_bins: int) -> dict:
  """{"overall", "by_bin", "middle_bins"} of first-wrong-line AUROCs ({pid: value or None}): each
  {"questions", "used", "auroc": bootstrap interval or None}."""
  def cell(pids):
    used = [p for p in pids if records[p] is not None]
    strata = [str(bins[p]) for p in used] if len({str(bins[p]) for p in used}) > 1 else None
    return {"questions": len(pids), "used": len(used), "auroc": _interval([records[p] for p in used], strata)}
  pids = [p for p in records if p in bins]
  middle = middle_bins(num_bins)
  return {"overall": cell(pids),
          "by_bin": {str(b): cell([p for p in pids if str(bins[p]) == str(b)]) for b in range(1, num_bins + 1)},
          "middle_bins": cell([p for p in pids if str(bins[p]) in middle]) if middle else None}


def first_wrong_line(step_scores: Sequence[Sequence[Sequence[float]]], line_right: Sequence[Sequence[Sequence[float]]],
                     pids: Sequence[str], bins: Mapping[str, object], num_bins: int) -> dict:
  """eval_verifiers' `first_wrong_line` block for the PRM's step scores: step_scores[q][i][j] and
  line_right[q][i][j] (1.0 right, 0.0 wrong) for line j of sample i of question q (`pids[q]`)."""
  per_question = {pid: first_wrong_line_auroc(s, r) for pid, s, r in zip(pids, step_scores, line_right)}
  return {"method": LINE_METHOD, "summary": summarise_lines(per_question, bins, num_bins),
          "per_question": per_question}
