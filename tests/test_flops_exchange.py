"""FLOPs-matched exchange: k = M + 3 (M - 1) / R and reading the test-time curve at k."""
import pytest

from ttc_jax.analysis import flops_exchange as fx


def test_matched_budget_matches_the_paper():
  ks = [fx.matched_budget(14, r) for r in fx.PAPER_RATIOS]
  assert [round(k) for k in ks] == [258, 63, 16]  # PAPER.md: about 258, 63 and 16
  assert fx.matched_budget(14, 22) != pytest.approx(14 + 3 * 22 * 13)  # not the misreading M + 3R(M-1)
  assert fx.matched_budget(1, 0.5) == 1  # same model: no extra inference


def test_value_at_budget_flags():
  curve = {4: 0.4, 16: 0.6, 64: 0.7}
  assert fx.value_at_budget(curve, 16) == (0.6, "measured")
  value, flag = fx.value_at_budget(curve, 8)
  assert flag == "interpolated" and value == pytest.approx(0.5)  # halfway in log2 between 4 and 16
  assert fx.value_at_budget(curve, 258) == (0.7, "capped_at_max_budget")
  assert fx.value_at_budget(curve, 2) == (0.4, "raised_to_min_budget")
  assert fx.value_at_budget({}, 2) == (None, "no_data")


def test_exchange_per_bin():
  test_time = {"1": {1: 0.8, 16: 0.9}, "5": {1: 0.05, 16: 0.1}}
  larger = {"1": 0.85, "5": 0.2}
  entries = fx.exchange(14.0, (0.16, 22.0), test_time, larger)
  assert [e["R"] for e in entries] == [0.16, 22.0]
  low = entries[0]
  assert low["matched_budget"] == pytest.approx(14 + 3 * 13 / 0.16)
  assert low["by_bin"]["1"]["flag"] == "capped_at_max_budget" and low["by_bin"]["1"]["winner"] == "test_time"
  assert low["by_bin"]["5"]["winner"] == "larger_model"
  assert low["by_bin"]["1"]["relative_improvement"] == pytest.approx((0.9 - 0.85) / 0.85)
  assert entries[1]["by_bin"]["1"]["flag"] == "interpolated"
