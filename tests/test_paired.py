"""analysis.paired: the paired bootstrap interval, its stratified variant and the verdict rules."""
import numpy as np
import pytest

from ttc_jax.analysis import paired as pd


def test_bootstrap_is_deterministic_and_brackets_the_mean():
  d = np.random.default_rng(1).normal(0.1, 1.0, size=300)
  a, b = pd.bootstrap_mean(d), pd.bootstrap_mean(d)
  assert a == b and a["n"] == 300
  assert a["low"] < a["mean"] < a["high"]
  # About 1.96 standard errors either side.
  se = d.std() / np.sqrt(len(d))
  assert a["high"] - a["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
  assert pd.bootstrap_mean(d, seed=1) != a  # The seed is the only source of randomness.


def test_stratified_resampling_keeps_the_strata_sizes():
  # +1 in one bin and -1 in the other: a resample that keeps each bin's size always has mean 0.
  d = [1.0] * 20 + [-1.0] * 20
  strata = ["1"] * 20 + ["2"] * 20
  s = pd.bootstrap_mean(d, strata)
  assert (s["low"], s["mean"], s["high"]) == (0.0, 0.0, 0.0)
  u = pd.bootstrap_mean(d)
  assert u["low"] < -0.2 and u["high"] > 0.2
  with pytest.raises(ValueError, match="strata"):
    pd.bootstrap_mean(d, strata[:-1])


def test_interval_covers_the_true_difference():
  # Paired Bernoulli arms with a known difference of 0.1: the 95% interval covers it in most draws.
  rng = np.random.default_rng(0)
  covered = 0
  for _ in range(40):
    u = rng.random(200)
    a, b = u < 0.6, u < 0.5
    flip = rng.random(200) < 0.2  # Some discordance in both directions.
    a = np.where(flip, rng.random(200) < 0.55, a)
    s = pd.bootstrap_mean(a.astype(float) - b.astype(float), resamples=500)
    true = 0.8 * 0.1 + 0.2 * (0.55 - 0.5)
    covered += s["low"] <= true <= s["high"]
  assert covered >= 34


def test_paired_uses_the_questions_in_both_arms():
  a = {"q1": True, "q2": True, "q3": False, "extra": True}
  b = {"q1": False, "q2": True, "q3": False, "other": False}
  r = pd.paired(a, b)
  assert r["n"] == 3 and r["difference"] == pytest.approx(1 / 3)
  assert r["mean_a"] == pytest.approx(2 / 3) and r["mean_b"] == pytest.approx(1 / 3)
  assert r["verdict"] == pd.INCONCLUSIVE  # Too few questions for any verdict.
  assert pd.paired({"x": 1}, {"y": 0}) is None
  assert pd.paired(a, b, strata={"q1": 1, "q2": 1})["n"] == 2


@pytest.mark.parametrize("low, high, n, expected", [
    (0.01, 0.2, 100, pd.SUPPORTED), (-0.3, -0.05, 100, pd.CONTRADICTED), (-0.015, 0.01, 100, pd.NO_EFFECT),
    (-0.05, 0.1, 100, pd.INCONCLUSIVE), (0.0, 0.0, 20, pd.INCONCLUSIVE),  # 20 questions: one moves the mean 0.05.
    (0.0, 0.0, 50, pd.NO_EFFECT), (0.2, 0.5, 9, pd.INCONCLUSIVE), (0.0, 0.3, 100, pd.INCONCLUSIVE)])
def test_verdict(low, high, n, expected):
  assert pd.verdict(low, high, n) == expected


def test_bounded_verdicts():
  assert pd.verdict_at_least(-0.01, 0.1, 100, -0.02) == pd.SUPPORTED
  assert pd.verdict_at_least(-0.05, 0.1, 100, -0.02) == pd.INCONCLUSIVE
  assert pd.verdict_at_least(-0.2, -0.03, 100, -0.02) == pd.CONTRADICTED
  assert pd.verdict_at_most(-0.1, 0.04, 100, 0.05) == pd.SUPPORTED
  assert pd.verdict_at_most(0.06, 0.2, 100, 0.05) == pd.CONTRADICTED
  assert pd.verdict_at_most(0.0, 0.2, 100, 0.05) == pd.INCONCLUSIVE
  assert pd.verdict_at_most(0.0, 0.0, 5, 0.05) == pd.INCONCLUSIVE


def test_wilson():
  assert pd.wilson(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
  lo, hi = pd.wilson(0.0, 10)
  assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
  assert pd.wilson(1.0, 10)[1] == pytest.approx(1.0)
  with pytest.raises(ValueError):
    pd.wilson(0.5, 0)
