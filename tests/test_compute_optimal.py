"""Compute-optimal selection by two-fold cross-validation, and its efficiency against a baseline."""
import math

import pytest

from ttc_jax.analysis import compute_optimal as co


def _bins(n_per_bin, bins=(1, 5)):
  return {f"q{b}-{i}": b for b in bins for i in range(n_per_bin)}


def test_folds_are_stratified_halves():
  bins = _bins(7, bins=(1, 2, 3))
  folds = co.two_folds(bins, seed=1)
  for b in (1, 2, 3):
    ones = sum(folds[p] for p in bins if bins[p] == b)
    assert ones in (3, 4)
  assert co.two_folds(bins, seed=1) == folds and co.two_folds(bins, seed=2) != folds


def test_each_bin_gets_its_own_best_strategy():
  bins = _bins(6)
  easy = {p: bins[p] == 1 for p in bins}  # right on every bin-1 question only
  hard = {p: bins[p] == 5 for p in bins}
  out = co.cross_validated({"easy_wins": {4: easy}, "hard_wins": {4: hard}}, bins)
  assert out["chosen"]["1"][4] == ["easy_wins", "easy_wins"]
  assert out["chosen"]["5"][4] == ["hard_wins", "hard_wins"]
  assert out["accuracy"][4] == 1.0 and out["accuracy_by_bin"] == {"1": {4: 1.0}, "5": {4: 1.0}}


def test_questions_are_scored_by_the_choice_made_on_the_other_half():
  bins = _bins(4, bins=(3,))
  folds = co.two_folds(bins)
  a = {p: folds[p] == 0 for p in bins}  # right exactly on fold 0
  b = {p: folds[p] == 1 for p in bins}  # right exactly on fold 1
  out = co.cross_validated({"a": {8: a}, "b": {8: b}}, bins)
  # Fold 0 is scored by the choice made on fold 1 (b), which is wrong on fold 0, and vice versa.
  assert out["chosen"]["3"][8] == ["b", "a"]
  assert out["accuracy"][8] == 0.0
  assert out["in_sample"][8] == 0.5  # choosing on all questions looks better than it generalises


def test_ties_go_to_the_first_listed_strategy_and_missing_budgets_are_skipped():
  bins = _bins(4)
  same = {p: True for p in bins}
  out = co.cross_validated({"best_of_n": {1: same, 4: same}, "beam:4": {4: same}}, bins)
  assert out["chosen"]["1"][4] == ["best_of_n", "best_of_n"]
  assert out["candidates"] == {1: ["best_of_n"], 4: ["best_of_n", "beam:4"]}
  partial = {"x": {2: {next(iter(bins)): True}}}  # covers one question only: not a candidate
  assert co.cross_validated(partial, bins)["accuracy"] == {}


def test_a_bin_of_one_question_chooses_on_the_pooled_other_half():
  bins = {"solo": 1, **{f"q{i}": 2 for i in range(4)}}
  outcomes = {"a": {1: {p: False for p in bins}}, "b": {1: {p: True for p in bins}}}
  out = co.cross_validated(outcomes, bins)
  assert out["accuracy_by_bin"]["1"][1] == 1.0  # "b" chosen on the other fold's bin-2 questions


def test_efficiency_measured_and_interpolated():
  baseline = {1: 0.5, 4: 0.6, 16: 0.7, 64: 0.75}
  optimal = {1: 0.55, 4: 0.7, 16: 0.76, 64: 0.8}
  e = co.efficiency(optimal, baseline)
  assert e["target_accuracy"] == 0.75 and e["budget"] == 16 and e["ratio"] == 4.0
  star = 2 ** (2 + (0.05 / 0.06) * 2)
  assert e["budget_interpolated"] == pytest.approx(star) and e["ratio_interpolated"] == pytest.approx(64 / star)
  first = co.efficiency({4: 0.9, 16: 0.95}, baseline)  # already above at its smallest budget: no extrapolation
  assert first["budget_interpolated"] == 4 and first["ratio"] == 16
  never = co.efficiency({1: 0.5, 4: 0.7, 16: 0.74}, baseline)
  assert never["ratio"] is None and never["ratio_interpolated"] is None
  assert "never reached" in never["reason"] and "0.740" in never["reason"]


def test_shift_budgets_by_the_estimation_cost():
  assert co.shift_budgets({1: 0.5, 4: 0.6}, 32) == {33: 0.5, 36: 0.6}
  assert math.isclose(list(co.shift_budgets({1: 0.5}, 2.5))[0], 3.5)
