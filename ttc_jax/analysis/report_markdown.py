"""report.md: a report's results (`report_analysis.analyse` plus findings) as Markdown tables."""
from ttc_jax.analysis import paired as pd
from ttc_jax.analysis.findings import fmt
from ttc_jax.analysis.report_analysis import BASELINE, KINDS


def _table(header: list[str], rows: list[list]) -> str:
  cell = lambda x: "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
  return "\n".join(lines)


def _curve_table(curves: dict, names: list[str], bands: dict | None = None) -> str:
  """One row per curve, one column per budget; with `bands` ({name: {N: [low, high]}}) each cell
  also shows its 95% interval."""
  budgets = sorted({n for s in names for n in curves[s]}, key=float)

  def cell(s, n):
    a, band = curves[s].get(n), (bands or {}).get(s, {}).get(n)
    return a if a is None or band is None else f"{a:.3f} ({band[0]:.2f}-{band[1]:.2f})"

  return _table(["strategy"] + [f"N = {n}" for n in budgets], [[s] + [cell(s, n) for n in budgets] for s in names])


def _interval(p: dict) -> list:
  if p["verdict"] == pd.NOT_MEASURABLE:
    return ["-", "-", "-", f"not measurable ({p['reason']})"]
  return [f"{p['difference']:+.3f}", f"[{p['low']:+.3f}, {p['high']:+.3f}]", p["n"], f"**{p['verdict']}**"]


def _parts_table(parts: list[dict]) -> str:
  return _table(["part", "claim", "contrast (fixed in advance)", "difference", "95% interval", "questions", "verdict"],
                [[p["part"], p["claim"], p["contrast"] + ("" if p["rule"] == "above 0" else f" (claim: {p['rule']})"),
                  *_interval(p)] for p in parts])


def _findings(r: dict) -> list[str]:
  pr = r["paired"]
  s = ["## Findings", "",
       "Each part of a finding is one contrast fixed in advance (in `ttc_jax/analysis/contrasts.py`), oriented so "
       "that a positive difference is what the paper claims, and paired over the questions present in both arms. "
       f"Its {100 * pr['confidence']:.0f}% interval is a percentile bootstrap over questions ({pr['resamples']} "
       f"resamples, seed {pr['seed']}; stratified by oracle bin where it pools bins). Verdict: **supported** (interval "
       f"above 0), **contradicted** (below 0), **no effect** (inside +-{pr['margin']:g}), else **inconclusive**; "
       "claims of the form \"at least\" / \"at most\" a bound are supported when the whole interval is on the "
       f"claimed side. Fewer than {pd.MIN_QUESTIONS} questions: inconclusive. A finding is **reproduced** only if "
       "every part is supported.", ""]
  for f in r["findings"]:
    s += [f"### {f['number']}. {f['status']}", "", f"Claim: {f['claim']}.", "",
          _parts_table(pr["parts"][str(f["number"])]), ""]
  s += ["### Controls", "", "A/A: two names for the same algorithm must not differ beyond chance (a `supported` or "
        "`contradicted` A/A would mean the intervals are too narrow). Finding 4's baselines must grow from a quarter "
        "of the budget to the budget, else matching them with less compute is not measurable.", "",
        _parts_table(pr["controls"]), ""]
  flagged = [c for c in pr["controls"] if c.get("flag")]
  s += [f"**Warning**: {c['part']}: {c['flag']}." for c in flagged] + ([""] if flagged else [])
  return s


def _iv(x: dict | None, signed: bool = False) -> str:
  f = "{:+.3f}" if signed else "{:.3f}"
  return "-" if not x else f"{f.format(x['mean'])} [{f.format(x['low'])}, {f.format(x['high'])}]"


def verifier_ranking(vr: dict) -> list[str]:
  """The verifier ranking section: within-question AUROC and log-loss against the pass-rate baseline."""
  s = ["## Verifier ranking", ""]
  if not vr.get("verifiers"):
    return s + [vr.get("note", "no verifier ranking"), ""]
  s += ["Does the verifier tell right from wrong solutions of the same question, or only how hard the question "
        "is? AUROC: for each question with both correct and incorrect samples, the probability that a random "
        "correct solution outscores a random incorrect one (ties half), averaged over questions; 0.5 is what any "
        "score that only knows the question's difficulty gets. Questions all correct or all wrong are left out "
        "(counted). Log-loss: the verifier's score as the probability that the solution is correct, against the "
        "difficulty-only baseline that predicts every solution by its question's pass rate among the other samples "
        "((correct others + 1/2) / k), and the in-sample pass rate (each question's own mean, which has seen the "
        "label it predicts: the best any per-question constant does here). A predictor that knows only difficulty "
        "lands between the two; a verifier below the in-sample column knows more than the question's pass@1. "
        f"Intervals: 95% bootstrap over questions. Oracle bins of the report ({vr['num_problems']} questions "
        "scored).", ""]
  rows = []
  for name, summary in vr["verifiers"].items():
    for b, c in [("all", summary["overall"]), *summary["by_bin"].items()]:
      ll = c["log_loss"]
      rows.append([name, b, f"{c['used']} / {c['questions']}", f"{c['all_correct']} / {c['all_wrong']}",
                   _iv(c["auroc"]), ll["verifier"], ll["pass_rate"], ll["pass_rate_in_sample"],
                   _iv(ll["difference"], signed=True), _iv(ll["difference_in_sample"], signed=True)])
  s += [_table(["verifier", "bin", "questions used / in bin", "all correct / all wrong", "AUROC [95%]",
                "log-loss: verifier", "pass rate, leave-one-out", "pass rate, in-sample",
                "verifier minus leave-one-out [95%]", "verifier minus in-sample [95%]"], rows), ""]
  for name, summary in vr["verifiers"].items():
    t = summary["target"]
    bins = f"bins {t['bins'][0]}-{t['bins'][-1]}" if t["bins"] else "middle bins"
    s.append(f"- {name}: AUROC on {bins} {_iv(t['measured'])} against the target {t['auroc']:.2f}: "
             f"**{t['verdict']}**" + (f" ({t['reason']})" if t.get("reason") else ""))
  return s + [""] + _first_wrong_line(vr.get("first_wrong_line")) + _selection(vr.get("selection"))


def _first_wrong_line(block: dict | None) -> list[str]:
  if not block:
    return []
  if "note" in block:
    return [f"First wrong line: {block['note']}.", ""]
  summary = block["summary"]
  rows = [[b, f"{c['used']} / {c['questions']}", _iv(c["auroc"])]
          for b, c in [("all", summary["overall"]), *summary["by_bin"].items(),
                       *([("middle bins", summary["middle_bins"])] if summary["middle_bins"] else [])]]
  return [f"**Does the PRM's step score drop at the first wrong line?** ({block['method']}; line labels: the "
          "built-in task's exact reference computation.)", "",
          _table(["bin", "questions used / in bin", "PRM step-score AUROC, right lines vs first wrong line [95%]"], rows),
          ""]


def _selection(block: dict | None) -> list[str]:
  if not block or "versus_majority" not in block:
    return []
  rows = []
  for name, c in block["versus_majority"].items():
    for where in ("all", "middle_bins"):
      x = c.get(where)
      if x:
        rows.append([f"{name} minus majority", "all bins" if where == "all" else "bins " + ", ".join(block["middle_bins"]),
                     f"{x['difference']:+.3f}", f"[{x['low']:+.3f}, {x['high']:+.3f}]", x["n"], f"**{x['verdict']}**"])
  for name, x in block["best_rises"].items():
    if x:
      rows.append([f"{name}: N = {block['n']} minus N = 1 (must rise)", "all bins", f"{x['difference']:+.3f}",
                   f"[{x['low']:+.3f}, {x['high']:+.3f}]", x["n"], f"**{x['verdict']}**"])
  return [f"**Does the verifier help choose an answer?** Paired over questions at N = {block['n']} ({block['method']}).",
          "", _table(["contrast", "questions", "difference", "95% interval", "n", "verdict"], rows), ""]


def reviser_gate(check: dict) -> list[str]:
  """The revisions section's first lines: the reviser's first attempt against the policy's on held-out problems
  (reviser_eval.json's gate, `revise/heldout.py`); a warning unless it is shown not to be worse."""
  if "missing" in check:
    return [f"**Warning: the reviser's first attempt was not checked against the policy's**: {check['missing']}. "
            "The revision results below may start from a first attempt worse than the policy's; train_reviser "
            "with reviser.check_problems > 0 writes the check.", ""]
  where = (f"held-out check on {check['n']} {check['split']} problems x {check['samples_per_problem']} first "
           f"attempts each, `{check['source']}`")
  if not check.get("n"):
    return [f"**Warning: the reviser's first-attempt check compared no problem** ({where}).", ""]
  numbers = (f"first-attempt pass@1 reviser {check['reviser']:.3f} vs policy {check['policy']:.3f}, difference "
             f"{check['difference']:+.3f}, {100 * check['confidence']:.0f}% paired interval "
             f"[{check['low']:+.3f}, {check['high']:+.3f}]")
  if check["gate"] == "worse":
    return [f"**Warning: the reviser's first attempt is worse than the policy's** ({numbers}; {where}). Every "
            "chain starts from it, so the revision results below start behind the policy and understate what "
            "revising adds.", ""]
  if check["gate"] == "inconclusive":
    return [f"**Warning: the reviser's first attempt is not shown to match the policy's** ({numbers}; {where}): "
            f"the interval reaches below -{pd.MARGIN:g}. The revision results below may start from a weaker first "
            "attempt.", ""]
  return [f"Reviser's first attempt: {check['gate']} than the policy's ({numbers}; {where}).", ""]


def markdown(r: dict, images: list[str]) -> str:
  """report.md from results.json's content `r`; links the PNG file names in `images`."""
  img = lambda name, alt: f"\n![{alt}]({name})\n" if name in images else ""
  s = ["# Test-time compute report", "",
       f"{r['num_problems']} test problems (present in every input: {r['num_problems_by_input']}); "
       f"git commit {r['git_commit']}.", ""]
  if r["notes"]:
    s += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
  s += _findings(r)
  s += ["## Policies", "",
        _table(["", "params", "train tokens"], [["policy", r["policy"]["params"], r["policy"]["train_tokens"]],
                                                ["large policy", r["large_policy"]["params"],
                                                 r["large_policy"]["train_tokens"]]]), ""]
  if r["param_ratio_M"]:
    s.append(f"M = {r['param_ratio_M']:.2f}; large policy greedy accuracy {fmt(r['large_policy']['greedy_accuracy'])}.")
  d = r["difficulty"]
  s += ["", "## Difficulty", "", "Bin 1 is the easiest (highest pass@1). Oracle: the policy's pass@1 over "
        f"{r['difficulty_cost_generations_per_problem']:g} samples; predicted: the mean PRM final score of the same "
        f"samples. Same bin for {100 * (d['oracle_predicted_agreement'] or 0):.0f}% of problems.", "",
        _table(["bin", "oracle count", "oracle mean pass@1", "oracle min-max", "predicted count",
                "predicted mean pass@1"],
               [[b, d["oracle"][b]["count"], d["oracle"][b]["mean_pass1"],
                 f"{fmt(d['oracle'][b]['min_pass1'])}-{fmt(d['oracle'][b]['max_pass1'])}", d["predicted"][b]["count"],
                 d["predicted"][b]["mean_pass1"]] for b in d["oracle"]]), ""]
  if "level" in d:
    s += ["By the problems' published level (bin k = level k):", "",
          _table(["level", "count", "mean pass@1", "mean predicted score"],
                 [[b, v["count"], v["mean_pass1"], v["mean_predicted_score"]] for b, v in d["level"].items()]), ""]
  s += ["Cost of estimating difficulty per problem: " + ", ".join(
            f"{k} {v:.3g}" for k, v in d["cost"]["per_problem"].items()) + ".", ""]
  if "verifier_ranking" in r:
    s += verifier_ranking(r["verifier_ranking"]) + [img("verifier_auroc_by_bin.png", "verifier AUROC by bin")]
  search = [x for x in r["curves"] if not x.startswith("revise_")]
  iv = r["intervals"]
  s += ["## Search", "", "Accuracy (95% Wilson interval over questions).", "",
        _curve_table(r["curves"], search, iv["curves"]), img("search_accuracy_vs_budget.png", "search"),
        img("search_accuracy_by_bin.png", "search by bin")]
  rev = r["revisions"]
  s += ["## Revisions", ""]
  if rev.get("pass1_by_step"):
    s += reviser_gate(rev.get("reviser_check") or {"missing": "no reviser check in results.json"})
    prim = rev["ratio_curves"].get(rev["primary_method"], {})
    s += [f"pass@1 by revision step ({rev['setting']}): " + ", ".join(f"{x:.2f}" for x in rev["pass1_by_step"]) +
          f". Correct -> incorrect {fmt(rev['correct_to_incorrect'])}, incorrect -> correct "
          f"{fmt(rev['incorrect_to_correct'])}.", "",
          f"Accuracy by sequential:parallel ratio L:P ({rev['primary_method']}):", "", _curve_table(prim, list(prim)),
          img("revisions_ratios.png", "ratios"), img("revisions_pass1_by_step.png", "pass@1 by step")]
  else:
    s += [rev.get("note", "no revision results"), ""]
  s += ["## Compute-optimal scaling", "", "Two-fold cross-validation over questions within each bin; "
        "`predicted_with_cost` adds the generations spent estimating difficulty to the budget.", ""]
  for fam, res in r["compute_optimal_by_family"].items():
    rows = {f"{fam}: {k}": res[k]["accuracy"] for k in KINDS}
    bands = {f"{fam}: {k}": iv["compute_optimal_by_family"][fam][k] for k in KINDS}
    if fam == "search" and BASELINE in r["curves"]:
      rows = {BASELINE: r["curves"][BASELINE], **rows}
      bands[BASELINE] = iv["curves"][BASELINE]
    if fam == "revisions" and rev.get("all_parallel_curve"):
      rows = {f"parallel ({rev['baseline_method']})": rev["all_parallel_curve"], **rows}
    s += [_curve_table(rows, list(rows), bands), ""]
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
            [f"{fmt(e['by_bin'][b]['test_time'])} / {fmt(e['by_bin'][b]['larger_model'])}"
             + ("*" if e["by_bin"][b]["flag"] == "capped_at_max_budget" else
                "~" if e["by_bin"][b]["flag"] == "interpolated" else "") for b in bins] for e in r["flops_matched"]]
    s += [_table(["R", "k"] + [f"bin {b}: test-time / larger" for b in bins], rows), "",
          "`~` interpolated in log2 budget; `*` k exceeds the largest evaluated budget, the value there is used "
          "(understates test-time compute).", img("flops_matched.png", "FLOPs-matched")]
  else:
    s += ["Not measured: no larger policy (or policy train summary).", ""]
  return "\n".join(s) + "\n"
