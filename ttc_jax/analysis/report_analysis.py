"""The report's analyses over loaded inputs (job `report`): the problems common to every input,
difficulty bins re-drawn over them, accuracy curves per strategy and per bin, compute-optimal
selection by two-fold cross-validation per family (search, revisions, both), its efficiency, the
FLOPs-matched exchange, the revision model's step-wise statistics and the verifiers' within-question
ranking. No file or model I/O.

Curves in the result are {budget key: accuracy} with `budget_key` strings (JSON object keys).
"""
import re
from typing import Sequence

import numpy as np

from ttc_jax.analysis import compute_optimal as co
from ttc_jax.analysis import contrasts
from ttc_jax.analysis import difficulty as diff
from ttc_jax.analysis import flops_exchange as fx
from ttc_jax.analysis import paired as pd
from ttc_jax.analysis import ranking as rk
from ttc_jax.analysis import verifier_selection

BASELINE = "best_of_n"
KINDS = ("oracle", "predicted", "predicted_with_cost")


def budget_key(b) -> str:
  """JSON key of a budget: integers without a decimal point."""
  b = float(b)
  return str(int(b)) if b == int(b) else f"{b:g}"


def budget_keys(curve: dict) -> dict:
  """{budget_key(budget): value}, in increasing budget order."""
  return {budget_key(b): a for b, a in sorted(curve.items())}


def parse_revision(name: str) -> tuple[int, int, str | None]:
  """(P, L, method) of a revision strategy name `revise_P<P>xL<L>/<method>` (method None for a bare split
  name `revise_P<P>xL<L>`)."""
  m = re.fullmatch(r"revise_P(\d+)xL(\d+)(?:/(.+))?", name)
  return int(m.group(1)), int(m.group(2)), m.group(3)


def _mean(xs) -> float | None:
  xs = list(xs)
  return float(np.mean(xs)) if xs else None


def _level_table(per_problem: dict, pids: list[str], pass1: dict, predicted: dict) -> dict:
  """{"level": bin table by published level} when difficulty.json has every problem's level_bin, else {}."""
  if not all("level_bin" in per_problem[p] for p in pids):
    return {}
  levels = {p: int(per_problem[p]["level_bin"]) for p in pids}
  return {"level": diff.bin_table(pass1, predicted, levels, max(levels.values()))}


def _bands(curve: dict, n: int) -> dict:
  """{budget key: [low, high]}: the Wilson 95% interval of each accuracy over n questions."""
  return {budget_key(b): list(pd.wilson(a, n)) for b, a in sorted(curve.items())} if n else {}


def _intervals(curves, curves_by_bin, by_family, members, n) -> dict:
  """results.json's `intervals`: every accuracy curve's 95% band, keyed like the curves."""
  return {"method": "Wilson score interval over questions, 95%",
          "curves": {s: _bands(c, n) for s, c in curves.items()},
          "curves_by_bin": {s: {b: _bands(c, len(members[b])) for b, c in bc.items()}
                            for s, bc in curves_by_bin.items()},
          "compute_optimal_by_family": {fam: {k: _bands(r[k]["accuracy"], n) for k in KINDS}
                                        for fam, r in by_family.items()}}


def _verifier_ranking(block: dict | None, pids: list[str], bins: dict, num_bins: int, notes: list[str]) -> dict:
  """{"method", "target_auroc", "num_problems", "verifiers": {name: `ranking.summarise`}} over the report's
  questions and oracle bins, from eval_verifiers' per-question records; {"note"} without them."""
  if not block:
    return {"note": "no verifier ranking (eval/verifiers/results.json with a `ranking` block)"}
  per_question = {name: {p: recs[p] for p in pids if p in recs} for name, recs in block["per_question"].items()}
  have = min((len(r) for r in per_question.values()), default=0)
  if have < len(pids):
    notes.append(f"verifier ranking: {have} of the {len(pids)} report problems were scored by eval_verifiers")
  out = {"method": block["method"], "target_auroc": block["target_auroc"], "num_problems": have,
         "verifiers": {name: rk.summarise(r, bins, num_bins) for name, r in per_question.items()}}
  keep = set(pids)
  if block.get("selection", {}).get("per_question"):
    records = {name: {n: {p: v for p, v in by_n.items() if p in keep} for n, by_n in r.items()}
               for name, r in block["selection"]["per_question"].items()}
    out["selection"] = verifier_selection.summarise(records, bins, num_bins)
  if "per_question" in block.get("first_wrong_line", {}):
    lines = {p: v for p, v in block["first_wrong_line"]["per_question"].items() if p in keep}
    out["first_wrong_line"] = {"method": block["first_wrong_line"]["method"],
                               "summary": rk.summarise_lines(lines, bins, num_bins)}
  elif "note" in block.get("first_wrong_line", {}):
    out["first_wrong_line"] = {"note": block["first_wrong_line"]["note"]}
  return out


def analyse(difficulty: dict, search: dict, revisions: dict | None, small: dict | None, large: dict | None,
            large_pass1: dict | None, notes: list[str], *, ratios: Sequence[float], small_gain: float = 0.05,
            verifier_ranking: dict | None = None) -> dict:
  """results.json's content (without config, git_commit and findings) from the job's loaded inputs
  (formats: the `load_*` functions of `jobs.report`).

  `notes` is extended in place. `ratios` are the R = D_inference / D_pretrain of the FLOPs exchange;
  `small_gain` bounds finding 2's "nothing helps much" (`analysis.contrasts`). `verifier_ranking`:
  eval_verifiers' `ranking` block, re-summarised over the report's questions and oracle bins.
  Pure but for `notes` and `revisions["primary"]` (set to a measured method when it was not one).
  """
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
      chosen[fam][kind] = {b: {budget_key(n): c for n, c in ch.items()} for b, ch in r["chosen"].items()}
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
                      for n in curves[s] if parse_revision(s)[1] == 1}
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
    flops_matched = fx.exchange(m, ratios, by_family["all"]["oracle"]["accuracy_by_bin"], larger_by_bin)
    larger_all = _mean(large_pass1[p] for p in pids)
    for entry in flops_matched:
      for b in entry["by_bin"].values():
        if b["flag"] == "capped_at_max_budget":
          b["note"] = "k is beyond the largest evaluated budget: the value there understates test-time compute"
      tt, flag = fx.value_at_budget(by_family["all"]["oracle"]["accuracy"], entry["matched_budget"])
      entry["overall"] = {"test_time": tt, "larger_model": larger_all, "flag": flag}
      # The per-bin paired interval of test-time minus larger model (the bars' error bars).
      tt_q, _ = contrasts.at_budget(by_family["all"]["oracle"]["per_question"], entry["matched_budget"], pids)
      for b, e in entry["by_bin"].items():
        res = pd.paired({p: tt_q[p] for p in members[b] if p in tt_q}, {p: large_pass1[p] for p in members[b]})
        e["difference_interval"] = None if res is None else [res["low"], res["high"]]
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
        p, l, meth = parse_revision(s)
        ratio_curves.setdefault(meth, {}).setdefault(selection.ratio_label(p, l), {}).update(c)
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
        "reviser_check": revisions.get("reviser_check") or {"missing": "no reviser check was loaded"},
        "ratio_curves": {meth: {r: budget_keys(c) for r, c in rs.items()} for meth, rs in ratio_curves.items()},
        "all_parallel_curve": budget_keys(parallel_curve),
        "split_accuracy_by_bin_at_largest_budget": {
            "budget": top, "by_bin": {b: {s.split("/")[0]: at_top[s][b].get(top) for s in at_top} for b in bin_names}},
    }

  # The findings' paired comparisons, on the common questions only.
  keep = lambda o: {s: {n: {p: res[p] for p in pids if p in res} for n, res in by_b.items()} for s, by_b in o.items()}
  paired = contrasts.all_parts(contrasts.Inputs(
      search=keep(search), bins=bins["oracle"], num_bins=num_bins,
      compute_optimal={fam: by_family[fam]["oracle"]["per_question"] for fam in families},
      revisions=keep(revisions["outcomes"]) if revisions else {},
      grids={pl: {p: g[p] for p in pids if p in g} for pl, g in revisions["grids"].items()} if revisions else {},
      primary_method=revisions["primary"] if revisions else None,
      baseline_method=revisions["baseline_method"] if revisions else None,
      large_pass1=large_pass1, m=m, ratios=tuple(ratios), small_gain=small_gain))
  for c in paired["controls"]:
    if c.get("flag"):
      notes.append(f"{c['part']}: {contrasts.describe(c)}; {c['flag']}")

  out = {
      "num_problems": len(pids), "num_problems_by_input": counts, "notes": notes,
      "policy": {"params": small.get("params") if small else None,
                 "train_tokens": small.get("train_tokens") if small else None},
      "large_policy": {"params": large.get("params") if large else None,
                       "train_tokens": large.get("train_tokens") if large else None,
                       "greedy_accuracy": _mean(large_pass1[p] for p in pids) if large_pass1 else None},
      "param_ratio_M": m,
      "difficulty": {"oracle": diff.bin_table(pass1, predicted, bins["oracle"], num_bins),
                     "predicted": diff.bin_table(pass1, predicted, bins["predicted"], num_bins),
                     **_level_table(per_problem, pids, pass1, predicted),
                     "cost": difficulty["cost"], "num_bins": num_bins,
                     "oracle_predicted_agreement": _mean(bins["oracle"][p] == bins["predicted"][p] for p in pids)},
      "curves": {s: budget_keys(c) for s, c in curves.items()},
      "intervals": _intervals(curves, curves_by_bin, by_family, members, len(pids)),
      "curves_by_bin": {s: {b: budget_keys(c) for b, c in bc.items()} for s, bc in curves_by_bin.items()},
      "compute_optimal": {k: budget_keys(by_family["all"][k]["accuracy"]) for k in KINDS},
      "compute_optimal_by_family": {fam: {k: {"accuracy": budget_keys(r[k]["accuracy"]),
                                              "accuracy_by_bin": {b: budget_keys(c) for b, c in r[k]["accuracy_by_bin"].items()},
                                              **({"in_sample": budget_keys(r[k]["in_sample"])} if "in_sample" in r[k] else {})}
                                          for k in KINDS} for fam, r in by_family.items()},
      "compute_optimal_chosen": chosen,
      "difficulty_cost_generations_per_problem": cost_gen,
      "efficiency": efficiency,
      "flops_matched": flops_matched,
      "revisions": rev_section or {"pass1_by_step": None, "correct_to_incorrect": None,
                                   "note": "no revision results"},
      "paired": {**paired, "confidence": pd.CONFIDENCE, "resamples": pd.RESAMPLES, "seed": pd.SEED,
                 "margin": pd.MARGIN},
      "verifier_ranking": _verifier_ranking(verifier_ranking, pids, bins["oracle"], num_bins, notes),
  }
  return out
