"""PNG plots of accuracy curves (matplotlib imported lazily, headless backend)."""
from typing import Mapping


def plot_curves(curves: Mapping[str, Mapping[int, float]], path: str, *, title: str,
                xlabel: str = "Generation budget N", ylabel: str = "Accuracy", dashed: tuple[str, ...] = (),
                log_x: bool = True) -> None:
  """One line per curve; x on a log2 axis (budgets, as in the paper's figures) unless log_x=False."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
  for name, curve in curves.items():
    ns = sorted(int(n) for n in curve)
    ax.plot(ns, [curve[n] if n in curve else curve[str(n)] for n in ns], marker="o", markersize=3, label=name,
            linestyle="--" if name in dashed else "-")
  if log_x:
    ax.set_xscale("log", base=2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
