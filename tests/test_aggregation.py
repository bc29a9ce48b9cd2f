"""Answer selection and accuracy-vs-N curves on hand-made cases."""
import numpy as np
import pytest

from ttc_jax.analysis.accuracy_vs_n import accuracy_vs_n, budgets_up_to
from ttc_jax.search.aggregation import best_score, majority_vote, weighted_vote


def test_majority_vote_ignores_missing_answers_and_breaks_ties_by_first_seen():
  assert majority_vote(["3", None, "5", "5", None, None]) == "5"
  assert majority_vote(["7", "3", "3", "7"]) == "7"
  assert majority_vote([None, None]) is None


def test_weighted_vote_sums_scores_per_answer():
  # "4" has the single best score, but "9" wins on the sum: the paper's best-of-N weighted.
  assert weighted_vote(["4", "9", "9", None], [0.9, 0.5, 0.5, 5.0]) == "9"
  assert best_score(["4", "9", "9", None], [0.9, 0.5, 0.5, 5.0]) == "4"
  assert weighted_vote([None], [1.0]) is None and best_score([None], [1.0]) is None


def test_budgets_up_to():
  assert budgets_up_to(1) == [1]
  assert budgets_up_to(8) == [1, 2, 4, 8]
  assert budgets_up_to(12) == [1, 2, 4, 8, 12]


def test_accuracy_vs_n_on_known_problems():
  # Problem 0: 1 of 4 samples right, and the verifier knows it. Problem 1: all wrong.
  answers = [["1", "2", "2", "2"], ["8", "8", None, "9"]]
  correct = [[True, False, False, False], [False, False, False, False]]
  scores = {"v": [[0.99, 0.1, 0.1, 0.1], [0.5, 0.5, 0.5, 0.5]]}
  selectors = {"majority": (None, lambda a, s: majority_vote(a)), "weighted": ("v", weighted_vote)}
  curves = accuracy_vs_n(answers, correct, scores, selectors, ns=[1, 4], num_subsets=200)
  assert curves["majority"][4] == 0.0  # "2" outvotes the right answer
  assert curves["weighted"][4] == 0.5  # 0.99 > 0.3: problem 0 right, problem 1 never
  assert curves["pass@N"][4] == 0.5
  # N=1: every selector returns the one sample, so all equal P(sample right) = 1/8 in expectation.
  for name in ("majority", "weighted", "pass@N"):
    assert abs(curves[name][1] - 0.125) < 0.05
  with pytest.raises(ValueError, match="larger than"):
    accuracy_vs_n(answers, correct, scores, selectors, ns=[5])


def test_accuracy_vs_n_is_deterministic():
  answers = [[str(i % 3) for i in range(8)]] * 3
  correct = [[i % 3 == 0 for i in range(8)]] * 3
  scores = {"v": [list(np.linspace(0, 1, 8))] * 3}
  selectors = {"w": ("v", weighted_vote)}
  assert accuracy_vs_n(answers, correct, scores, selectors, [2, 4]) == accuracy_vs_n(answers, correct, scores,
                                                                                      selectors, [2, 4])
