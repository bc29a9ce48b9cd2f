"""PNG line plots of accuracy curves, styled like the paper's figures (matplotlib imported lazily,
headless backend)."""
from typing import Mapping, Sequence


def pyplot():
  """matplotlib.pyplot on the Agg backend; imported on first use so the jobs start without it."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_curves(curves: Mapping[str, Mapping], path: str, *, title: str, xlabel: str = "Generation budget N",
                ylabel: str = "Accuracy", dashed: Sequence[str] = (), log_x: bool = True) -> None:
  """One line per curve {x: y} -> PNG at `path`; x on a log2 axis (budgets) unless log_x=False.

  Keys may be numbers or their strings (results.json's "9.5"); None values are skipped. Curves
  named in `dashed` are drawn dashed.
  """
  plt = pyplot()
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
