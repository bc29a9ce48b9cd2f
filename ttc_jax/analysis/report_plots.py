"""The report's figures beyond single-panel curves (`plots.plot_curves`): per-bin panels and the
FLOPs-matched bars, styled like the paper's (log2 budget axis, one line per strategy)."""
from typing import Mapping, Sequence


def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_lines(curves: Mapping[str, Mapping], path: str, *, title: str, xlabel: str = "Generation budget N",
               ylabel: str = "Accuracy", dashed: Sequence[str] = (), log_x: bool = True) -> None:
  """One line per curve {x: y} (keys may be strings of non-integer budgets); log2 x axis unless log_x=False."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
  for name, curve in curves.items():
    pts = sorted((float(n), y) for n, y in curve.items() if y is not None)
    if pts:
      ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", markersize=3, label=name,
              linestyle="--" if name in dashed else "-")
  if log_x:
    ax.set_xscale("log", base=2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_curves_by_bin(curves_by_bin: Mapping[str, Mapping[str, Mapping]], bins: Sequence[str], path: str, *,
                       title: str, xlabel: str = "Generation budget N") -> None:
  """One panel per difficulty bin (1 = easiest), one line per strategy, log2 x axis."""
  plt = _plt()
  fig, axes = plt.subplots(1, len(bins), figsize=(3.0 * len(bins), 3.4), dpi=110, sharey=True, squeeze=False)
  for ax, b in zip(axes[0], bins):
    for name, by_bin in curves_by_bin.items():
      curve = by_bin.get(b, {})
      ns = sorted(float(n) for n in curve)
      if ns:
        ax.plot(ns, [_get(curve, n) for n in ns], marker="o", markersize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_title(f"level {b}", fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("Accuracy")
  handles, labels = axes[0][0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout(rect=(0, 0.1, 1, 0.95))
  fig.savefig(path)
  plt.close(fig)


def _get(curve: Mapping, n: float):
  for key in (n, int(n), str(int(n)) if n == int(n) else str(n), str(n)):
    if key in curve:
      return curve[key]
  raise KeyError(n)


def plot_flops_matched(entries: Sequence[Mapping], path: str, *, title: str) -> None:
  """Grouped bars: one group per R, one bar per difficulty bin, height = relative improvement (%)
  of test-time compute over the larger model (negative: the larger model wins)."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
  bins = sorted({b for e in entries for b in e["by_bin"]}, key=str)
  width = 0.8 / max(len(bins), 1)
  for j, b in enumerate(bins):
    xs, ys = [], []
    for i, e in enumerate(entries):
      rel = e["by_bin"].get(b, {}).get("relative_improvement")
      xs.append(i + (j - (len(bins) - 1) / 2) * width)
      ys.append(0.0 if rel is None else 100.0 * rel)
    ax.bar(xs, ys, width=width, label=f"level {b}", color=f"C{j}")
    for i, (x, e) in enumerate(zip(xs, entries)):
      if e["by_bin"].get(b, {}).get("relative_improvement") is None:  # larger model at 0: no ratio
        ax.text(x, 0.0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
  ax.axhline(0.0, color="black", linewidth=0.8)
  ax.set_xticks(range(len(entries)))
  ax.set_xticklabels([f"R={e['R']:g}\nk={e['matched_budget']:.0f}" for e in entries], fontsize=8)
  ax.set_ylabel("Relative improvement over the larger model (%)")
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
