"""PNG line plots of accuracy curves, styled like the paper's figures (matplotlib imported lazily,
headless backend)."""
import io
import os
from typing import Mapping, Sequence

from ttc_jax import storage


def pyplot():
  """matplotlib.pyplot on the Agg backend; imported on first use so the jobs start without it."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_curves(curves: Mapping[str, Mapping], path: str, *, title: str, xlabel: str = "Generation budget N",
                ylabel: str = "Accuracy", dashed: Sequence[str] = (), log_x: bool = True,
                bands: Mapping[str, Mapping] | None = None) -> None:
  """One line per curve {x: y} -> PNG at `path`; x on a log2 axis (budgets) unless log_x=False.

  Keys may be numbers or their strings (results.json's "9.5"); None values are skipped. Curves
  named in `dashed` are drawn dashed. `bands`: {name: {x: [low, high]}}, each curve's interval,
  drawn as a shaded band (a bar at a single point) in the curve's colour.
  """
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
  for name, curve in curves.items():
    draw_curve(ax, name, curve, (bands or {}).get(name), dashed=name in dashed)
  if log_x:
    ax.set_xscale("log", base=2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  save_figure(fig, path)
  plt.close(fig)


def save_figure(fig, path: str) -> None:
  """Saves a figure to a local path or a gs:// URL (rendered in memory, written in one piece)."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format=os.path.splitext(path)[1].lstrip(".") or "png")
  storage.write_bytes(path, buffer.getvalue())


def draw_curve(ax, name: str, curve: Mapping, band: Mapping | None = None, *, dashed: bool = False) -> None:
  """One curve on `ax`, with its interval band {x: [low, high]} when given (keys as in `curve`)."""
  pts = sorted((float(n), y) for n, y in curve.items() if y is not None)
  if not pts:
    return
  (line,) = ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", markersize=3, label=name,
                    linestyle="--" if dashed else "-")
  if band:
    lohi = {float(n): v for n, v in band.items() if v is not None}
    xs = [x for x, _ in pts if x in lohi]
    if len(xs) == 1:
      y = dict(pts)[xs[0]]
      ax.errorbar(xs, [y], yerr=[[y - lohi[xs[0]][0]], [lohi[xs[0]][1] - y]], color=line.get_color(), capsize=2,
                  linewidth=0.8)
    elif xs:
      ax.fill_between(xs, [lohi[x][0] for x in xs], [lohi[x][1] for x in xs], color=line.get_color(), alpha=0.12,
                      linewidth=0)
