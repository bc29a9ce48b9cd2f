"""Job `report`: the paper's analyses over one workdir -> report/{results.json, report.md, *.png}.

Reads (paths are `report.*` config fields, relative to WORKDIR):
  difficulty    difficulty/difficulty.json (job `difficulty`)                      required
  search        eval/search/<strategy>/N<budget>/ records (job `eval_search`)      required
  revisions     eval/revisions/P<P>xL<L>/ records (job `eval_revisions`)           optional
  policy        policy/train_summary.json (job `train_policy`)                     optional
  large_policy  large_policy/{train_summary.json, eval.json} (greedy eval)         optional

Only questions present in every input that exists are used (their number is recorded);
difficulty bins are re-drawn over them from difficulty.json's pass@1 and predicted scores,
with the same quantile rule and tie-break (`analysis.difficulty`). Then: accuracy curves per
strategy and per bin, compute-optimal selection by two-fold cross-validation
(`analysis.compute_optimal`) for search, revisions and both, its efficiency against best-of-N
and against all-parallel revisions, the FLOPs-matched exchange against the larger policy
(`analysis.flops_exchange`), and for each of PAPER.md's five findings whether this run
reproduces it, worded from the measured numbers. Cheap: no model is loaded.
"""
import dataclasses
import json
import math
import os
import re

import numpy as np
from absl import logging

from ttc_jax import config_parsing, shards
from ttc_jax.analysis import compute_optimal as co
from ttc_jax.analysis import difficulty as diff
from ttc_jax.analysis import flops_exchange as fx
from ttc_jax.jobs.sample_solutions import resolve
from ttc_jax.provenance import git_commit, write_json

SECTIONS = {"job", "seed", "report"}
BASELINE = "best_of_n"
KINDS = ("oracle", "predicted", "predicted_with_cost")


@dataclasses.dataclass(frozen=True)
class ReportConfig:
  difficulty: str = "difficulty/difficulty.json"
  search: str = "eval/search"
  revisions: str = "eval/revisions"  # Optional: missing -> the revision sections say so.
  policy: str = "policy"  # train_summary.json: params, train_tokens (optional, needed for M).
  large_policy: str = "large_policy"  # train_summary.json + greedy eval.json (optional).
  out: str = "report"
  ratios: tuple[float, ...] = fx.PAPER_RATIOS  # R = D_inference / D_pretrain for the FLOPs exchange.
  small_gain: float = 0.05  # "Nothing helps much" on the hardest bin: best gain over N = 1 at most this.

  def __post_init__(self):
    if not self.ratios or any(r <= 0 for r in self.ratios):
      raise ValueError(f"report.ratios={self.ratios} must be positive")


def _key(b) -> str:
  """JSON key of a budget: integers without a decimal point."""
  b = float(b)
  return str(int(b)) if b == int(b) else f"{b:g}"


def _keys(curve: dict) -> dict:
  return {_key(b): a for b, a in sorted(curve.items())}


# ---------------------------------------------------------------------------- inputs


def _finished(dirs: list[str]) -> tuple[list[list[dict]], list[str]]:
  """Records of each finished shard directory (with manifest.json); the unfinished ones' paths."""
  done, unfinished = [], []
  for path in dirs:
    if shards.is_complete(path):
      done.append(shards.read_records(path))
    else:
      unfinished.append(path)
  return done, unfinished


def _subdirs(root: str, pattern: str) -> list[str]:
  return [os.path.join(root, d) for d in sorted(os.listdir(root))
          if re.fullmatch(pattern, d) and os.path.isdir(os.path.join(root, d))]


def load_search(path: str) -> tuple[dict, list[str]]:
  """{strategy: {budget: {problem_id: correct}}} (best_of_n first, then results.json's order), notes."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f"report.search: {path} is missing; run the eval_search job (configs/search_eval.py) first")
  runs, unfinished = _finished([n for d in _subdirs(path, r".+") for n in _subdirs(d, r"N\d+")])
  runs = [recs for recs in runs if recs]
  if not runs:
    raise FileNotFoundError(f"report.search: no finished <strategy>/N<budget> records under {path}; run the "
                            "eval_search job (configs/search_eval.py) first")
  outcomes = {}
  for recs in runs:
    if recs:
      outcomes.setdefault(recs[0]["strategy"], {})[int(recs[0]["generation_budget"])] = {
          r["problem_id"]: bool(r["correct"]) for r in recs}
  order = []
  results = os.path.join(path, "results.json")
  if os.path.exists(results):
    with open(results) as f:
      order = list(json.load(f).get("config", {}).get("strategies", []))
  ranked = sorted(outcomes, key=lambda s: (s != BASELINE, order.index(s) if s in order else len(order), s))
  notes = [f"search: unfinished runs ignored: {', '.join(unfinished)}"] if unfinished else []
  return {s: dict(sorted(outcomes[s].items())) for s in ranked}, notes


def load_revisions(path: str) -> tuple[dict | None, list[str]]:
  """{"outcomes": {"revise_P<P>xL<L>/<method>": {N: {pid: correct}}}, "grids": {(P, L): {pid: grid}},
  "methods", "primary", "baseline_method"} or None with a note."""
  if not os.path.isdir(path):
    return None, [f"revisions: {path} is missing (run eval_revisions, configs/revision_eval.py): revision "
                  "sections and the revisions-only compute-optimal family are left out"]
  runs, unfinished = _finished(_subdirs(path, r"P\d+xL\d+"))
  runs = [recs for recs in runs if recs]
  notes = [f"revisions: unfinished splits ignored: {', '.join(unfinished)}"] if unfinished else []
  if not runs:
    return None, notes + [f"revisions: no finished P<P>xL<L> records under {path}; revision sections left out"]
  outcomes, grids, methods, primary = {}, {}, [], None
  for recs in runs:
    p, l = int(recs[0]["parallel"]), int(recs[0]["revisions"])
    grids[(p, l)] = {r["problem_id"]: r["attempt_correct"] for r in recs}
    for m in recs[0]["correct_by_method"]:
      if m not in methods:
        methods.append(m)
      outcomes.setdefault(f"revise_P{p}xL{l}/{m}", {})[p * l] = {r["problem_id"]: bool(r["correct_by_method"][m])
                                                                for r in recs}
    primary = primary or recs[0].get("primary_method")
  primary = primary or ("weighted_hierarchical" if "weighted_hierarchical" in methods else "majority_flat")
  baseline = "weighted_flat" if "weighted_flat" in methods else "majority_flat"

  def rank(name):  # the all-parallel split with the baseline method first (it wins ties), then by budget
    p, l, m = _parse_revision(name)
    return (not (l == 1 and m == baseline), p * l, -p, methods.index(m))

  return {"outcomes": {s: outcomes[s] for s in sorted(outcomes, key=rank)}, "grids": grids, "methods": methods,
          "primary": primary, "baseline_method": baseline}, notes


def _parse_revision(name: str) -> tuple[int, int, str]:
  m = re.fullmatch(r"revise_P(\d+)xL(\d+)/(.+)", name)
  return int(m.group(1)), int(m.group(2)), m.group(3)


def _read_json(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def load_policies(policy_dir: str, large_dir: str) -> tuple[dict | None, dict | None, dict | None, list[str]]:
  """(policy summary, large summary, {pid: large pass1} or None, notes)."""
  notes = []
  small = _read_json(os.path.join(policy_dir, "train_summary.json"))
  if small is None:
    notes.append(f"policy: {policy_dir}/train_summary.json is missing (train_policy): no FLOPs-matched exchange")
  large = _read_json(os.path.join(large_dir, "train_summary.json"))
  large_eval = _read_json(os.path.join(large_dir, "eval.json"))
  if large is None or large_eval is None:
    notes.append(f"large_policy: {large_dir}/train_summary.json or eval.json is missing (train_policy with "
                 "stage=large_policy): no FLOPs-matched exchange")
    return small, large, None, notes
  cfg = large_eval.get("config", {})
  if cfg.get("temperature", 0.0) != 0.0 or cfg.get("samples_per_problem", 1) != 1:
    notes.append(f"large_policy: eval.json is not greedy (temperature {cfg.get('temperature')}, "
                 f"{cfg.get('samples_per_problem')} samples): its per-problem pass@1 is used as its accuracy")
  if small is not None and small.get("train_tokens") != large.get("train_tokens"):
    notes.append(f"large_policy trained on {large.get('train_tokens')} tokens, the policy on "
                 f"{small.get('train_tokens')}: the exchange assumes the same pretraining data")
  return small, large, {r["id"]: float(r["pass1"]) for r in large_eval["problems"]}, notes


# ---------------------------------------------------------------------------- analysis


def _mean(xs) -> float | None:
  xs = list(xs)
  return float(np.mean(xs)) if xs else None


def analyse(cfg: ReportConfig, difficulty: dict, search: dict, revisions: dict | None, small: dict | None,
            large: dict | None, large_pass1: dict | None, notes: list[str]) -> dict:
  """results.json's content (without config / git_commit) from loaded inputs. Pure."""
  seed = int(difficulty.get("config", {}).get("seed", 0))
  num_bins = int(difficulty["num_bins"])
  per_problem = {p["problem_id"]: p for p in difficulty["problems"]}
  sets = {"difficulty": set(per_problem)}
  sets["search"] = set.intersection(*(set(res) for by_b in search.values() for res in by_b.values()))
  if revisions:
    sets["revisions"] = set.intersection(*(set(g) for g in revisions["grids"].values()))
  if large_pass1 is not None:
    sets["large_policy"] = set(large_pass1)
  pids = sorted(set.intersection(*sets.values()))
  if not pids:
    raise ValueError(f"no problem is in every input ({ {k: len(v) for k, v in sets.items()} }): were they run on "
                     "the same split and problems?")
  counts = {k: len(v) for k, v in sets.items()}
  if any(c != len(pids) for c in counts.values()):
    notes.append(f"using the {len(pids)} problems present in every input (per input: {counts}); difficulty bins "
                 "are re-drawn over them")
  pass1 = {p: per_problem[p]["pass1"] for p in pids}
  predicted = {p: per_problem[p]["predicted_score"] for p in pids}
  bins = {"oracle": diff.quantile_bins(pass1, num_bins, seed=seed),
          "predicted": diff.quantile_bins(predicted, num_bins, seed=seed)}
  bin_names = [str(b) for b in range(1, num_bins + 1)]

  def difficulty_summary(kind):
    p, s = diff.bin_summary(pass1, bins[kind], num_bins), diff.bin_summary(predicted, bins[kind], num_bins)
    return {b: {"count": p[b]["count"], "mean_pass1": p[b]["mean"], "min_pass1": p[b]["min"],
                "max_pass1": p[b]["max"], "mean_predicted_score": s[b]["mean"]} for b in bin_names}

  members = {b: [p for p in pids if str(bins["oracle"][p]) == b] for b in bin_names}
  all_outcomes = dict(search)
  if revisions:
    all_outcomes.update(revisions["outcomes"])
  curves = {s: co.accuracy_curve(o, pids) for s, o in all_outcomes.items()}
  curves_by_bin = {s: {b: co.accuracy_curve(o, members[b]) for b in bin_names} for s, o in all_outcomes.items()}

  cost_gen = float(difficulty["cost"]["per_problem"].get("generations", 0.0))
  families = {"search": search}
  if revisions:
    families["revisions"] = revisions["outcomes"]
    families["all"] = all_outcomes
  else:
    families["all"] = search
  by_family, chosen = {}, {}
  for fam, outcomes in families.items():
    by_family[fam], chosen[fam] = {}, {}
    for kind in ("oracle", "predicted"):
      r = co.cross_validated(outcomes, bins[kind], seed=seed)
      by_family[fam][kind] = r
      chosen[fam][kind] = {b: {_key(n): c for n, c in ch.items()} for b, ch in r["chosen"].items()}
    by_family[fam]["predicted_with_cost"] = {
        "accuracy": co.shift_budgets(by_family[fam]["predicted"]["accuracy"], cost_gen),
        "accuracy_by_bin": {b: co.shift_budgets(c, cost_gen)
                            for b, c in by_family[fam]["predicted"]["accuracy_by_bin"].items()}}

  # Efficiency: compute-optimal vs best-of-N at its largest budget (search), vs all-parallel revisions.
  efficiency = {}
  if BASELINE in curves:
    efficiency["search"] = {"baseline": BASELINE, **co.efficiency(by_family["search"]["oracle"]["accuracy"],
                                                                  curves[BASELINE]),
                            "by_curve": {k: co.efficiency(by_family["search"][k]["accuracy"], curves[BASELINE])
                                         for k in KINDS}}
  else:
    efficiency["search"] = {"ratio": None, "ratio_interpolated": None,
                            "reason": f"no {BASELINE} strategy in the search results"}
  parallel_curve = {}
  if revisions:
    bm = revisions["baseline_method"]
    parallel_curve = {n: curves[s][n] for s in curves if s.startswith("revise_") and s.endswith("/" + bm)
                      for n in curves[s] if _parse_revision(s)[1] == 1}
    efficiency["revisions"] = {"baseline": f"revise_P<N>xL1/{bm}",
                               **co.efficiency(by_family["revisions"]["oracle"]["accuracy"], parallel_curve),
                               "by_curve": {k: co.efficiency(by_family["revisions"][k]["accuracy"], parallel_curve)
                                            for k in KINDS}}
    if not parallel_curve:
      efficiency["revisions"]["reason"] = "no all-parallel split (P = N, L = 1) was evaluated"
  else:
    efficiency["revisions"] = {"ratio": None, "ratio_interpolated": None, "reason": "no revision results"}

  # FLOPs-matched exchange (oracle bins; test-time = compute-optimal over every strategy).
  flops_matched, m = [], None
  if small is not None and large is not None and large_pass1 is not None:
    m = float(large["params"]) / float(small["params"])
    larger_by_bin = {b: _mean(large_pass1[p] for p in members[b]) for b in bin_names}
    flops_matched = fx.exchange(m, cfg.ratios, by_family["all"]["oracle"]["accuracy_by_bin"], larger_by_bin)
    larger_all = _mean(large_pass1[p] for p in pids)
    for entry in flops_matched:
      for b in entry["by_bin"].values():
        if b["flag"] == "capped_at_max_budget":
          b["note"] = "k is beyond the largest evaluated budget: the value there understates test-time compute"
      tt, flag = fx.value_at_budget(by_family["all"]["oracle"]["accuracy"], entry["matched_budget"])
      entry["overall"] = {"test_time": tt, "larger_model": larger_all, "flag": flag}
      entry["by_family"] = {fam: fx.exchange(m, [entry["R"]], by_family[fam]["oracle"]["accuracy_by_bin"],
                                             larger_by_bin)[0]["by_bin"] for fam in families if fam != "all"}

  rev_section = None
  if revisions:
    longest = max(revisions["grids"], key=lambda pl: (pl[1], pl[0]))
    from ttc_jax.revise import selection  # jax is imported by the package; only here.
    grids = [revisions["grids"][longest][p] for p in pids]
    trans = selection.transition_rates(grids)
    ratio_curves = {}
    for s, c in curves.items():
      if s.startswith("revise_"):
        p, l, meth = _parse_revision(s)
        g = math.gcd(p, l)
        ratio_curves.setdefault(meth, {}).setdefault(f"{l // g}:{p // g}", {}).update(c)
    if revisions["primary"] not in ratio_curves:
      revisions["primary"] = next(iter(ratio_curves))
    top = max(n for c in ratio_curves[revisions["primary"]].values() for n in c)
    at_top = {s: curves_by_bin[s] for s in curves if s.startswith("revise_") and s.endswith("/" + revisions["primary"])
              and top in curves[s]}
    rev_section = {
        "setting": f"P{longest[0]}xL{longest[1]}", "pass1_by_step": selection.pass_at_step(grids),
        "correct_to_incorrect": trans["correct_to_incorrect"], "incorrect_to_correct": trans["incorrect_to_correct"],
        "transitions": trans, "methods": revisions["methods"], "primary_method": revisions["primary"],
        "baseline_method": revisions["baseline_method"],
        "ratio_curves": {meth: {r: _keys(c) for r, c in rs.items()} for meth, rs in ratio_curves.items()},
        "all_parallel_curve": _keys(parallel_curve),
        "split_accuracy_by_bin_at_largest_budget": {
            "budget": top, "by_bin": {b: {s.split("/")[0]: at_top[s][b].get(top) for s in at_top} for b in bin_names}},
    }

  out = {
      "num_problems": len(pids), "num_problems_by_input": counts, "notes": notes,
      "policy": {"params": small.get("params") if small else None,
                 "train_tokens": small.get("train_tokens") if small else None},
      "large_policy": {"params": large.get("params") if large else None,
                       "train_tokens": large.get("train_tokens") if large else None,
                       "greedy_accuracy": _mean(large_pass1[p] for p in pids) if large_pass1 else None},
      "param_ratio_M": m,
      "difficulty": {"oracle": difficulty_summary("oracle"), "predicted": difficulty_summary("predicted"),
                     "cost": difficulty["cost"], "num_bins": num_bins,
                     "oracle_predicted_agreement": _mean(bins["oracle"][p] == bins["predicted"][p] for p in pids)},
      "curves": {s: _keys(c) for s, c in curves.items()},
      "curves_by_bin": {s: {b: _keys(c) for b, c in bc.items()} for s, bc in curves_by_bin.items()},
      "compute_optimal": {k: _keys(by_family["all"][k]["accuracy"]) for k in KINDS},
      "compute_optimal_by_family": {fam: {k: {"accuracy": _keys(r[k]["accuracy"]),
                                              "accuracy_by_bin": {b: _keys(c) for b, c in r[k]["accuracy_by_bin"].items()},
                                              **({"in_sample": _keys(r[k]["in_sample"])} if "in_sample" in r[k] else {})}
                                          for k in KINDS} for fam, r in by_family.items()},
      "compute_optimal_chosen": chosen,
      "difficulty_cost_generations_per_problem": cost_gen,
      "efficiency": efficiency,
      "flops_matched": flops_matched,
      "revisions": rev_section or {"pass1_by_step": None, "correct_to_incorrect": None,
                                   "note": "no revision results"},
  }
  out["findings"] = findings(out, cfg, bin_names)
  return out


# ---------------------------------------------------------------------------- findings


def _status(parts: list[bool | None]) -> str:
  known = [p for p in parts if p is not None]
  if not known:
    return "not measurable"
  if all(known):
    return "reproduced" if len(known) == len(parts) else "partly measurable, reproduced where measured"
  return "not reproduced" if not any(known) else "partly reproduced"


def _f(x) -> str:
  return "n/a" if x is None else f"{x:.3f}"


def _at(curve: dict, n) -> float | None:
  return curve.get(_key(n))


def findings(r: dict, cfg: ReportConfig, bins: list[str]) -> list[dict]:
  """PAPER.md's five findings, each {number, claim, status, evidence}, from the numbers in `r`."""
  out = []
  curves, by_bin = r["curves"], r["curves_by_bin"]
  bon = curves.get(BASELINE, {})
  beams = [s for s in curves if s.startswith("beam:")]

  # 1. Beam vs best-of-N at small / large budgets; lookahead vs beam.
  common = sorted({int(n) for s in beams for n in curves[s] if n in bon})
  parts, ev = [], []
  if common and bon:
    lo, hi = common[0], common[-1]
    best = lambda n: max((curves[s][_key(n)], s) for s in beams if _key(n) in curves[s])
    (blo, slo), (bhi, shi) = best(lo), best(hi)
    gap_lo, gap_hi = blo - bon[_key(lo)], bhi - bon[_key(hi)]
    # The gain can only shrink where there was one: without it, that part is not measurable.
    parts += [gap_lo > 0, gap_hi < gap_lo if hi != lo and gap_lo > 0 else None]
    ev.append(f"at N={lo} the best beam ({slo}) scores {blo:.3f} vs best-of-N {bon[_key(lo)]:.3f} "
              f"(difference {gap_lo:+.3f}, {'beam ahead' if gap_lo > 0 else 'beam not ahead'}); at N={hi} {shi} "
              f"scores {bhi:.3f} vs {bon[_key(hi)]:.3f} ({gap_hi:+.3f})")
  else:
    parts += [None, None]
    ev.append("no budget with both beam search and best-of-N")
  look = []
  for s in curves:
    mm = re.fullmatch(r"lookahead:(\w+):(\d+)", s)
    if mm:
      ref = f"beam:{mm.group(1)}"
      for n, a in curves[s].items():
        if ref in curves and n in curves[ref]:
          look.append((s, n, a, curves[ref][n]))
  if look:
    worse = sum(a < b for _, _, a, b in look)
    parts.append(worse * 2 > len(look))
    ev.append(f"lookahead below beam search in {worse} of {len(look)} equal-budget comparisons ("
              + "; ".join(f"{s}@{n}: {a:.3f} vs {b:.3f}" for s, n, a, b in look) + ")")
  else:
    parts.append(None)
    ev.append("no lookahead / beam pair at an equal budget")
  out.append({"number": 1, "claim": "beam search beats best-of-N at small budgets, the gain shrinks at large ones; "
              "lookahead is worse than beam search", "status": _status(parts), "evidence": "; ".join(ev)})

  # 2. By difficulty bin.
  beam = "beam:4" if "beam:4" in curves else (beams[0] if beams else None)
  parts, ev = [], []
  if beam and bon:
    easy = by_bin[beam][bins[0]]
    ns = sorted(easy, key=float)
    if len(ns) >= 2:
      peak = max(easy[n] for n in ns[:-1])
      parts.append(easy[ns[-1]] < peak)
      ev.append(f"easiest bin: {beam} {', '.join(f'N={n}: {easy[n]:.3f}' for n in ns)} "
                f"({'degrades' if easy[ns[-1]] < peak else 'does not degrade'} at the largest budget)")
    else:
      parts.append(None)
    mid = bins[1:-1]
    wins = [(b, n, by_bin[beam][b][n], by_bin[BASELINE][b][n]) for b in mid for n in by_bin[beam][b]
            if n in by_bin[BASELINE][b]]
    if wins:
      ok = sum(x >= y for _, _, x, y in wins)
      parts.append(ok == len(wins))
      ev.append(f"medium/hard bins {mid[0]}-{mid[-1]}: {beam} >= best-of-N in {ok} of {len(wins)} (bin, budget) pairs")
    else:
      parts.append(None)
    hard = bins[-1]
    n0 = min(bon, key=float)
    base = by_bin[BASELINE][hard].get(n0)
    top = max(((c[hard][n], s, n) for s, c in by_bin.items() if not s.startswith("revise_") for n in c[hard]),
              default=None)
    if base is not None and top is not None:
      gain = top[0] - base
      parts.append(gain <= cfg.small_gain)
      ev.append(f"hardest bin {hard}: best-of-N at N={n0} {base:.3f}, best of any search strategy {top[0]:.3f} "
                f"({top[1]} at N={top[2]}), gain {gain:+.3f} (threshold {cfg.small_gain})")
  else:
    parts, ev = [None], ["no beam search or best-of-N results"]
  out.append({"number": 2, "claim": "easy bins: beam search degrades at high budgets; medium/hard bins: beam beats "
              "best-of-N; hardest bin: nothing helps much", "status": _status(parts), "evidence": "; ".join(ev)})

  # 3. Revisions.
  rev = r["revisions"]
  if rev.get("pass1_by_step"):
    steps = rev["pass1_by_step"]
    rises = steps[-1] > steps[0] if len(steps) > 1 else None
    ev = [f"pass@1 by revision step ({rev['setting']}): {steps[0]:.3f} at the first attempt, {steps[-1]:.3f} at the "
          f"last ({'rises' if rises else 'does not rise'}); correct->incorrect {_f(rev['correct_to_incorrect'])} "
          "(paper: about 0.38)"]
    parts = [rises]
    split_bins = rev["split_accuracy_by_bin_at_largest_budget"]
    top = split_bins["budget"]
    prim = rev["ratio_curves"].get(rev["primary_method"], {})
    at_top = {ratio: c[_key(top)] for ratio, c in prim.items() if _key(top) in c}
    par = f"1:{top}"
    if at_top and par in at_top:
      seq = max(((a, ratio) for ratio, a in at_top.items() if ratio != par), default=None)
      if seq:
        parts.append(seq[0] > at_top[par])
        ev.append(f"at N={top} with {rev['primary_method']}: best sequential ratio (L:P) {seq[1]} {seq[0]:.3f} vs "
                  f"all-parallel {at_top[par]:.3f}")
    seq_split = f"revise_P1xL{top}"

    def best_split(b):
      accs = {s: a for s, a in split_bins["by_bin"][b].items() if a is not None}
      return max(accs.items(), key=lambda kv: kv[1])[0] if accs else None

    best = {b: best_split(b) for b in bins}
    easy_seq = best[bins[0]] == seq_split if best[bins[0]] else None
    is_mix = lambda split: 1 < int(re.fullmatch(r"revise_P(\d+)xL\d+", split).group(1)) < top
    harder_mix = any(best[b] is not None and is_mix(best[b]) for b in bins[1:]) if len(bins) > 1 else None
    parts += [easy_seq, harder_mix]
    ev.append("best split per bin at N=" + str(top) + ": " + ", ".join(f"{b}: {best[b]}" for b in bins))
    out.append({"number": 3, "claim": "pass@1 rises with revisions; sequential beats parallel at equal budget; easy "
                "questions prefer all-sequential, harder ones a mix", "status": _status(parts),
                "evidence": "; ".join(ev)})
  else:
    out.append({"number": 3, "claim": "revisions", "status": "not measurable", "evidence": "no revision results"})

  # 4. Efficiency.
  parts, ev = [], []
  for fam in ("search", "revisions"):
    e = r["efficiency"][fam]
    ratio = e.get("ratio_interpolated")
    if ratio is None:
      parts.append(False if "never reached" in (e.get("reason") or "") else None)
      ev.append(f"{fam}: {e.get('reason')}")
    else:
      parts.append(ratio >= 3.0)
      ev.append(f"{fam}: compute-optimal (oracle bins, 2-fold CV) reaches the baseline's {e['target_accuracy']:.3f} at "
                f"N={e['baseline_budget']} with {e['budget']:g} generations (measured grid, {e['ratio']:.2f}x less) or "
                f"{e['budget_interpolated']:.2f} interpolated ({ratio:.2f}x; paper: about 4x)"
                + (f" (caveat: the baseline peaks at N={e['baseline_peak']['budget']} with "
                   f"{e['baseline_peak']['accuracy']:.3f}, above its value at its largest budget, so the target is weak)"
                   if e["baseline_peak"]["accuracy"] > e["target_accuracy"] + 1e-12 else ""))
  out.append({"number": 4, "claim": "compute-optimal selection matches best-of-N with about 4x less compute",
              "status": _status(parts), "evidence": "; ".join(ev)})

  # 5. FLOPs-matched exchange.
  if r["flops_matched"]:
    easy_mid = bins[:max(1, math.ceil(0.6 * len(bins)))]
    parts, ev = [], []
    for e in r["flops_matched"]:
      winners = {b: e["by_bin"][b]["winner"] for b in bins if b in e["by_bin"]}
      flags = {e["by_bin"][b]["flag"] for b in winners}
      ev.append(f"R={e['R']:g} (k={e['matched_budget']:.1f}, {'/'.join(sorted(flags))}): "
                + ", ".join(f"bin {b}: {w}" for b, w in winners.items()))
      if e["R"] < 1:
        parts.append(all(winners.get(b) in ("test_time", "tie") for b in easy_mid))
        parts.append(winners.get(bins[-1]) == "larger_model")
      else:
        parts.append(sum(w == "larger_model" for w in winners.values()) * 2 > len(winners))
    out.append({"number": 5, "claim": "FLOPs-matched: test-time compute wins on easy/medium bins when R << 1; the "
                f"larger model wins on the hardest bin and when R >> 1 (M = {r['param_ratio_M']:.2f} here, paper 14)",
                "status": _status(parts), "evidence": "; ".join(ev)})
  else:
    out.append({"number": 5, "claim": "FLOPs-matched exchange", "status": "not measurable",
                "evidence": "no larger policy or policy train summary"})
  return out


# ---------------------------------------------------------------------------- outputs


def _table(header: list[str], rows: list[list]) -> str:
  fmt = lambda x: "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(fmt(x) for x in row) + " |" for row in rows]
  return "\n".join(lines)


def _curve_table(curves: dict, names: list[str]) -> str:
  budgets = sorted({n for s in names for n in curves[s]}, key=float)
  return _table(["strategy"] + [f"N = {n}" for n in budgets], [[s] + [curves[s].get(n) for n in budgets] for s in names])


def plots(r: dict, out_dir: str) -> list[str]:
  """Writes the PNGs; returns their file names."""
  from ttc_jax.analysis.report_plots import plot_curves_by_bin, plot_flops_matched
  from ttc_jax.analysis.report_plots import plot_lines as plot_curves
  made = []
  search = [s for s in r["curves"] if not s.startswith("revise_")]
  bins = list(r["difficulty"]["oracle"])

  def save(name, fn, *args, **kw):
    fn(*args, os.path.join(out_dir, name), **kw)
    made.append(name)

  save("search_accuracy_vs_budget.png", plot_curves, {s: r["curves"][s] for s in search},
       title="Search against the PRM", xlabel="Generation budget N")
  save("search_accuracy_by_bin.png", plot_curves_by_bin, {s: r["curves_by_bin"][s] for s in search}, bins,
       title="Search by oracle difficulty bin")
  rev = r["revisions"]
  if rev.get("pass1_by_step"):
    prim = rev["primary_method"]
    save("revisions_ratios.png", plot_curves, {f"L:P {k}": c for k, c in rev["ratio_curves"].get(prim, {}).items()},
         title=f"Revisions: sequential:parallel ratios ({prim})", xlabel="Generation budget N = P x L")
    save("revisions_pass1_by_step.png", plot_curves, {"pass@1": dict(enumerate(rev["pass1_by_step"]))},
         title=f"Revision model: pass@1 by step ({rev['setting']})", xlabel="Revision step (0 = first attempt)",
         ylabel="pass@1", log_x=False)
  fams = r["compute_optimal_by_family"]
  co_curves = {f"compute-optimal, {k}": fams["search"][k]["accuracy"] for k in KINDS}
  if BASELINE in r["curves"]:
    co_curves = {"best-of-N weighted": r["curves"][BASELINE], **co_curves}
  save("compute_optimal_search.png", plot_curves, co_curves, title="Compute-optimal search vs best-of-N",
       dashed=("compute-optimal, predicted_with_cost",))
  if "revisions" in fams:
    curves = {f"compute-optimal, {k}": fams["revisions"][k]["accuracy"] for k in KINDS}
    if rev.get("all_parallel_curve"):
      curves = {f"parallel ({rev['baseline_method']})": rev["all_parallel_curve"], **curves}
    save("compute_optimal_revisions.png", plot_curves, curves, title="Compute-optimal revisions vs parallel sampling",
         dashed=("compute-optimal, predicted_with_cost",))
  if r["flops_matched"]:
    save("flops_matched.png", plot_flops_matched, r["flops_matched"],
         title=f"Test-time compute vs a {r['param_ratio_M']:.1f}x larger model (FLOPs-matched)")
  return made


def markdown(r: dict, images: list[str]) -> str:
  img = lambda name, alt: f"\n![{alt}]({name})\n" if name in images else ""
  s = ["# Test-time compute report", "",
       f"{r['num_problems']} test problems (present in every input: {r['num_problems_by_input']}); "
       f"git commit {r['git_commit']}.", ""]
  if r["notes"]:
    s += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
  s += ["## Findings", ""]
  for f in r["findings"]:
    s.append(f"{f['number']}. **{f['status']}**: {f['claim']}. {f['evidence']}.")
  s += ["", "## Policies", "",
        _table(["", "params", "train tokens"], [["policy", r["policy"]["params"], r["policy"]["train_tokens"]],
                                                ["large policy", r["large_policy"]["params"],
                                                 r["large_policy"]["train_tokens"]]]), ""]
  if r["param_ratio_M"]:
    s.append(f"M = {r['param_ratio_M']:.2f}; large policy greedy accuracy {_f(r['large_policy']['greedy_accuracy'])}.")
  d = r["difficulty"]
  s += ["", "## Difficulty", "", "Bin 1 is the easiest (highest pass@1). Oracle: the policy's pass@1 over "
        f"{r['difficulty_cost_generations_per_problem']:g} samples; predicted: the mean PRM final score of the same "
        f"samples. Same bin for {100 * (d['oracle_predicted_agreement'] or 0):.0f}% of problems.", "",
        _table(["bin", "oracle count", "oracle mean pass@1", "oracle min-max", "predicted count",
                "predicted mean pass@1"],
               [[b, d["oracle"][b]["count"], d["oracle"][b]["mean_pass1"],
                 f"{_f(d['oracle'][b]['min_pass1'])}-{_f(d['oracle'][b]['max_pass1'])}", d["predicted"][b]["count"],
                 d["predicted"][b]["mean_pass1"]] for b in d["oracle"]]), "",
        "Cost of estimating difficulty per problem: " + ", ".join(
            f"{k} {v:.3g}" for k, v in d["cost"]["per_problem"].items()) + ".", ""]
  search = [x for x in r["curves"] if not x.startswith("revise_")]
  s += ["## Search", "", _curve_table(r["curves"], search), img("search_accuracy_vs_budget.png", "search"),
        img("search_accuracy_by_bin.png", "search by bin")]
  rev = r["revisions"]
  s += ["## Revisions", ""]
  if rev.get("pass1_by_step"):
    prim = rev["ratio_curves"].get(rev["primary_method"], {})
    s += [f"pass@1 by revision step ({rev['setting']}): " + ", ".join(f"{x:.2f}" for x in rev["pass1_by_step"]) +
          f". Correct -> incorrect {_f(rev['correct_to_incorrect'])}, incorrect -> correct "
          f"{_f(rev['incorrect_to_correct'])}.", "",
          f"Accuracy by sequential:parallel ratio L:P ({rev['primary_method']}):", "", _curve_table(prim, list(prim)),
          img("revisions_ratios.png", "ratios"), img("revisions_pass1_by_step.png", "pass@1 by step")]
  else:
    s += [rev.get("note", "no revision results"), ""]
  s += ["## Compute-optimal scaling", "", "Two-fold cross-validation over questions within each bin; "
        "`predicted_with_cost` adds the generations spent estimating difficulty to the budget.", ""]
  for fam, res in r["compute_optimal_by_family"].items():
    rows = {f"{fam}: {k}": res[k]["accuracy"] for k in KINDS}
    if fam == "search" and BASELINE in r["curves"]:
      rows = {BASELINE: r["curves"][BASELINE], **rows}
    if fam == "revisions" and rev.get("all_parallel_curve"):
      rows = {f"parallel ({rev['baseline_method']})": rev["all_parallel_curve"], **rows}
    s += [_curve_table(rows, list(rows)), ""]
  for fam in ("search", "revisions"):
    e = r["efficiency"][fam]
    s.append(f"- Efficiency, {fam}: " + (f"{e['ratio']:.2f}x on the measured grid, {e['ratio_interpolated']:.2f}x "
                                         "interpolated in log2 budget" if e.get("ratio") else str(e.get("reason"))))
  s += [img("compute_optimal_search.png", "compute-optimal search"),
        img("compute_optimal_revisions.png", "compute-optimal revisions")]
  s += ["## FLOPs-matched exchange", ""]
  if r["flops_matched"]:
    bins = list(r["difficulty"]["oracle"])
    rows = [[f"{e['R']:g}", f"{e['matched_budget']:.1f}"] +
            [f"{_f(e['by_bin'][b]['test_time'])} / {_f(e['by_bin'][b]['larger_model'])}"
             + ("*" if e["by_bin"][b]["flag"] == "capped_at_max_budget" else
                "~" if e["by_bin"][b]["flag"] == "interpolated" else "") for b in bins] for e in r["flops_matched"]]
    s += [_table(["R", "k"] + [f"bin {b}: test-time / larger" for b in bins], rows), "",
          "`~` interpolated in log2 budget; `*` k exceeds the largest evaluated budget, the value there is used "
          "(understates test-time compute).", img("flops_matched.png", "FLOPs-matched")]
  else:
    s += ["Not measured: no larger policy (or policy train summary).", ""]
  return "\n".join(s) + "\n"


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "report")
  cfg = config_parsing.parse_section(ReportConfig, config.report, "report")
  diff_path = resolve(workdir, cfg.difficulty)
  if not os.path.exists(diff_path):
    raise FileNotFoundError(f"report.difficulty: {diff_path} is missing; run the difficulty job "
                            "(configs/difficulty.py) first")
  with open(diff_path) as f:
    difficulty = json.load(f)
  search, notes = load_search(resolve(workdir, cfg.search))
  revisions, rev_notes = load_revisions(resolve(workdir, cfg.revisions))
  small, large, large_pass1, pol_notes = load_policies(resolve(workdir, cfg.policy), resolve(workdir, cfg.large_policy))
  result = {"git_commit": git_commit(), "config": dataclasses.asdict(cfg),
            **analyse(cfg, difficulty, search, revisions, small, large, large_pass1, notes + rev_notes + pol_notes)}
  out_dir = resolve(workdir, cfg.out)
  os.makedirs(out_dir, exist_ok=True)
  images = plots(result, out_dir)
  write_json(os.path.join(out_dir, "results.json"), result)
  with open(os.path.join(out_dir, "report.md"), "w") as f:
    f.write(markdown(result, images))
  logging.info("Report -> %s\n%s", out_dir, "\n".join(f"  finding {x['number']}: {x['status']}" for x in result["findings"]))
