"""The report job's figures: single-panel curves (`plots.plot_curves`), per-bin panels and the
FLOPs-matched bars, styled like the paper's (log2 budget axis, one line per strategy)."""
import os
from typing import Mapping, Sequence

from ttc_jax.analysis.paired import wilson
from ttc_jax.analysis.plots import draw_curve, plot_curves, pyplot, save_figure
from ttc_jax.analysis.report_analysis import BASELINE, KINDS


def plot_curves_by_bin(curves_by_bin: Mapping[str, Mapping[str, Mapping]], bins: Sequence[str], path: str, *,
                       title: str, xlabel: str = "Generation budget N",
                       bands: Mapping[str, Mapping[str, Mapping]] | None = None) -> None:
  """One panel per difficulty bin (1 = easiest), one line per strategy, log2 x axis; `bands`
  {strategy: {bin: {N: [low, high]}}} shaded around each line."""
  plt = pyplot()
  fig, axes = plt.subplots(1, len(bins), figsize=(3.0 * len(bins), 3.4), dpi=110, sharey=True, squeeze=False)
  for ax, b in zip(axes[0], bins):
    for name, by_bin in curves_by_bin.items():
      draw_curve(ax, name, by_bin.get(b, {}), (bands or {}).get(name, {}).get(b))
    ax.set_xscale("log", base=2)
    ax.set_title(f"level {b}", fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("Accuracy")
  handles, labels = axes[0][0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout(rect=(0, 0.1, 1, 0.95))
  save_figure(fig, path)
  plt.close(fig)


def plot_flops_matched(entries: Sequence[Mapping], path: str, *, title: str) -> None:
  """Grouped bars: one group per R, one bar per difficulty bin, height = test-time compute's accuracy
  minus the larger model's (negative: the larger model wins), with its paired 95% interval.

  (The paper's Figure 9 shows the relative improvement; a difference has an interval, a ratio
  to an accuracy near 0 does not.)"""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
  bins = sorted({b for e in entries for b in e["by_bin"]}, key=str)
  width = 0.8 / max(len(bins), 1)
  for j, b in enumerate(bins):
    xs, ys, err = [], [], [[], []]
    for i, e in enumerate(entries):
      x = e["by_bin"].get(b, {})
      d = None if x.get("test_time") is None or x.get("larger_model") is None else x["test_time"] - x["larger_model"]
      xs.append(i + (j - (len(bins) - 1) / 2) * width)
      ys.append(d or 0.0)
      lohi = x.get("difference_interval") or [ys[-1], ys[-1]]
      err[0].append(max(0.0, ys[-1] - lohi[0]))
      err[1].append(max(0.0, lohi[1] - ys[-1]))
    ax.bar(xs, ys, width=width, label=f"level {b}", color=f"C{j}", yerr=err, capsize=2,
           error_kw={"linewidth": 0.8})
  ax.axhline(0.0, color="black", linewidth=0.8)
  ax.set_xticks(range(len(entries)))
  ax.set_xticklabels([f"R={e['R']:g}\nk={e['matched_budget']:.0f}" for e in entries], fontsize=8)
  ax.set_ylabel("Test-time minus larger model (accuracy)")
  _save_bars(plt, fig, ax, path, title)


def plot_auroc_by_bin(summaries: Mapping[str, Mapping], path: str, *, title: str) -> None:
  """Within-question AUROC per difficulty bin, one series of points per verifier score, with the
  95% bootstrap interval as error bars (`analysis.ranking.summarise` results {name: summary});
  dashed lines at 0.5 (no ranking beyond chance) and at the target."""
  from ttc_jax.analysis.ranking import TARGET_AUROC
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
  bins = sorted({b for s in summaries.values() for b in s["by_bin"]}, key=int)
  width = 0.6 / max(len(summaries), 1)
  for j, (name, s) in enumerate(summaries.items()):
    pts = [(i, s["by_bin"][b]["auroc"]) for i, b in enumerate(bins) if s["by_bin"].get(b, {}).get("auroc")]
    if not pts:
      continue
    xs = [i + (j - (len(summaries) - 1) / 2) * width for i, _ in pts]
    ys = [a["mean"] for _, a in pts]
    err = [[max(0.0, a["mean"] - a["low"]) for _, a in pts], [max(0.0, a["high"] - a["mean"]) for _, a in pts]]
    ax.errorbar(xs, ys, yerr=err, fmt="o", markersize=4, capsize=2, linewidth=0.8, label=name, color=f"C{j}")
  ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8, label="chance (difficulty only)")
  ax.axhline(TARGET_AUROC, color="black", linestyle=":", linewidth=0.8, label=f"target {TARGET_AUROC:g}")
  ax.set_xticks(range(len(bins)))
  ax.set_xticklabels([f"bin {b}" for b in bins], fontsize=8)
  ax.set_xlabel("Oracle difficulty bin (1 = easiest)")
  ax.set_ylabel("Within-question AUROC")
  ax.set_ylim(-0.02, 1.02)
  _save_bars(plt, fig, ax, path, title)


def _save_bars(plt, fig, ax, path: str, title: str) -> None:
  """The finish of a one-axis figure with a y grid: title, legend, saved to `path`, closed."""
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7)
  fig.tight_layout()
  save_figure(fig, path)
  plt.close(fig)


def _wilson_bands(curves: Mapping[str, Mapping], n: int) -> dict:
  """{name: {x: [low, high]}}: 95% Wilson intervals of accuracies over n questions."""
  return {name: {x: list(wilson(a, n)) for x, a in c.items() if a is not None} for name, c in curves.items()}


def write_report_plots(r: dict, out_dir: str) -> list[str]:
  """Writes the report's PNGs for results.json's content `r` into `out_dir`; returns their file names
  (figures without data, e.g. revisions when none were evaluated, are left out)."""
  made = []
  search = [s for s in r["curves"] if not s.startswith("revise_")]
  bins = list(r["difficulty"]["oracle"])

  def save(name, fn, *args, **kw):
    fn(*args, os.path.join(out_dir, name), **kw)
    made.append(name)

  iv = r["intervals"]
  n = r["num_problems"]
  save("search_accuracy_vs_budget.png", plot_curves, {s: r["curves"][s] for s in search},
       title="Search against the PRM (bands: 95% intervals)", xlabel="Generation budget N", bands=iv["curves"])
  save("search_accuracy_by_bin.png", plot_curves_by_bin, {s: r["curves_by_bin"][s] for s in search}, bins,
       title="Search by oracle difficulty bin (bands: 95% intervals)", bands=iv["curves_by_bin"])
  rev = r["revisions"]
  if rev.get("pass1_by_step"):
    prim = rev["primary_method"]
    ratios = {f"L:P {k}": c for k, c in rev["ratio_curves"].get(prim, {}).items()}
    save("revisions_ratios.png", plot_curves, ratios, title=f"Revisions: L:P ratios ({prim}; bands: 95% intervals)",
         xlabel="Generation budget N = P x L", bands=_wilson_bands(ratios, n))
    # Chains of one question are correlated: the band counts questions, not chains (conservative for P > 1).
    steps = {"pass@1": dict(enumerate(rev["pass1_by_step"]))}
    save("revisions_pass1_by_step.png", plot_curves, steps,
         title=f"Revision model: pass@1 by step ({rev['setting']})", xlabel="Revision step (0 = first attempt)",
         ylabel="pass@1", log_x=False, bands=_wilson_bands(steps, n))
  fams = r["compute_optimal_by_family"]
  co_curves = {f"compute-optimal, {k}": fams["search"][k]["accuracy"] for k in KINDS}
  if BASELINE in r["curves"]:
    co_curves = {"best-of-N weighted": r["curves"][BASELINE], **co_curves}
  save("compute_optimal_search.png", plot_curves, co_curves,
       title="Compute-optimal search vs best-of-N (bands: 95% intervals)",
       dashed=("compute-optimal, predicted_with_cost",), bands=_wilson_bands(co_curves, n))
  if "revisions" in fams:
    curves = {f"compute-optimal, {k}": fams["revisions"][k]["accuracy"] for k in KINDS}
    if rev.get("all_parallel_curve"):
      curves = {f"parallel ({rev['baseline_method']})": rev["all_parallel_curve"], **curves}
    save("compute_optimal_revisions.png", plot_curves, curves,
         title="Compute-optimal revisions vs parallel (bands: 95% intervals)",
         dashed=("compute-optimal, predicted_with_cost",), bands=_wilson_bands(curves, n))
  if r.get("verifier_ranking", {}).get("verifiers"):
    save("verifier_auroc_by_bin.png", plot_auroc_by_bin, r["verifier_ranking"]["verifiers"],
         title="Verifiers: within-question AUROC by oracle bin (95% intervals)")
  if r["flops_matched"]:
    save("flops_matched.png", plot_flops_matched, r["flops_matched"],
         title=f"Test-time compute vs a {r['param_ratio_M']:.1f}x larger model (FLOPs-matched; 95% intervals)")
  return made
