"""Paired selector contrasts (analysis.verifier_selection) and the first-wrong-line AUROC (analysis.ranking)
on synthetic inputs with known effects."""
import numpy as np
import pytest

from ttc_jax.analysis import ranking, verifier_selection
from ttc_jax.analysis.accuracy_vs_n import accuracy_by_problem, accuracy_vs_n
from ttc_jax.search.aggregation import best_score, majority_vote, weighted_vote

PIDS = [f"q{i:03d}" for i in range(200)]
BINS = {p: 1 + i % 5 for i, p in enumerate(PIDS)}


def _records(majority, weighted, best_1, best_n):
  """Per-question hit rates at N = 1 and N = 64 for three selectors."""
  as_map = lambda v: dict(zip(PIDS, map(float, v)))
  return {"majority": {"1": as_map(best_1), "64": as_map(majority)},
          "prm_weighted": {"1": as_map(best_1), "64": as_map(weighted)},
          "prm_best": {"1": as_map(best_1), "64": as_map(best_n)}}


def test_known_effects_get_their_verdicts():
  rng = np.random.default_rng(0)
  base = rng.uniform(0.2, 0.8, len(PIDS))
  summary = verifier_selection.summarise(_records(majority=base, weighted=base + 0.1, best_1=base, best_n=base - 0.2),
                                         BINS, 5)
  assert summary["n"] == 64 and summary["middle_bins"] == ["2", "3", "4"]
  weighted = summary["versus_majority"]["prm_weighted"]
  assert weighted["all"]["verdict"] == "supported" and weighted["all"]["difference"] == pytest.approx(0.1)
  assert weighted["middle_bins"]["n"] == 120 and weighted["middle_bins"]["verdict"] == "supported"
  assert summary["versus_majority"]["prm_best"]["all"]["verdict"] == "contradicted"
  assert summary["best_rises"]["prm_best"]["verdict"] == "contradicted"
  assert "prm_weighted" not in summary["best_rises"]  # only plain best-of-N must rise


def test_no_effect_and_noise():
  rng = np.random.default_rng(1)
  base = rng.uniform(0.2, 0.8, len(PIDS))
  same = verifier_selection.summarise(_records(base, base, base, base), BINS, 5)
  assert same["versus_majority"]["prm_weighted"]["all"]["verdict"] == "no effect"
  noisy = verifier_selection.summarise(_records(base, base + rng.normal(0, 0.5, len(PIDS)), base, base), BINS, 5)
  assert noisy["versus_majority"]["prm_weighted"]["all"]["verdict"] == "inconclusive"


def test_per_question_keeps_two_budgets_and_skips_the_ceiling():
  answers = [["5", "6", "6", "6"], ["5", "5", "5", "4"]]
  correct = [[a == "5" for a in row] for row in answers]
  scores = {"prm": [[0.9, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.9]]}
  selectors = {"majority": (None, lambda a, _: majority_vote(a)), "prm_weighted": ("prm", weighted_vote),
               "prm_best": ("prm", best_score)}
  by_problem = accuracy_by_problem(answers, correct, scores, selectors, [1, 2, 4], num_subsets=8)
  curves = accuracy_vs_n(answers, correct, scores, selectors, [1, 2, 4], num_subsets=8)
  assert curves["majority"][4] == pytest.approx(np.mean(by_problem["majority"][4])) == pytest.approx(0.5)
  records = verifier_selection.per_question(by_problem, ["a", "b"])
  assert set(records) == set(selectors) and all(set(r) == {"1", "4"} for r in records.values())
  assert records["majority"]["4"] == {"a": 0.0, "b": 1.0}  # "6" outvotes "5"; "5" outvotes "4"
  assert records["prm_weighted"]["4"] == records["prm_best"]["4"] == {"a": 1.0, "b": 0.0}  # the scores decide


def test_first_wrong_line_auroc():
  right, wrong = [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]
  # The score drops exactly at the first wrong line: perfect.
  assert ranking.first_wrong_line_auroc([[0.9, 0.8, 0.9], [0.9, 0.2, 0.1]], [right, wrong]) == 1.0
  # A constant score knows nothing about lines: ties count half.
  assert ranking.first_wrong_line_auroc([[0.5] * 3, [0.5] * 3], [right, wrong]) == 0.5
  # Lines after the first error are not scored against; a drop only later is a miss.
  assert ranking.first_wrong_line_auroc([[0.9, 0.9, 0.9], [0.9, 0.95, 0.0]], [right, wrong]) == 0.0
  assert ranking.first_wrong_line_auroc([[0.9] * 3], [right]) is None  # no wrong line
  assert ranking.first_wrong_line_auroc([[0.9, 0.1]], [wrong]) is None  # a length mismatch is skipped
  block = ranking.first_wrong_line([[[0.9, 0.8, 0.9], [0.9, 0.2, 0.1]]] * 10 + [[[0.5] * 3, [0.5] * 3]] * 10,
                                   [[right, wrong]] * 20, PIDS[:20], BINS, 5)
  summary = block["summary"]
  assert summary["overall"]["used"] == 20 and summary["overall"]["auroc"]["mean"] == pytest.approx(0.75)
  assert summary["middle_bins"]["questions"] == 12 and sum(c["questions"] for c in summary["by_bin"].values()) == 20
