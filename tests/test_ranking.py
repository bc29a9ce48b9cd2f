"""Within-question ranking of a verifier (analysis.ranking) on synthetic scores with known answers."""
import math

import numpy as np
import pytest

from ttc_jax.analysis import ranking as rk


def _questions(num=40, k=8, seed=0):
  """num questions of k samples with pass rates spread over (0, 1); bins 1..5 by pass rate (1 easiest)."""
  rng = np.random.default_rng(seed)
  pids = [f"q{i:03d}" for i in range(num)]
  rates = np.linspace(0.95, 0.05, num)
  correct = [list(rng.random(k) < r) for r in rates]
  bins = {p: 1 + (i * 5) // num for i, p in enumerate(pids)}
  return pids, correct, bins, rates


def _summary(score_fn, num=40, k=8, seed=0):
  pids, correct, bins, _ = _questions(num, k, seed)
  scores = [score_fn(np.asarray(c, bool), i) for i, c in enumerate(correct)]
  return rk.ranking({"v": scores}, correct, pids, bins, 5)


def test_auroc_of_perfect_difficulty_only_and_reversed_rankers():
  c = [True, False, True, False, False]
  assert rk.auroc([0.9, 0.1, 0.8, 0.2, 0.3], c) == 1.0
  assert rk.auroc([0.4] * 5, c) == 0.5  # the same score for every solution: the question's difficulty
  assert rk.auroc([0.1, 0.9, 0.2, 0.8, 0.7], c) == 0.0
  jitter = np.random.default_rng(1)
  perfect = _summary(lambda c, i: c + 0.01 * jitter.random(len(c)))["verifiers"]["v"]
  difficulty = _summary(lambda c, i: np.full(len(c), c.mean()))["verifiers"]["v"]
  reverse = _summary(lambda c, i: 1.0 - c)["verifiers"]["v"]
  for summary, expected in ((perfect, 1.0), (difficulty, 0.5), (reverse, 0.0)):
    assert summary["overall"]["auroc"]["mean"] == pytest.approx(expected)
    assert all(b["auroc"]["mean"] == pytest.approx(expected) for b in summary["by_bin"].values() if b["auroc"])
  # Only a ranker clears the target on the middle bins.
  assert perfect["target"]["bins"] == ["2", "3", "4"] and perfect["target"]["verdict"] == "supported"
  assert difficulty["target"]["verdict"] == reverse["target"]["verdict"] == "contradicted"


def test_ties_count_half():
  assert rk.auroc([0.5, 0.5, 0.2], [True, False, False]) == pytest.approx(0.75)  # (1/2 + 1) / 2
  assert rk.auroc([0.3, 0.3, 0.3, 0.9], [True, True, False, False]) == pytest.approx(0.25)  # (1/2 + 0) * 2 / 4


def test_single_class_questions_are_excluded_and_counted():
  assert rk.auroc([0.2, 0.9], [True, True]) is None and rk.auroc([0.2, 0.9], [False, False]) is None
  records = {"mixed": rk.question_record([0.9, 0.1], [True, False]),
             "right": rk.question_record([0.1, 0.2], [True, True]),
             "wrong": rk.question_record([0.9, 0.8], [False, False])}
  cell = rk.summarise(records, {p: 1 for p in records}, 1)["overall"]
  assert (cell["questions"], cell["used"], cell["all_correct"], cell["all_wrong"]) == (3, 1, 1, 1)
  assert cell["auroc"]["mean"] == 1.0 and cell["auroc"]["n"] == 1
  summary = rk.summarise({"right": records["right"]}, {"right": 2}, 3)
  assert summary["overall"]["auroc"] is None and summary["by_bin"]["1"]["questions"] == 0
  assert summary["target"]["verdict"] == "not measurable" and "both correct and incorrect" in summary["target"]["reason"]
  assert rk.summarise(records, {p: 1 for p in records}, 2)["target"]["reason"] == "fewer than 3 bins"


def test_bootstrap_interval_contains_the_true_auroc():
  # Correct solutions score N(1, 1), incorrect N(0, 1): P(correct outscores incorrect) = Phi(1 / sqrt 2).
  truth = 0.5 * (1 + math.erf(0.5))
  rng = np.random.default_rng(3)
  summary = _summary(lambda c, i: rng.normal(c.astype(float), 1.0), num=300, k=16)["verifiers"]["v"]
  a = summary["overall"]["auroc"]
  assert a["low"] < truth < a["high"] and a["high"] - a["low"] < 0.1
  assert a["n"] == summary["overall"]["used"] == sum(b["used"] for b in summary["by_bin"].values())


def test_pass_rate_baseline_is_leave_one_out():
  np.testing.assert_allclose(rk.loo_pass_rate([True, True, False, False]), [0.375, 0.375, 0.625, 0.625])
  np.testing.assert_allclose(rk.loo_pass_rate([True]), [0.5])
  rec = rk.question_record([0.5, 0.5, 0.5, 0.5], [True, True, False, False])
  assert rec["log_loss"]["pass_rate_in_sample"] == pytest.approx(math.log(2))
  assert rec["log_loss"]["verifier"] == pytest.approx(math.log(2)) and rec["brier"]["verifier"] == 0.25
  assert rec["brier"]["pass_rate"] == pytest.approx(0.625 ** 2)  # worse than in-sample: it never sees its own label
  # A verifier that knows each question's true pass rate, and nothing else, is as good as the baseline (within
  # the baseline's cost of estimating it from k - 1 samples); one that ranks beats it.
  pids, correct, bins, rates = _questions(200, 16)
  scores = {"difficulty": [np.full(len(c), r) for c, r in zip(correct, rates)],
            "ranker": [np.where(c, 0.9, 0.1) for c in correct]}
  s = rk.ranking(scores, correct, pids, bins, 5)["verifiers"]
  assert s["ranker"]["overall"]["log_loss"]["difference"]["high"] < 0
  assert s["ranker"]["overall"]["log_loss"]["difference_in_sample"]["high"] < 0
  assert s["difficulty"]["overall"]["auroc"]["mean"] == 0.5
  assert abs(s["difficulty"]["overall"]["log_loss"]["difference"]["mean"]) < 0.03
  # ... and lands between the two baselines: above the in-sample floor, which has seen each label it predicts.
  assert s["difficulty"]["overall"]["log_loss"]["difference_in_sample"]["low"] > 0
  assert "AUROC" in rk.describe(s["ranker"]) and "target 0.85: supported" in rk.describe(s["ranker"])
