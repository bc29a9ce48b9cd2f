"""Job `report`: the paper's analyses over one workdir -> report/{results.json, report.md, *.png}.

Reads (paths are `report.*` config fields, relative to WORKDIR):
  difficulty    difficulty/difficulty.json (job `difficulty`)                      required
  search        eval/search/<strategy>/N<budget>/ records (job `eval_search`)      required
  revisions     eval/revisions/P<P>xL<L>/ records and results.json's reviser_check  optional
                (job `eval_revisions`)
  policy        policy/train_summary.json (job `train_policy`)                     optional
  large_policy  large_policy/{train_summary.json, eval.json} (greedy eval)         optional
  verifiers     eval/verifiers/results.json's `ranking` (job `eval_verifiers`)     optional

Only questions present in every input that exists are used (their number is recorded);
difficulty bins are re-drawn over them from difficulty.json's pass@1 and predicted scores,
with the same quantile rule and tie-break (`analysis.difficulty`). Then: accuracy curves per
strategy and per bin, compute-optimal selection by two-fold cross-validation
(`analysis.compute_optimal`) for search, revisions and both, its efficiency against best-of-N
and against all-parallel revisions, the FLOPs-matched exchange against the larger policy
(`analysis.flops_exchange`), whether the verifiers rank the solutions of a question
(within-question AUROC per oracle bin, `analysis.ranking`), and for each of PAPER.md's five
findings whether this run reproduces it: each part is one contrast fixed in advance, paired over
questions with a 95% bootstrap interval (`analysis.contrasts`, `analysis.paired`). Cheap: no
model is loaded.

This module loads the inputs and writes the outputs; the work is in `analysis.report_analysis`
(numbers), `analysis.contrasts` (the findings' paired comparisons), `analysis.findings` (the five
findings), `analysis.report_plots` (PNGs) and `analysis.report_markdown` (report.md).
"""
import dataclasses
import json
import os
import re

from absl import logging

from ttc_jax import config_parsing, shards, storage
from ttc_jax.analysis import flops_exchange as fx
from ttc_jax.analysis.findings import findings
from ttc_jax.analysis.report_analysis import BASELINE, analyse, parse_revision
from ttc_jax.analysis.report_markdown import markdown
from ttc_jax.analysis.report_plots import write_report_plots
from ttc_jax.model_refs import resolve
from ttc_jax.provenance import git_commit, write_json

SECTIONS = {"job", "seed", "report"}


@dataclasses.dataclass(frozen=True)
class ReportConfig:
  difficulty: str = "difficulty/difficulty.json"
  search: str = "eval/search"
  revisions: str = "eval/revisions"  # Optional: missing -> the revision sections say so.
  policy: str = "policy"  # train_summary.json: params, train_tokens (optional, needed for M).
  large_policy: str = "large_policy"  # train_summary.json + greedy eval.json (optional).
  verifiers: str = "eval/verifiers/results.json"  # Optional: its `ranking` block -> the verifier ranking section.
  out: str = "report"
  ratios: tuple[float, ...] = fx.PAPER_RATIOS  # R = D_inference / D_pretrain for the FLOPs exchange.
  # "Nothing helps much" on the hardest bin: best-of-N's gain from its smallest to its largest budget is at most
  # this (the whole 95% interval below it).
  small_gain: float = 0.05

  def __post_init__(self):
    if not self.ratios or any(r <= 0 for r in self.ratios):
      raise ValueError(f"report.ratios={self.ratios} must be positive")


# ---------------------------------------------------------------------------- inputs


def _finished(dirs: list[str]) -> tuple[list[list[dict]], list[str]]:
  """Records of each finished shard directory (with manifest.json); the unfinished ones' paths."""
  done, unfinished = [], []
  for path in dirs:
    if storage.exists(os.path.join(path, "manifest.json")):
      done.append(shards.read_records(path))  # Damaged (no longer its manifest's) is an error, not "unfinished".
    else:
      unfinished.append(path)
  return done, unfinished


def _subdirs(root: str, pattern: str) -> list[str]:
  return [os.path.join(root, d) for d in sorted(storage.listdir(root))
          if re.fullmatch(pattern, d) and storage.isdir(os.path.join(root, d))]


def load_search(path: str) -> tuple[dict, list[str]]:
  """{strategy: {budget: {problem_id: correct}}} (best_of_n first, then results.json's order), notes."""
  if not storage.isdir(path):
    raise FileNotFoundError(f"report.search: {path} is missing; run the eval_search job (configs/search_eval.py) first")
  runs, unfinished = _finished([n for d in _subdirs(path, r".+") for n in _subdirs(d, r"N\d+")])
  runs = [recs for recs in runs if recs]
  if not runs:
    raise FileNotFoundError(f"report.search: no finished <strategy>/N<budget> records under {path}; run the "
                            "eval_search job (configs/search_eval.py) first")
  outcomes = {}
  for recs in runs:
    outcomes.setdefault(recs[0]["strategy"], {})[int(recs[0]["generation_budget"])] = {
        r["problem_id"]: bool(r["correct"]) for r in recs}
  order = []
  results = os.path.join(path, "results.json")
  if storage.exists(results):
    with storage.open(results) as f:
      order = list(json.load(f).get("config", {}).get("strategies", []))
  ranked = sorted(outcomes, key=lambda s: (s != BASELINE, order.index(s) if s in order else len(order), s))
  notes = [f"search: unfinished runs ignored: {', '.join(unfinished)}"] if unfinished else []
  return {s: dict(sorted(outcomes[s].items())) for s in ranked}, notes


def load_revisions(path: str) -> tuple[dict | None, list[str]]:
  """{"outcomes": {"revise_P<P>xL<L>/<method>": {N: {pid: correct}}}, "grids": {(P, L): {pid: grid}},
  "methods", "primary", "baseline_method", "reviser_check" (results.json's, or {"missing": why})} or None
  with a note."""
  if not storage.isdir(path):
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
    p, l, m = parse_revision(name)
    return (not (l == 1 and m == baseline), p * l, -p, methods.index(m))

  results = _read_json(os.path.join(path, "results.json")) or {}
  check = results.get("reviser_check") or {
      "missing": f"{path}/results.json records no reviser check (eval_revisions wrote it before the check existed, "
                 "or has not finished)"}
  return {"outcomes": {s: outcomes[s] for s in sorted(outcomes, key=rank)}, "grids": grids, "methods": methods,
          "primary": primary, "baseline_method": baseline, "reviser_check": check}, notes


def _read_json(path: str) -> dict | None:
  if not storage.exists(path):
    return None
  with storage.open(path) as f:
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


def load_verifier_ranking(path: str) -> tuple[dict | None, list[str]]:
  """eval_verifiers' `ranking` block (per-question within-question AUROC and losses), or None with a note."""
  result = _read_json(path)
  if result is None:
    return None, [f"verifiers: {path} is missing (run eval_verifiers, configs/verifier_eval.py): no verifier "
                  "ranking section"]
  if "ranking" not in result:
    return None, [f"verifiers: {path} has no `ranking` block (written before it existed): delete it and rerun "
                  "eval_verifiers (its scores.jsonl is kept, so nothing is rescored)"]
  return result["ranking"], []


# ---------------------------------------------------------------------------- job


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "report")
  cfg = config_parsing.parse_section(ReportConfig, config.report, "report")
  diff_path = resolve(workdir, cfg.difficulty)
  if not storage.exists(diff_path):
    raise FileNotFoundError(f"report.difficulty: {diff_path} is missing; run the difficulty job "
                            "(configs/difficulty.py) first")
  with storage.open(diff_path) as f:
    difficulty = json.load(f)
  search, notes = load_search(resolve(workdir, cfg.search))
  revisions, rev_notes = load_revisions(resolve(workdir, cfg.revisions))
  small, large, large_pass1, pol_notes = load_policies(resolve(workdir, cfg.policy), resolve(workdir, cfg.large_policy))
  ranking, ver_notes = load_verifier_ranking(resolve(workdir, cfg.verifiers))
  result = {"git_commit": git_commit(), "config": dataclasses.asdict(cfg),
            **analyse(difficulty, search, revisions, small, large, large_pass1,
                      notes + rev_notes + pol_notes + ver_notes, ratios=cfg.ratios, small_gain=cfg.small_gain,
                      verifier_ranking=ranking)}
  result["findings"] = findings(result)
  out_dir = resolve(workdir, cfg.out)
  storage.makedirs(out_dir)
  images = write_report_plots(result, out_dir)
  write_json(os.path.join(out_dir, "results.json"), result)
  storage.write_text(os.path.join(out_dir, "report.md"), markdown(result, images))
  logging.info("Report -> %s\n%s", out_dir, "\n".join(f"  finding {x['number']}: {x['status']}" for x in result["findings"]))
