"""Job `eval_verifiers`: accuracy vs N on held-out problems for each way of choosing an answer.

Reads K samples per test problem (WORKDIR/samples/test), scores every step of
every sample with the PRM and the ORM, and writes WORKDIR/eval/verifiers/:
scores.jsonl (per problem, per sample: PRM step scores, ORM score), results.json
(curves: majority vote, ORM / PRM best-of-N weighted with last / min / product
step aggregation, plain best-of-N by PRM last, pass@N; `ranking`: whether each
verifier score ranks the solutions of a question, by within-question AUROC per oracle
difficulty bin, and its log-loss against knowing each question's pass rate,
`analysis.ranking`), accuracy_vs_n.png and auroc_by_bin.png.
"""
import dataclasses
import json
import os

import jax
from absl import logging

from ttc_jax import config_parsing, export, shards, storage
from ttc_jax.analysis import ranking, verifier_selection
from ttc_jax.analysis.accuracy_vs_n import accuracy_by_problem, budgets_up_to, mean_curves
from ttc_jax.analysis.difficulty import quantile_bins
from ttc_jax.analysis.plots import plot_curves
from ttc_jax.analysis.report_plots import plot_auroc_by_bin
from ttc_jax.jobs import common
from ttc_jax.model_refs import resolve
from ttc_jax.parallel import processes
from ttc_jax.provenance import git_commit, input_fingerprint, read_jsonl, write_json
from ttc_jax.search.aggregation import best_score, majority_vote, weighted_vote
from ttc_jax.tasks import registry
from ttc_jax.verify.scored_text import record_prompt
from ttc_jax.verify.formats import get_format
from ttc_jax.verify.label_sources import exact_step_labels
from ttc_jax.verify.scoring import aggregate
from ttc_jax.verify.verifier import load_verifier

SECTIONS = {"job", "seed", "verifier_eval", "mesh", "distributed"}

SELECTORS = {
    "majority": (None, lambda answers, _: majority_vote(answers)),
    "orm_weighted": ("orm", weighted_vote),
    "prm_last_weighted": ("prm_last", weighted_vote),
    "prm_min_weighted": ("prm_min", weighted_vote),
    "prm_prod_weighted": ("prm_prod", weighted_vote),
    "prm_last_best": ("prm_last", best_score),
}


@dataclasses.dataclass(frozen=True)
class VerifierEvalConfig:
  samples: str = "samples/test"
  prm: str = "prm"
  orm: str = "orm"
  prm_format: str = "ttc"  # verify.formats: ttc (this project's), qwen_prm, math_shepherd, rlhflow, skywork.
  orm_format: str = "ttc"
  out: str = "eval/verifiers"
  num_subsets: int = 32  # Random subsets of size N per problem and N.
  batch_size: int = 64  # Solutions per scoring call.
  num_bins: int = 5  # Oracle difficulty bins of the ranking block (quantiles of these samples' pass@1).

  def __post_init__(self):
    if self.num_bins < 1:
      raise ValueError(f"verifier_eval.num_bins={self.num_bins} must be positive")
    get_format(self.prm_format)  # Raises naming the known formats.
    get_format(self.orm_format)


def _score_all(path: str, fmt: str, records: list[dict], mesh, batch_size: int,
               delimiter: str) -> list[list[list[float]]]:
  verifier = load_verifier(path, mesh, fmt, delimiter)
  # This project's verifiers read the policy's prompt; the other formats lay out the question themselves.
  problem = record_prompt if fmt == "ttc" else (lambda r: r["question"])
  prompts = [problem(r) for r in records for _ in r["samples"]]
  steps = [s["steps"] for r in records for s in r["samples"]]
  with jax.set_mesh(mesh):
    flat = verifier.score(prompts, steps, batch_size=batch_size)
  out, i = [], 0
  for r in records:
    out.append(flat[i:i + len(r["samples"])])
    i += len(r["samples"])
  return out


def _first_wrong_line(records: list[dict], prm: list, k: int, pids: list[str], bins: dict, num_bins: int) -> dict:
  """Does the PRM's step score drop at a sample's first wrong line? Needs each line's exact label,
  which only the built-in arith task defines (`verify.label_sources.exact_step_labels`); other
  tasks get a note instead."""
  try:
    labels = [[exact_step_labels(r["question"], s["steps"]) for s in r["samples"][:k]] for r in records]
  except ValueError as e:
    return {"note": f"no exact line labels for these samples ({e}): only the built-in arith task has them"}
  return ranking.first_wrong_line([p[:k] for p in prm], labels, pids, bins, num_bins)


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "eval_verifiers")
  cfg = config_parsing.parse_section(VerifierEvalConfig, config.verifier_eval, "verifier_eval")
  out_dir = resolve(workdir, cfg.out)
  results_path = os.path.join(out_dir, "results.json")
  scores_path = os.path.join(out_dir, "scores.jsonl")
  samples_dir = resolve(workdir, cfg.samples)
  shards.require_complete(samples_dir, f"verifier_eval.samples={cfg.samples!r}",
                          "the sample_solutions job (configs/samples.py:test)")
  inputs = {"samples": input_fingerprint(samples_dir), "prm": export.model_identity(resolve(workdir, cfg.prm)),
            "orm": export.model_identity(resolve(workdir, cfg.orm))}
  inputs_path = os.path.join(out_dir, "scores_inputs.json")  # What scores.jsonl was scored from.
  if common.current_result(results_path, inputs, scores_path, inputs_path):
    logging.info("Verifier evaluation already done: %s", results_path)
    return
  common.current_result(inputs_path, inputs, scores_path)  # Scores of other inputs (a crash before results).
  records = shards.read_records(samples_dir)
  k = min(len(r["samples"]) for r in records)
  mesh = common.setup_mesh(config, per_process=True)  # Each process scores its own block of the samples.
  lead = jax.process_index() == 0
  if lead:
    storage.makedirs(out_dir)

  if storage.exists(scores_path):  # Scoring is the expensive part: keep it across a crash in the analysis.
    lines = read_jsonl(scores_path, "delete it to score the samples again")
    prm, orm = [line["prm_steps"] for line in lines], [line["orm_steps"] for line in lines]
  else:
    # The ttc layout writes the samples' task delimiter after every step (as training did).
    delimiter = registry.samples_step_format(samples_dir, workdir).delimiter
    mine = [records[i] for i in processes.my_block(len(records))]
    prm = _score_all(resolve(workdir, cfg.prm), cfg.prm_format, mine, mesh, cfg.batch_size, delimiter)
    orm = _score_all(resolve(workdir, cfg.orm), cfg.orm_format, mine, mesh, cfg.batch_size, delimiter)
    # Blocks in process order are the records in order: every process gets the one-process scores.
    prm, orm = ([s for block in processes.gather_json(part) for s in block] for part in (prm, orm))
    if lead:
      storage.write_text(scores_path, "".join(json.dumps({"problem_id": r["problem_id"], "prm_steps": p, "orm_steps": o})
                                              + "\n" for r, p, o in zip(records, prm, orm)))
      write_json(inputs_path, {"inputs": inputs})

  scores = {"orm": [[aggregate(s, "last") for s in o] for o in orm]}
  for how in ("last", "min", "prod"):
    scores[f"prm_{how}"] = [[aggregate(s, how) for s in p] for p in prm]
  answers = [[s["extracted"] for s in r["samples"][:k]] for r in records]
  correct = [[s["correct"] for s in r["samples"][:k]] for r in records]
  by_problem = accuracy_by_problem(answers, correct, {n: [v[:k] for v in vals] for n, vals in scores.items()},
                                   SELECTORS, budgets_up_to(k), num_subsets=cfg.num_subsets, seed=config.seed)
  curves = mean_curves(by_problem)
  pids = [r["problem_id"] for r in records]
  # Oracle bins as the difficulty job draws them from the same samples (same quantile rule and tie-break).
  bins = quantile_bins({p: sum(c) / k for p, c in zip(pids, correct)}, cfg.num_bins, seed=config.seed)
  ranks = ranking.ranking({n: [v[:k] for v in vals] for n, vals in scores.items()}, correct, pids, bins,
                          cfg.num_bins)
  selection_records = verifier_selection.per_question(by_problem, pids)
  ranks["selection"] = {**verifier_selection.summarise(selection_records, bins, cfg.num_bins),
                        "per_question": selection_records}
  ranks["first_wrong_line"] = _first_wrong_line(records, prm, k, pids, bins, cfg.num_bins)
  result = {"git_commit": git_commit(), "config": dataclasses.asdict(cfg), "inputs": inputs,
            "num_problems": len(records),
            "samples_per_problem": k, "curves": {name: {str(n): a for n, a in c.items()} for name, c in curves.items()},
            "ranking": ranks}
  if lead:
    plot_curves(curves, os.path.join(out_dir, "accuracy_vs_n.png"),
                title="Verifier selection on held-out problems", dashed=("pass@N",))
    plot_auroc_by_bin(ranks["verifiers"], os.path.join(out_dir, "auroc_by_bin.png"),
                      title="Within-question AUROC by oracle difficulty bin (95% intervals)")
    write_json(results_path, result)
  at_k = {name: round(c[k], 3) for name, c in curves.items()}
  logging.info("Accuracy at N=%d: %s -> %s", k, at_k, results_path)
  for name, summary in ranks["verifiers"].items():
    logging.info("%s: %s", name, ranking.describe(summary))
  for name, c in ranks["selection"].get("versus_majority", {}).items():
    if c["all"]:
      logging.info("%s minus majority at N=%d: %+.3f [%+.3f, %+.3f] (%s)", name, k, c["all"]["difference"],
                   c["all"]["low"], c["all"]["high"], c["all"]["verdict"])
