"""Does a verifier help choose an answer? Paired contrasts of each selector against majority vote.

`accuracy_vs_n` averages, per N, how often each selector (majority vote, PRM / ORM weighted vote,
the single top-scored sample) picks a correct answer. Two curves that differ by 0.005 say nothing
without an interval; so for each question we keep its own hit rate (over its random subsets of N
samples) and compare selectors question by question, with the paired bootstrap of
`analysis.paired` (stratified by difficulty bin), as the report's findings do:

- `versus_majority`: each verifier selector minus majority vote at the largest N, over all
  questions and over the middle bins (2 .. B-1), where a verifier has room to help.
- `best_rises`: the plain best-of-N by verifier score (`*_best`) at the largest N minus at N = 1.
  A verifier that ranks must make this rise (issue 12); one that only knows difficulty makes it
  fall, since among many samples its top score is usually an over-rated wrong one.

Pure numpy; no file or model I/O.
"""
from typing import Mapping, Sequence

from ttc_jax.analysis import paired as pd
from ttc_jax.analysis.ranking import middle_bins

BASELINE = "majority"
CEILING = "pass@N"
METHOD = ("per question: the fraction of its random subsets of N samples on which the selector picks a correct "
          "answer; paired difference over questions with a 95% percentile bootstrap (stratified by oracle bin)")


def per_question(by_problem: Mapping[str, Mapping[int, Sequence[float]]], pids: Sequence[str]) -> dict:
  """{selector: {"1": {pid: hit rate}, str(largest N): {...}}}: what `summarise` needs, kept small
  (two budgets) so that results.json can carry it and the report can re-bin it."""
  out = {}
  for name, curve in by_problem.items():
    if name == CEILING:
      continue
    ns = sorted({min(curve), max(curve)})
    out[name] = {str(n): dict(zip(pids, map(float, curve[n]))) for n in ns}
  return out


def _contrast(a: Mapping[str, float], b: Mapping[str, float], bins: Mapping[str, object],
              keep: Sequence[str] | None = None) -> dict | None:
  strata = {p: bins[p] for p in a if p in bins and (keep is None or str(bins[p]) in keep)}
  return pd.paired(a, b, strata) if strata else None


def summarise(records: Mapping[str, Mapping[str, Mapping[str, float]]], bins: Mapping[str, object],
              num_bins: int) -> dict:
  """{"n", "versus_majority": {selector: {"all", "middle_bins"}}, "best_rises": {selector: contrast}}
  over the questions in `bins`; each contrast is `paired.paired`'s {difference, low, high, n, verdict}."""
  if BASELINE not in records:
    return {"note": f"no {BASELINE!r} selector to compare with"}
  n = max(records[BASELINE], key=int)
  middle = middle_bins(num_bins)
  versus = {name: {"all": _contrast(r[n], records[BASELINE][n], bins),
                   "middle_bins": _contrast(r[n], records[BASELINE][n], bins, middle) if middle else None}
            for name, r in records.items() if name != BASELINE and n in r}
  rises = {name: _contrast(r[n], r["1"], bins) for name, r in records.items()
           if name.endswith("_best") and n in r and "1" in r and n != "1"}
  return {"method": METHOD, "n": int(n), "middle_bins": middle, "versus_majority": versus, "best_rises": rises}
