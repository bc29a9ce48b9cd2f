"""analysis.contrasts / analysis.findings on synthetic per-question records with known effects.

Arms share one latent difficulty per question (correct iff u_q < accuracy), as two strategies run
on the same questions do, unless a test draws them independently (the A/A control).
"""
import numpy as np
import pytest

from ttc_jax.analysis import contrasts as ct
from ttc_jax.analysis import paired as pd
from ttc_jax.analysis.findings import findings, status


def _pids(n):
  return [f"q{i:04d}" for i in range(n)]


def _arm(u, acc):
  return {p: bool(x < acc) for p, x in u.items()}


def _inputs(n, accs, *, seed=0, independent=(), bins=5, **kw):
  """accs: {strategy: {budget: accuracy}}; strategies in `independent` get their own latent draws."""
  rng = np.random.default_rng(seed)
  pids = _pids(n)
  u = dict(zip(pids, rng.random(n)))
  search = {}
  for s, by_b in accs.items():
    lat = dict(zip(pids, rng.random(n))) if s in independent else u
    search[s] = {b: _arm(lat, a) for b, a in by_b.items()}
  binned = {p: 1 + i * bins // n for i, p in enumerate(pids)}
  return ct.Inputs(search=search, bins=binned, num_bins=bins, **kw)


def _part(parts, pid):
  return next(p for p in parts if p["part"] == pid)


@pytest.mark.parametrize("beam, expected", [(0.65, pd.SUPPORTED), (0.35, pd.CONTRADICTED), (0.5, pd.NO_EFFECT)])
def test_beam_vs_best_of_n_large_n(beam, expected):
  inp = _inputs(500, {"best_of_n": {1: 0.4, 4: 0.5, 16: 0.6}, "beam:4": {4: beam, 16: 0.6}})
  part = _part(ct.finding1(inp), "1a")
  assert part["verdict"] == expected and part["n"] == 500
  assert part["difference"] == pytest.approx(beam - 0.5, abs=0.06)
  assert part["low"] <= part["difference"] <= part["high"]


def test_small_n_is_inconclusive():
  inp = _inputs(20, {"best_of_n": {4: 0.5}, "beam:4": {4: 0.6}}, independent=("beam:4",))
  assert _part(ct.finding1(inp), "1a")["verdict"] == pd.INCONCLUSIVE


def test_no_selection_over_strategies_or_budgets():
  # beam:sqrt is far ahead at N = 1 and beam:4 equals best-of-N: the old max over beams called this a
  # win; the fixed contrast (beam:4 at the smallest budget >= 4) finds no effect.
  inp = _inputs(400, {"best_of_n": {1: 0.3, 4: 0.5, 16: 0.6}, "beam:sqrt": {1: 0.6, 4: 0.5, 16: 0.6},
                      "beam:4": {4: 0.5, 16: 0.9}})
  parts = ct.finding1(inp)
  assert _part(parts, "1a")["verdict"] == pd.NO_EFFECT and "N = 4" in _part(parts, "1a")["contrast"]
  # Gain 0 at N = 4, +0.3 at N = 16: it grows instead of shrinking.
  assert _part(parts, "1b")["verdict"] == pd.CONTRADICTED
  assert _part(parts, "1c")["verdict"] == pd.NOT_MEASURABLE  # No lookahead.


def test_finding1_reproduced_only_when_every_part_is_supported():
  accs = {"best_of_n": {4: 0.4, 16: 0.6}, "beam:4": {4: 0.6, 16: 0.62}, "lookahead:4:1": {16: 0.45}}
  parts = ct.finding1(_inputs(500, accs))
  assert [p["verdict"] for p in parts] == [pd.SUPPORTED] * 3
  assert status([p["verdict"] for p in parts]) == "reproduced"
  accs["lookahead:4:1"] = {16: 0.62}
  accs["lookahead:4:10"] = {16: 0.3}  # k = 1 is the smallest: this one is not the contrast.
  parts = ct.finding1(_inputs(500, accs))
  assert status([p["verdict"] for p in parts]) == "partly supported" and "lookahead:4:1 " in parts[2]["contrast"]


def test_status():
  assert status([pd.NOT_MEASURABLE] * 2) == "not measurable"
  assert status([pd.SUPPORTED, pd.NOT_MEASURABLE]) == "supported where measured"
  assert status([pd.CONTRADICTED, pd.INCONCLUSIVE]) == "not reproduced"
  assert status([pd.NO_EFFECT]) == "not reproduced"
  assert status([pd.INCONCLUSIVE, pd.NOT_MEASURABLE]) == "inconclusive"


@pytest.mark.parametrize("aa, verdicts", [(0.5, (pd.NO_EFFECT, pd.INCONCLUSIVE)), (0.7, (pd.SUPPORTED,))])
def test_aa_control(aa, verdicts):
  # The same algorithm under two names, drawn independently: never supported or contradicted. Arms
  # that really differ are flagged.
  for seed in range(5):
    inp = _inputs(300, {"best_of_n": {1: 0.5}, "beam:sqrt": {1: aa}}, independent=("beam:sqrt",), seed=seed)
    (c,) = ct.controls(inp)
    assert c["verdict"] in verdicts
    assert ("flag" in c) == (aa != 0.5)


def test_finding2_stratified_by_bin():
  # beam:4 ahead by 0.1 at both common budgets (bins are drawn by index, regardless of the latent).
  n = 500
  inp = _inputs(n, {"best_of_n": {1: 0.3, 4: 0.4, 16: 0.41}, "beam:4": {4: 0.5, 16: 0.51}})
  parts = ct.finding2(inp)
  assert _part(parts, "2b")["verdict"] == pd.SUPPORTED and "stratified" in _part(parts, "2b")["contrast"]
  assert _part(parts, "2b")["n"] == 300  # Bins 2-4 of 5.
  assert _part(parts, "2a")["n"] == 100 and _part(parts, "2a")["verdict"] in (pd.CONTRADICTED, pd.INCONCLUSIVE,
                                                                              pd.NO_EFFECT)
  # Hardest bin: best-of-N gains about 0.11 from N = 1 to 16, more than "nothing helps much" allows.
  assert _part(parts, "2c")["rule"] == "at most +0.05" and _part(parts, "2c")["verdict"] != pd.SUPPORTED


def test_finding4_needs_a_growing_baseline():
  n = 500
  pids = _pids(n)
  u = dict(zip(pids, np.random.default_rng(0).random(n)))
  flat = ct.Inputs(search={"best_of_n": {4: _arm(u, 0.5), 16: _arm(u, 0.5)}}, bins={p: 1 for p in pids},
                   num_bins=1, compute_optimal={"search": {4: _arm(u, 0.5)}})
  parts, controls = ct.finding4(flat)
  assert parts[0]["verdict"] == pd.NOT_MEASURABLE and "does not clearly grow" in parts[0]["reason"]
  assert controls[0]["verdict"] == pd.NO_EFFECT
  grows = ct.Inputs(search={"best_of_n": {4: _arm(u, 0.4), 16: _arm(u, 0.6)}}, bins={p: 1 for p in pids},
                    num_bins=1, compute_optimal={"search": {4: _arm(u, 0.6)}})
  parts, controls = ct.finding4(grows)
  assert controls[0]["verdict"] == pd.SUPPORTED and parts[0]["verdict"] == pd.SUPPORTED
  worse = ct.Inputs(search={"best_of_n": {4: _arm(u, 0.4), 16: _arm(u, 0.6)}}, bins={p: 1 for p in pids},
                    num_bins=1, compute_optimal={"search": {4: _arm(u, 0.45)}})
  assert ct.finding4(worse)[0][0]["verdict"] == pd.CONTRADICTED


def test_finding3_revisions():
  n = 400
  pids = _pids(n)
  rng = np.random.default_rng(0)
  u = dict(zip(pids, rng.random(n)))
  rev = {}
  for p, acc in ((1, 0.6), (4, 0.55), (16, 0.4)):  # All-sequential best, then the mix, then all-parallel.
    rev[f"revise_P{p}xL{16 // p}/weighted_hierarchical"] = {16: _arm(u, acc)}
  grids = {(1, 16): {q: [[bool(u[q] < 0.3 + 0.02 * t) for t in range(16)]] for q in pids}}  # Rises by step.
  inp = ct.Inputs(search={}, bins={q: 1 + i * 5 // n for i, q in enumerate(pids)}, num_bins=5, revisions=rev,
                  grids=grids, primary_method="weighted_hierarchical", baseline_method="weighted_flat")
  v = {p["part"]: p["verdict"] for p in ct.finding3(inp)}
  assert v["3a"] == pd.SUPPORTED and v["3b"] == pd.SUPPORTED
  assert v["3d"] == pd.CONTRADICTED  # The mix loses to all-sequential here.
  assert "revise_P4xL4" in _part(ct.finding3(inp), "3e")["contrast"]


def test_finding5_flops_matched():
  n = 500
  pids = _pids(n)
  u = dict(zip(pids, np.random.default_rng(0).random(n)))
  inp = ct.Inputs(search={}, bins={q: 1 + i * 5 // n for i, q in enumerate(pids)}, num_bins=5,
                  compute_optimal={"all": {4: _arm(u, 0.3), 16: _arm(u, 0.4)}},
                  large_pass1={q: float(x) for q, x in _arm(u, 0.7).items()}, m=14.0, ratios=(0.16, 22.0))
  v = {p["part"]: p["verdict"] for p in ct.finding5(inp)}
  # Bins are drawn regardless of the latent: the larger model is ahead by about 0.3 in every bin.
  assert v == {"5a": pd.CONTRADICTED, "5b": pd.SUPPORTED, "5c": pd.SUPPORTED}
  assert ct.finding5(ct.Inputs(search={}, bins={}, num_bins=5))[0]["verdict"] == pd.NOT_MEASURABLE


def test_findings_read_the_paired_section():
  inp = _inputs(200, {"best_of_n": {1: 0.4, 4: 0.5, 16: 0.6}, "beam:4": {4: 0.6, 16: 0.6}})
  r = {"paired": ct.all_parts(inp), "param_ratio_M": None}
  out = findings(r)
  assert [f["number"] for f in out] == [1, 2, 3, 4, 5]
  assert out[2]["status"] == out[4]["status"] == "not measurable"
  assert "1a" in out[0]["evidence"] and "[" in out[0]["evidence"]
