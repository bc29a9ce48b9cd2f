"""The contrasts behind PAPER.md's five findings, each fixed in advance, with paired intervals.

Every part of a finding is ONE comparison chosen by a rule written here (which strategies, which
budget, which bins), never the best of several budgets or strategies: picking the largest of many
noisy differences would find a "gain" in pure noise. Each contrast is oriented so that a positive
difference is what the paper claims ("claimed better minus claimed worse"), is paired over the
questions present in both arms and has a 95% bootstrap interval over questions
(`analysis.paired`), stratified by oracle difficulty bin where it pools several bins.

A part's verdict: `supported` / `contradicted` / `no effect` / `inconclusive` from its interval
(`paired.verdict`, or the bounded rules `verdict_at_least` / `verdict_at_most` for "matches" and
"nothing helps much" claims), or `not measurable` with the reason when this run lacks an arm.

Controls: an A/A comparison (beam:sqrt at N = 1 is one sample scored like best-of-N at N = 1)
that must not come out `supported` / `contradicted`; finding 4's baselines must grow from a
quarter of the target budget to it, or "4x less compute" measures nothing.

Inputs (`Inputs`): per-question outcomes {strategy: {budget: {problem_id: correct}}}, oracle bins,
the compute-optimal choices' per-question outcomes, revision grids and the larger policy's pass@1.
"""
import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

from ttc_jax.analysis import flops_exchange as fx
from ttc_jax.analysis import paired as pd

BASELINE = "best_of_n"
BEAM = "beam:4"  # The paper's fixed beam width; beam:sqrt is width 1 at N = 1 (the A/A control).
AA = "beam:sqrt"
LOOKAHEAD_WIDTH = 4  # Lookahead is compared with the beam of its own width (lookahead:4:k vs beam:4).

Outcomes = Mapping[str, Mapping[int, Mapping[str, bool]]]


@dataclasses.dataclass(frozen=True)
class Inputs:
  """Per-question data of one report (all restricted to the report's common questions).

  search, revisions: {strategy: {budget: {pid: correct}}}; revisions named revise_P<P>xL<L>/<method>.
  bins: {pid: oracle bin}, 1 = easiest. compute_optimal: {family: {budget: {pid: correct}}} with
  oracle bins and 2-fold CV. grids: {(P, L): {pid: P x L attempt correctness}}. large_pass1:
  {pid: pass@1} of the larger policy (greedy: 0 or 1). m: its parameter ratio.
  """
  search: Outcomes
  bins: Mapping[str, int]
  num_bins: int
  compute_optimal: Mapping[str, Outcomes] = dataclasses.field(default_factory=dict)
  revisions: Outcomes = dataclasses.field(default_factory=dict)
  grids: Mapping[tuple[int, int], Mapping[str, Sequence[Sequence[bool]]]] = dataclasses.field(default_factory=dict)
  primary_method: str | None = None
  baseline_method: str | None = None
  large_pass1: Mapping[str, float] | None = None
  m: float | None = None
  ratios: Sequence[float] = ()
  small_gain: float = 0.05


def _only(outcomes: Mapping[str, float], pids) -> dict:
  return {p: outcomes[p] for p in pids if p in outcomes}


def _part(pid: str, claim: str, contrast: str, a: Mapping | None = None, b: Mapping | None = None, *,
          strata: Mapping | None = None, rule: str = "above 0", bound: float | None = None,
          reason: str | None = None) -> dict:
  """One part: the paired comparison a - b and its verdict under `rule` ("above 0"; "at least
  <bound>"; "at most <bound>"), or `not measurable` with `reason` when an arm is missing."""
  out = {"part": pid, "claim": claim, "contrast": contrast, "rule": rule if bound is None else f"{rule} {bound:+g}"}
  res = pd.paired(a, b, strata) if a is not None and b is not None else None
  if res is None:
    return {**out, "verdict": pd.NOT_MEASURABLE, "reason": reason or "no question in both arms"}
  v = res["verdict"]
  if rule == "at least":
    v = pd.verdict_at_least(res["low"], res["high"], res["n"], bound)
  elif rule == "at most":
    v = pd.verdict_at_most(res["low"], res["high"], res["n"], bound)
  return {**out, **{k: x for k, x in res.items() if k != "verdict"}, "direction": res["verdict"], "verdict": v}


def describe(part: dict) -> str:
  """"+0.020 [-0.010, +0.050], n = 100: no effect" (or the reason it is not measurable)."""
  if part["verdict"] == pd.NOT_MEASURABLE:
    return f"not measurable: {part['reason']}"
  return (f"{part['difference']:+.3f} [{part['low']:+.3f}, {part['high']:+.3f}], n = {part['n']}: "
          f"{part['verdict']}")


def _missing(pid: str, claim: str, contrast: str, reason: str) -> dict:
  return _part(pid, claim, contrast, reason=reason)


def _bins(inp: Inputs, which: Sequence[int]) -> dict:
  return {p: b for p, b in inp.bins.items() if b in which}


def _common_budgets(x: Mapping, y: Mapping) -> list[int]:
  return sorted(set(x) & set(y))


# ---------------------------------------------------------------------------- findings


def finding1(inp: Inputs) -> list[dict]:
  s, parts = inp.search, []
  claims = ("beam search beats best-of-N at a small budget",
            "the gain of beam search over best-of-N shrinks from the small to the large budget",
            "lookahead is worse than beam search at equal budget")
  beam, bon = s.get(BEAM), s.get(BASELINE)
  common = _common_budgets(beam, bon) if beam and bon else []
  small = [n for n in common if n >= 4]
  if not small:
    parts += [_missing("1a", claims[0], f"{BEAM} minus {BASELINE} at the smallest budget >= 4 where both exist",
                       f"no budget >= 4 with both {BEAM} and {BASELINE}"),
              _missing("1b", claims[1], f"({BEAM} - {BASELINE}) at the smallest minus at the largest common budget",
                       f"no budget >= 4 with both {BEAM} and {BASELINE}")]
  else:
    lo, hi = small[0], common[-1]
    parts.append(_part("1a", claims[0], f"{BEAM} minus {BASELINE} at N = {lo} (the smallest budget >= 4 where both "
                       "exist)", beam[lo], bon[lo]))
    contrast = f"({BEAM} - {BASELINE}) at N = {lo} minus the same at N = {hi} (smallest vs largest common budget)"
    if hi == lo:
      parts.append(_missing("1b", claims[1], contrast, "only one common budget"))
    else:
      gain = lambda n: {p: float(beam[n][p]) - float(bon[n][p]) for p in beam[n] if p in bon[n]}
      parts.append(_part("1b", claims[1], contrast, gain(lo), gain(hi)))
  prefix = f"lookahead:{LOOKAHEAD_WIDTH}:"
  looks = sorted((x for x in s if x.startswith(prefix) and x[len(prefix):].isdigit()),
                 key=lambda x: int(x[len(prefix):]))
  contrast = f"{BEAM} minus lookahead:{LOOKAHEAD_WIDTH}:<smallest k> at the largest budget where both exist"
  at = _common_budgets(beam, s[looks[0]]) if beam and looks else []
  if not at:
    parts.append(_missing("1c", claims[2], contrast, f"no budget with both {BEAM} and a lookahead of width "
                          f"{LOOKAHEAD_WIDTH}"))
  else:
    parts.append(_part("1c", claims[2], f"{BEAM} minus {looks[0]} at N = {at[-1]} (the largest budget where both "
                       "exist)", beam[at[-1]], s[looks[0]][at[-1]]))
  return parts


def finding2(inp: Inputs) -> list[dict]:
  s, nb, parts = inp.search, inp.num_bins, []
  claims = ("on the easiest bin beam search degrades at high budgets",
            "on the medium / hard bins beam search beats best-of-N",
            f"on the hardest bin more samples help little (gain at most {inp.small_gain:g})")
  beam, bon = s.get(BEAM), s.get(BASELINE)
  easy = _bins(inp, [1])
  bs = sorted(beam) if beam else []
  if len(bs) < 2:
    parts.append(_missing("2a", claims[0], f"bin 1: {BEAM} at its smallest minus at its largest budget",
                          f"{BEAM} has fewer than two budgets"))
  else:
    parts.append(_part("2a", claims[0], f"bin 1: {BEAM} at N = {bs[0]} minus {BEAM} at N = {bs[-1]} (its smallest "
                       "and largest budgets)", _only(beam[bs[0]], easy), _only(beam[bs[-1]], easy)))
  middle = list(range(2, nb))
  common = _common_budgets(beam, bon) if beam and bon else []
  contrast = f"{f'bins {middle[0]}-{middle[-1]}' if middle else 'the middle bins'}: {BEAM} minus {BASELINE}, " \
             f"per question averaged over every common budget{f' (N = {common})' if common else ''}, stratified by bin"
  if not middle or not common:
    parts.append(_missing("2b", claims[1], contrast, "fewer than 3 bins" if not middle else
                          f"no budget with both {BEAM} and {BASELINE}"))
  else:
    pids = [p for p in _bins(inp, middle) if all(p in beam[n] and p in bon[n] for n in common)]
    mean = lambda o: {p: float(np.mean([float(o[n][p]) for n in common])) for p in pids}
    parts.append(_part("2b", claims[1], contrast, mean(beam), mean(bon), strata=_bins(inp, middle)))
  hard = _bins(inp, [nb])
  ns = sorted(bon) if bon else []
  contrast = f"bin {nb}: {BASELINE} at its largest minus at its smallest budget"
  if len(ns) < 2:
    parts.append(_missing("2c", claims[2], contrast, f"{BASELINE} has fewer than two budgets"))
  else:
    parts.append(_part("2c", claims[2], f"bin {nb}: {BASELINE} at N = {ns[-1]} minus at N = {ns[0]}",
                       _only(bon[ns[-1]], hard), _only(bon[ns[0]], hard), rule="at most", bound=inp.small_gain))
  return parts


def _split(n: int, p: int, method: str) -> str:
  return f"revise_P{p}xL{n // p}/{method}"


def finding3(inp: Inputs) -> list[dict]:
  rev, nb, parts = inp.revisions, inp.num_bins, []
  claims = ("pass@1 rises from the first to the last revision",
            "sequential revisions beat parallel sampling at equal budget",
            "easy questions prefer all-sequential revisions",
            "harder questions prefer a mix: it beats all-sequential",
            "harder questions prefer a mix: it beats all-parallel")
  chains = [pl for pl in inp.grids if pl[1] > 1]
  if not chains:
    parts.append(_missing("3a", claims[0], "last minus first attempt's correctness in the longest chains",
                          "no revision chain longer than 1"))
  else:
    pl = max(chains, key=lambda x: (x[1], x[0]))  # The longest chains (as the report's pass@1 by step).
    grid = inp.grids[pl]
    step = lambda t: {p: float(np.mean([chain[t] for chain in g])) for p, g in grid.items() if p in inp.bins}
    parts.append(_part("3a", claims[0], f"P{pl[0]}xL{pl[1]}: correctness of the last attempt minus the first, "
                       "per question averaged over its chains", step(-1), step(0)))
  meth = inp.primary_method
  budgets = sorted(n for n in {b for o in rev.values() for b in o}
                   if meth and _split(n, 1, meth) in rev and _split(n, n, meth) in rev
                   and n in rev[_split(n, 1, meth)] and n in rev[_split(n, n, meth)])
  if not budgets:
    reason = "no budget with both the all-sequential and the all-parallel split" + (f" ({meth})" if meth else "")
    for pid, claim in zip(("3b", "3c", "3d", "3e"), claims[1:]):
      parts.append(_missing(pid, claim, "splits at the largest budget with both P1xLN and PNxL1", reason))
    return parts
  n = budgets[-1]
  seq, par = rev[_split(n, 1, meth)][n], rev[_split(n, n, meth)][n]
  name = lambda p: _split(n, p, meth)
  parts.append(_part("3b", claims[1], f"{name(1)} minus {name(n)} at N = {n} (the largest budget with both)",
                     seq, par))
  parts.append(_part("3c", claims[2], f"bin 1: {name(1)} minus {name(n)}", _only(seq, _bins(inp, [1])),
                     _only(par, _bins(inp, [1]))))
  # The mix is fixed by the grid alone: P nearest sqrt(N) in log scale (ties: fewer chains), 1 < P < N.
  mixes = sorted((abs(math.log(p) - 0.5 * math.log(n)), p) for p in range(2, n)
                 if n % p == 0 and name(p) in rev and n in rev[name(p)])
  middle = list(range(2, nb))
  label = f"bins {middle[0]}-{middle[-1]}" if middle else "middle bins"
  for pid, claim, other, oname in (("3d", claims[3], seq, name(1)), ("3e", claims[4], par, name(n))):
    contrast = f"{label}: the mix (P nearest sqrt(N)) minus {oname}, stratified by bin"
    if not mixes or not middle:
      parts.append(_missing(pid, claim, contrast, "fewer than 3 bins" if not middle else f"no split with 1 < P < {n}"))
    else:
      mix = rev[name(mixes[0][1])][n]
      parts.append(_part(pid, claim, f"{label}: {name(mixes[0][1])} minus {oname} at N = {n}, stratified by bin",
                         mix, other, strata=_bins(inp, middle)))
  return parts


def finding4(inp: Inputs) -> tuple[list[dict], list[dict]]:
  """Parts (search, revisions) and their controls (the baseline must grow from N/4 to N)."""
  parts, controls = [], []
  baselines = {"search": (BASELINE, inp.search.get(BASELINE))}
  if inp.baseline_method:
    meth = inp.baseline_method
    par = {n: o[n] for s, o in inp.revisions.items() for n in o if s == _split(n, n, meth)}
    baselines["revisions"] = (f"all-parallel revise_P<N>xL1/{meth}", par)
  else:
    baselines["revisions"] = ("all-parallel revisions", None)
  for pid, fam in (("4a", "search"), ("4b", "revisions")):
    bname, base = baselines[fam]
    claim = f"{fam}: compute-optimal at a quarter of the budget matches {bname} (not worse by more than {pd.MARGIN:g})"
    co = inp.compute_optimal.get(fam, {})
    top = max(base) if base else None
    contrast = f"compute-optimal ({fam}, oracle bins, 2-fold CV) at N/4 minus {bname} at N = its largest budget"
    if top is None or top % 4 or top // 4 not in base or top // 4 not in co:
      parts.append(_missing(pid, claim, contrast, f"no {bname} at its largest budget and a quarter of it, or no "
                            f"compute-optimal {fam} at the quarter"))
      continue
    q = top // 4
    control = _part(f"control {pid}", f"{bname} grows from N = {q} to N = {top}", f"{bname} at N = {top} minus at "
                    f"N = {q}", base[top], base[q])
    controls.append(control)
    contrast = f"compute-optimal ({fam}, oracle bins, 2-fold CV) at N = {q} minus {bname} at N = {top}"
    if control["verdict"] != pd.SUPPORTED:
      parts.append(_missing(pid, claim, contrast, f"the baseline does not clearly grow from N = {q} to N = {top} "
                            f"({describe(control)}): matching it with less compute measures nothing"))
    else:
      parts.append(_part(pid, claim, contrast, co[q], base[top], rule="at least", bound=-pd.MARGIN))
  return parts, controls


def at_budget(per_question: Outcomes, k: float, pids) -> tuple[dict, str]:
  """{pid: value at budget k} (log2-interpolated per question, as the curves are) and the flag."""
  out, flag = {}, "no_data"
  for p in pids:
    v, flag = fx.value_at_budget({n: float(o[p]) for n, o in per_question.items() if p in o}, k)
    if v is not None:
      out[p] = v
  return out, flag


def finding5(inp: Inputs) -> list[dict]:
  nb, parts = inp.num_bins, []
  if inp.large_pass1 is None or not inp.m or not inp.compute_optimal.get("all"):
    return [_missing("5", "FLOPs-matched exchange", "test-time compute at k generations vs the larger model",
                     "no larger policy, policy train summary or compute-optimal curve")]
  easy_mid = list(range(1, max(1, math.ceil(0.6 * nb)) + 1))
  pids = sorted(inp.bins)
  large = _only(inp.large_pass1, pids)
  for i, r in enumerate(inp.ratios):
    k = fx.matched_budget(inp.m, r)
    tt, flag = at_budget(inp.compute_optimal["all"], k, pids)
    at = f"R = {r:g}, k = {k:.1f} ({flag})"
    if r < 1:
      parts.append(_part(f"5{chr(97 + 2 * i)}", f"R = {r:g}: test-time compute beats the larger model on easy / "
                         "medium questions", f"{at}, bins {easy_mid[0]}-{easy_mid[-1]}: compute-optimal (all "
                         "strategies) minus the larger model's greedy accuracy, stratified by bin",
                         tt, large, strata=_bins(inp, easy_mid)))
      parts.append(_part(f"5{chr(98 + 2 * i)}", f"R = {r:g}: the larger model wins on the hardest questions",
                         f"{at}, bin {nb}: the larger model minus compute-optimal", _only(large, _bins(inp, [nb])),
                         _only(tt, _bins(inp, [nb]))))
    else:
      parts.append(_part(f"5{chr(97 + 2 * i)}", f"R = {r:g}: the larger model wins", f"{at}, all bins: the larger "
                         "model minus compute-optimal, stratified by bin", large, tt, strata=inp.bins))
  return parts


def controls(inp: Inputs) -> list[dict]:
  """The A/A comparison: two names for one algorithm must not differ beyond chance."""
  a, b = inp.search.get(AA, {}).get(1), inp.search.get(BASELINE, {}).get(1)
  out = _part("control A/A", f"{AA} at N = 1 (beam width 1: one sample) is best-of-N at N = 1",
              f"{AA} minus {BASELINE} at N = 1", a, b, reason=f"no {AA} or {BASELINE} at N = 1")
  if out["verdict"] in (pd.SUPPORTED, pd.CONTRADICTED):
    out["flag"] = ("the A/A control differs beyond its interval: either the two arms are not the same algorithm "
                   "or the intervals are too narrow; read every verdict with care")
  return [out]


def all_parts(inp: Inputs) -> dict:
  """{"parts": {finding number: [part]}, "controls": [part]} for results.json."""
  p4, c4 = finding4(inp)
  return {"parts": {"1": finding1(inp), "2": finding2(inp), "3": finding3(inp), "4": p4, "5": finding5(inp)},
          "controls": controls(inp) + c4}
