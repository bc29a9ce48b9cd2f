"""PAPER.md's five findings, each judged from its parts' paired comparisons (`analysis.contrasts`).

A part is `supported`, `contradicted`, `no effect`, `inconclusive` (from its 95% paired bootstrap
interval) or `not measurable`. A finding is `reproduced` only when every part is supported;
otherwise its status says what the parts show (`status`), and its evidence lists every part with
its contrast and interval, so a reader can see which half of a claim holds.
"""
from ttc_jax.analysis import paired as pd
from ttc_jax.analysis.contrasts import describe

CLAIMS = {
    1: "beam search beats best-of-N at small budgets, the gain shrinks at large ones; lookahead is worse than beam "
       "search",
    2: "easy bins: beam search degrades at high budgets; medium/hard bins: beam beats best-of-N; hardest bin: "
       "nothing helps much",
    3: "pass@1 rises with revisions; sequential beats parallel at equal budget; easy questions prefer "
       "all-sequential, harder ones a mix",
    4: "compute-optimal selection matches best-of-N (and parallel revisions) with about 4x less compute",
    5: "FLOPs-matched: test-time compute wins on easy/medium bins when R < 1; the larger model wins on the hardest "
       "bin and when R > 1",
}


def status(verdicts: list[str]) -> str:
  """A finding's status from its parts' verdicts.

  `reproduced`: every part supported. `not measurable`: no part measured. `supported where
  measured`: every measured part supported, some not measurable. `partly supported`: some parts
  supported, others not. `not reproduced`: none supported and some contradicted or showing no
  effect. `inconclusive`: none supported, contradicted or null.
  """
  measured = [v for v in verdicts if v != pd.NOT_MEASURABLE]
  if not measured:
    return "not measurable"
  ok = sum(v == pd.SUPPORTED for v in measured)
  if ok == len(verdicts):
    return "reproduced"
  if ok == len(measured):
    return "supported where measured"
  if ok:
    return "partly supported"
  if any(v in (pd.CONTRADICTED, pd.NO_EFFECT) for v in measured):
    return "not reproduced"
  return "inconclusive"


def fmt(x) -> str:
  """A rate with three decimals, or n/a."""
  return "n/a" if x is None else f"{x:.3f}"


def findings(r: dict) -> list[dict]:
  """PAPER.md's five findings, each {number, claim, status, parts, evidence}, from results.json's
  `paired` section (`report_analysis.analyse`)."""
  out = []
  for n, claim in CLAIMS.items():
    parts = r["paired"]["parts"][str(n)]
    extra = f" (M = {r['param_ratio_M']:.2f} here, paper 14)" if n == 5 and r.get("param_ratio_M") else ""
    evidence = "; ".join(f"{p['part']} {p['claim']}: {p['contrast']}: {describe(p)}" for p in parts)
    out.append({"number": n, "claim": claim + extra, "status": status([p["verdict"] for p in parts]),
                "parts": [p["part"] for p in parts], "evidence": evidence})
  return out
