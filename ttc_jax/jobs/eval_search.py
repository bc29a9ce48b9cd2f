"""Job `eval_search`: accuracy vs generation budget for each search strategy against the PRM.

For every (strategy, budget) it runs the search on the held-out problems in
resumable shards, WORKDIR/eval/search/<strategy>/N<budget>/, one record per
problem (schema in the README: every final candidate with its PRM scores, the
chosen answer, correctness, the budget and its accounting). Then it writes
WORKDIR/eval/search/{results.json, accuracy_vs_budget.png}.
"""
import dataclasses
import os

import jax
from absl import logging

from ttc_jax import config_parsing, export, shards
from ttc_jax.analysis.plots import plot_curves
from ttc_jax.decode.solutions import problem_fields
from ttc_jax.jobs import common
from ttc_jax.model_refs import resolve
from ttc_jax.provenance import git_commit, write_json
from ttc_jax.search.run import run_search, search_spec
from ttc_jax.search.strategies import parse_strategy, search_config
from ttc_jax.tasks.registry import GENERATED_TASK_TYPES
from ttc_jax.verify.formats import get_format
from ttc_jax.verify.verifier import load_verifier

FEED_MODES = ("auto", "device", "host")

SECTIONS = {"job", "seed", "task", "search_eval", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class SearchEvalConfig:
  policy: str = "policy"
  prm: str = "prm"
  prm_format: str = "ttc"  # verify.formats: ttc (this project's), qwen_prm, math_shepherd, rlhflow, skywork.
  verifier_feed: str = "auto"  # auto (on the device when the vocabularies allow), device, host.
  out: str = "eval/search"
  split: str = "test"
  num_problems: int = 100
  budgets: tuple[int, ...] = (1, 4, 16)
  strategies: tuple[str, ...] = ("best_of_n", "beam:4", "beam:sqrt", "lookahead:4:1", "lookahead:4:3", "dvts:4")
  max_rounds: int = 40
  max_step_tokens: int = 24
  max_solution_tokens: int = 144
  temperature: float = 1.0
  problems_per_shard: int = 25
  batch_size: int = 25  # Problems per device call (x N candidates).
  # > 0: candidate rows per device call instead, the same at every budget (problems per call =
  # rows_per_call // candidates, at least one; candidates = N, or N / (k + 1) for lookahead): memory is
  # set by rows, so one value fits N = 4 and N = 256.
  rows_per_call: int = 0
  # Each problem's prompt is stored once in the policy's and the PRM's caches and its N candidates read
  # that copy (SearchConfig.shared_prefix); False keeps N copies. Not in the spec (`search_spec`).
  shared_prefix: bool = True

  def __post_init__(self):
    for spec in self.strategies:
      parse_strategy(spec)  # Raises naming the bad strategy.
    if not self.budgets or any(b < 1 for b in self.budgets):
      raise ValueError(f"search_eval.budgets={self.budgets} must be positive generation budgets")
    get_format(self.prm_format)  # Raises naming the known formats.
    if self.verifier_feed not in FEED_MODES:
      raise ValueError(f"search_eval.verifier_feed={self.verifier_feed!r} must be one of {FEED_MODES}")
    for field in ("problems_per_shard", "batch_size", "num_problems"):
      if getattr(self, field) <= 0:
        raise ValueError(f"search_eval.{field}={getattr(self, field)} must be positive")
    if self.rows_per_call < 0:
      raise ValueError(f"search_eval.rows_per_call={self.rows_per_call} must be >= 0 (0: use batch_size)")

  def problems_per_call(self, candidates: int) -> int:
    """Problems in one device call when each has `candidates` rows (the search's SearchConfig.budget)."""
    return max(1, self.rows_per_call // candidates) if self.rows_per_call else self.batch_size


def _summary(records: list[dict]) -> dict:
  n = max(len(records), 1)
  mean = lambda key: sum(r["budget"][key] for r in records) / n
  return {"accuracy": sum(r["correct"] for r in records) / n, "num_problems": len(records),
          "mean_generations": mean("generations"), "mean_policy_tokens": mean("policy_tokens"),
          "mean_prm_tokens": mean("prm_tokens"), "mean_flops": mean("flops")}


def _warn_if_too_short(cfg: "SearchEvalConfig", task) -> None:
  """A round runs while every candidate it extends has room for one more step of max_step_tokens
  after its own solution, so a candidate whose lines all take max_step_tokens gets
  max_solution_tokens / max_step_tokens rounds. Fewer than the synthetic task's longest solution
  (max_steps lines + the answer line) can end such searches unanswered, graded wrong. (Each
  candidate's cache index counts its own tokens: shorter lines leave room for more rounds, and
  other rows' long steps no longer use it up.) Benchmark tasks have no known longest solution:
  nothing to check."""
  if not isinstance(task, GENERATED_TASK_TYPES):
    return
  needed = (task.generator.max_steps + 1) * cfg.max_step_tokens
  if cfg.max_solution_tokens < needed:
    logging.warning("search_eval.max_solution_tokens=%d < (task.generator.max_steps + 1) x "
                    "search_eval.max_step_tokens = %d: searches of the longest problems may stop before "
                    "their answer line and count as wrong; raise max_solution_tokens to %d",
                    cfg.max_solution_tokens, needed, needed)


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "eval_search")
  common.reject_moved(config.search_eval, "search_eval", {"grader": "task.grader"})
  cfg = config_parsing.parse_section(SearchEvalConfig, config.search_eval, "search_eval")
  task = common.make_task(config.task, workdir)
  _warn_if_too_short(cfg, task)
  out_dir = resolve(workdir, cfg.out)
  results_path = os.path.join(out_dir, "results.json")
  inputs = {"policy": export.model_identity(resolve(workdir, cfg.policy)),
            "prm": export.model_identity(resolve(workdir, cfg.prm))}
  if common.current_result(results_path, inputs):
    logging.info("Search evaluation already done: %s", results_path)
    return
  mesh = common.setup_mesh(config, per_process=True)  # Each process searches its own shards.
  problems = common.require_problems(common.prepare_task(task).problems(cfg.split, cfg.num_problems),
                                     f"search_eval.split={cfg.split!r}", cfg.split)
  policy = export.load_model(resolve(workdir, cfg.policy), mesh)
  prm = load_verifier(resolve(workdir, cfg.prm), mesh, cfg.prm_format, task.step_format.delimiter)
  sizes = dict(max_rounds=cfg.max_rounds, max_step_tokens=cfg.max_step_tokens,
               max_solution_tokens=cfg.max_solution_tokens, temperature=cfg.temperature,
               shared_prefix=cfg.shared_prefix)
  base_rng = jax.random.key(config.seed)
  curves, details, skipped = {}, {}, []
  for s_index, spec in enumerate(cfg.strategies):
    strategy = parse_strategy(spec)
    for budget in cfg.budgets:
      search_cfg = search_config(strategy, budget, **sizes)
      if search_cfg is None:
        skipped.append(f"{spec}@{budget}")
        continue
      run_dir = os.path.join(out_dir, spec.replace(":", "_"), f"N{budget}")
      rng = jax.random.fold_in(jax.random.fold_in(base_rng, s_index), budget)

      def compute_shard(index, search_cfg=search_cfg, rng=rng):
        chunk = problems[index * cfg.problems_per_shard:(index + 1) * cfg.problems_per_shard]
        # This project's PRM reads the policy's own prompt and tokens; other formats lay out the question.
        verifier = ({"verifier_format": prm.fmt} if cfg.prm_format == "ttc"
                    else prm.search_kwargs([p.question for p in chunk]))
        records = run_search(policy.model, policy.params, prm.model, prm.params, policy.tokenizer, task.grader,
                             [task.prompt(p, policy.tokenizer) for p in chunk], jax.random.fold_in(rng, index),
                             cfg=search_cfg, batch_size=cfg.problems_per_call(search_cfg.budget),
                             references=[p.answer for p in chunk],
                             step_format=task.step_format, verifier_feed_mode=cfg.verifier_feed, mesh=mesh,
                             **verifier)
        # "answer" stays the reference (as in sample records); the search's pick is "chosen_answer".
        return [{**problem_fields(p), "strategy": spec, "generation_budget": budget,
                 **{k: v for k, v in r.items() if k != "answer"}, "chosen_answer": r["answer"]}
                for p, r in zip(chunk, records)]

      spec_json = {"strategy": spec, "generation_budget": budget, "search": search_spec(search_cfg),
                   "seed": config.seed, "policy": policy.manifest.get("source_workdir"),
                   "prm": prm.manifest.get("source_workdir"), "num_problems": len(problems),
                   **({"prm_format": cfg.prm_format} if cfg.prm_format != "ttc" else {})}
      manifest = shards.run_sharded(run_dir, -(-len(problems) // cfg.problems_per_shard), compute_shard,
                                    spec=spec_json, summarize=_summary, desc=f"search {spec} N={budget}",
                                    write=jax.process_index() == 0,
                                    job="the eval_search job (configs/search_eval.py)", workdir=workdir,
                                    inputs=inputs, split_over_processes=True)
      curves.setdefault(spec, {})[budget] = manifest["accuracy"]
      details.setdefault(spec, {})[str(budget)] = {k: manifest[k] for k in _summary([]) if k in manifest}
      logging.info("%s at generation budget %d: accuracy %.3f", spec, budget, manifest["accuracy"])
  result = {"git_commit": git_commit(), "config": dataclasses.asdict(cfg), "inputs": inputs,
            "num_problems": len(problems),
            "curves": {s: {str(b): a for b, a in c.items()} for s, c in curves.items()}, "details": details,
            "skipped": skipped}
  if jax.process_index() == 0:
    plot_curves(curves, os.path.join(out_dir, "accuracy_vs_budget.png"), title="Search against the PRM",
                xlabel="Generation budget")
    write_json(results_path, result)
  logging.info("Search curves -> %s (skipped, not fitting their budget: %s)", results_path, skipped or "none")
