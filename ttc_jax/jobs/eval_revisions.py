"""Job `eval_revisions`: revision chains at each sequential:parallel split of each generation budget.

For every budget N and every split N = P x L (P parallel chains of L revisions, P a power
of 2) it runs `run_chains` with the reviser on the held-out problems in resumable shards,
WORKDIR/<out>/P<P>xL<L>/, one record per problem:

  problem fields, "strategy": "revise_P<P>xL<L>", "generation_budget": N, "parallel", "revisions",
  "chains": P x L attempt texts, "extracted" / "attempt_correct" / "scores" (P x L; scores
  None without a verifier), "candidates": the P*L attempts flat ({"chain", "step",
  "extracted", "correct", "score", "num_tokens", "stop_reason"}), "chosen": {method: answer},
  "correct_by_method": {method: bool}, "chosen_answer" / "correct" (the primary method:
  weighted_hierarchical with a verifier, else majority_flat), "budget": {"generations",
  "policy_tokens", "prompt_tokens", "verifier_tokens"}.

A verifier (`revision_eval.verifier`, "" = none) scores every attempt; its score is the
verifier's last-step score ("last" aggregation, the paper's). With `verifier_format` "ttc" (this
project's ORM / PRM / revision ORM) attempt t of a chain is scored given the context it was
sampled from, `revision_prompt(question, chain[:t])`. With an off-the-shelf format (qwen_prm,
math_shepherd, rlhflow, skywork; the verifier an `hf:DIR` or a stage) each attempt is scored as a
stand-alone solution to the question, its steps split at the task's step delimiter: such PRMs
know nothing of revision prompts. "verifier_tokens" counts the tokens of the format's layout.
Records carry "verifier_format" (None without a verifier).
Then WORKDIR/<out>/results.json: pass@1 at every revision step and the correct<->incorrect
transition rates (from the split with the longest chains), accuracy vs budget per
sequential:parallel ratio per selection method, git commit and config, and `reviser_check`:
the reviser's first-attempt gate from its stage's reviser_eval.json (`revise/heldout.py`;
{"missing": why} without one), which the report turns into a warning when the reviser's
first attempt is worse than the policy's or not shown to match it; and plots
pass_at_step.png and accuracy_vs_budget_<method>.png. Re-running skips finished work.

On training problems (configs/revision_eval.py:train) the same job records the reviser's
chains that the revision ORM trains on; `read_chain_records` reads them back.
"""
import dataclasses
import json
import math
import os

import jax
from absl import logging

from ttc_jax import config_parsing, export, shards, storage
from ttc_jax.analysis.plots import plot_curves
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.decode.solutions import problem_fields, problem_from_record
from ttc_jax.jobs import common
from ttc_jax.model_refs import hf_path, resolve
from ttc_jax.provenance import git_commit, write_json
from ttc_jax.revise import heldout, selection
from ttc_jax.revise.chains import run_chains
from ttc_jax.revise.format import MAX_CONTEXT, scored_attempts
from ttc_jax.tokenization.steps import StepFormat
from ttc_jax.verify.formats import FORMATS
from ttc_jax.verify.scoring import aggregate, score_steps
from ttc_jax.verify.verifier import Verifier, load_verifier

SECTIONS = {"job", "seed", "task", "revision_eval", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class RevisionEvalConfig:
  reviser: str = "reviser"  # Stage / export under WORKDIR, or a path.
  verifier: str = ""  # Stage, export or hf:DIR scoring the attempts; "" = none.
  # verify.formats: "ttc" (this project's, each attempt in its revision context) or an off-the-shelf
  # PRM's (qwen_prm, math_shepherd, rlhflow, skywork: each attempt alone after the question).
  verifier_format: str = "ttc"
  out: str = "eval/revisions"
  split: str = "test"
  num_problems: int = 100
  first_problem: int = 0  # Index of the first problem of the split used (problems [first, first + num)).
  budgets: tuple[int, ...] = (4, 16)  # Generations per problem, N = P x L.
  parallel: tuple[int, ...] = ()  # Chain counts P to try per budget; () = every power of 2 dividing N.
  max_context: int = MAX_CONTEXT
  temperature: float = 1.0
  top_p: float = 1.0
  max_new_tokens: int = 96
  problems_per_shard: int = 25
  batch_size: int = 64  # Chain rows per sampler call.
  verifier_batch_size: int = 64
  # A question's chains read one stored copy of its question (its whole prompt at the first attempt)
  # instead of each row its own (`revise.chains`). Not in the shard spec (a layout, `common.LAYOUT_FIELDS`):
  # with P dividing batch_size the chains are the same up to float summation order.
  shared_prefix: bool = True

  def __post_init__(self):
    if not self.budgets or any(b < 1 for b in self.budgets):
      raise ValueError(f"revision_eval.budgets={self.budgets} must be positive generation budgets")
    if any(p < 1 for p in self.parallel):
      raise ValueError(f"revision_eval.parallel={self.parallel} must be positive chain counts")
    for field in ("problems_per_shard", "batch_size", "verifier_batch_size", "num_problems", "max_new_tokens"):
      if getattr(self, field) <= 0:
        raise ValueError(f"revision_eval.{field}={getattr(self, field)} must be positive")
    if self.first_problem < 0:
      raise ValueError(f"revision_eval.first_problem={self.first_problem} must be >= 0")
    if self.verifier_format not in FORMATS:
      raise ValueError(f"revision_eval.verifier_format={self.verifier_format!r} must be one of {sorted(FORMATS)}")
    if self.verifier_format != "ttc" and not self.verifier:
      raise ValueError(f"revision_eval.verifier_format={self.verifier_format!r} names the layout of a verifier, "
                       "but revision_eval.verifier is '': set it (e.g. hf:/models/Qwen2.5-Math-PRM-7B) or leave "
                       "the format 'ttc'")
    if not self.settings():
      raise ValueError(f"revision_eval: no split P x L of budgets={self.budgets} with parallel={self.parallel}")

  def settings(self) -> list[tuple[int, int]]:
    """(P, L) pairs, budgets in order, most sequential first."""
    out = []
    for n in self.budgets:
      ps = self.parallel or tuple(2 ** k for k in range(int(math.log2(n)) + 1))
      out += [(p, n // p) for p in sorted(set(ps)) if n % p == 0 and (p, n // p) not in out]
    return out

  @property
  def sampling(self) -> SamplingConfig:
    return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)


def chain_record(problem, grader, chains: dict, scores, methods: list[str], parallel: int, revisions: int,
                 verifier_tokens: int = 0, verifier_format: str | None = None) -> dict:
  """The shard record of one problem from its `run_chains` output (and P x L scores or None, in the
  verifier's `verifier_format`)."""
  texts = chains["chains"]
  extracted = [[grader.extract_answer(t) for t in chain] for chain in texts]
  correct = [[bool(grader.is_correct(t, problem.answer)) for t in chain] for chain in texts]
  chosen = {m: selection.select(m, extracted, scores) for m in methods}
  flat = [(c, t) for c in range(len(texts)) for t in range(len(texts[c]))]

  def is_right(answer):
    return answer is not None and any(correct[c][t] for c, t in flat if extracted[c][t] == answer)

  primary = "weighted_hierarchical" if scores is not None else "majority_flat"
  candidates = [{"chain": c, "step": t, "extracted": extracted[c][t], "correct": correct[c][t],
                 "score": None if scores is None else scores[c][t], "num_tokens": chains["num_tokens"][c][t],
                 "stop_reason": chains["stop_reasons"][c][t]} for c, t in flat]
  return {**problem_fields(problem), "strategy": f"revise_P{parallel}xL{revisions}",
          "generation_budget": parallel * revisions, "parallel": parallel, "revisions": revisions,
          "chains": texts, "extracted": extracted, "attempt_correct": correct, "scores": scores,
          "candidates": candidates, "chosen": chosen, "correct_by_method": {m: is_right(a) for m, a in chosen.items()},
          "primary_method": primary, "chosen_answer": chosen[primary], "correct": is_right(chosen[primary]),
          "verifier_format": verifier_format if scores is not None else None,
          "budget": {"generations": chains["generations"], "policy_tokens": chains["tokens_sampled"],
                     "prompt_tokens": chains["prompt_tokens"], "verifier_tokens": verifier_tokens}}


def score_chains(verifier, questions: list[str], chain_grids: list[list[list[str]]], *, max_context: int,
                 batch_size: int) -> tuple[list[list[list[float]]], list[int]]:
  """Verifier score ("last" aggregation) of every attempt in its revision context; tokens scored per problem."""
  prompts, steps, where = [], [], []
  for q, (question, grid) in enumerate(zip(questions, chain_grids)):
    for c, chain in enumerate(grid):
      for t, (prompt, attempt_steps) in enumerate(scored_attempts(question, chain, max_context)):
        prompts.append(prompt)
        steps.append(attempt_steps)
        where.append((q, c, t))
  step_scores = score_steps(verifier.model, verifier.params, verifier.tokenizer, prompts, steps,
                            batch_size=batch_size)
  out = [[[0.0] * len(chain) for chain in grid] for grid in chain_grids]
  tokens = [0] * len(questions)
  for (q, c, t), s, p, st in zip(where, step_scores, prompts, steps):
    out[q][c][t] = aggregate(s, "last")
    tokens[q] += 1 + len(verifier.tokenizer.encode(p)) + sum(len(verifier.tokenizer.encode(x)) + 1 for x in st)
  return out, tokens


def score_standalone(verifier: Verifier, questions: list[str], chain_grids: list[list[list[str]]],
                     step_format: StepFormat, *, batch_size: int) -> tuple[list[list[list[float]]], list[int]]:
  """An off-the-shelf verifier's last-step score of every attempt as a stand-alone solution to its
  question (steps: the attempt text split at `step_format`'s delimiter), and per problem the tokens
  of the format's layout it reads. An attempt with no step is not fed and scores 0.0."""
  problems, steps, where = [], [], []
  for q, (question, grid) in enumerate(zip(questions, chain_grids)):
    for c, chain in enumerate(grid):
      for t, text in enumerate(chain):
        problems.append(question)
        steps.append(step_format.split_text(text))
        where.append((q, c, t))
  step_scores = verifier.score(problems, steps, batch_size=batch_size)
  out = [[[0.0] * len(chain) for chain in grid] for grid in chain_grids]
  tokens = [0] * len(questions)
  for (q, c, t), s, problem, st in zip(where, step_scores, problems, steps):
    out[q][c][t] = aggregate(s, "last")
    if st:
      tokens[q] += len(verifier.fmt.encode(verifier.tokenizer, problem, st)[0])
  return out, tokens


def _summary(methods):
  def summarize(records: list[dict]) -> dict:
    n = max(len(records), 1)
    mean = lambda key: sum(r["budget"][key] for r in records) / n
    return {"accuracy": sum(r["correct"] for r in records) / n, "num_problems": len(records),
            "accuracy_by_method": {m: sum(r["correct_by_method"][m] for r in records) / n for m in methods},
            "mean_generations": mean("generations"), "mean_policy_tokens": mean("policy_tokens"),
            "mean_prompt_tokens": mean("prompt_tokens"), "mean_verifier_tokens": mean("verifier_tokens")}
  return summarize


def read_chain_records(out_dir: str) -> list[dict]:
  """The chains of a finished run, one record per problem, every split's chains merged.

  Each record: the problem fields, "chains" (all chains of all splits, splits in
  results.json order, each chain its attempt texts oldest first), "attempt_correct" (the
  same shape) and "max_context" (the context the attempts were sampled with).
  Raises FileNotFoundError if the run has not finished (no results.json).
  """
  results_path = os.path.join(out_dir, "results.json")
  if not storage.exists(results_path):
    raise FileNotFoundError(f"{out_dir} is not a finished eval_revisions output (no results.json)")
  with storage.open(results_path) as f:
    results = json.load(f)
  merged: dict[str, dict] = {}
  for name in results["settings"]:
    for r in shards.read_records(os.path.join(out_dir, name)):
      into = merged.setdefault(r["problem_id"], {
          **problem_fields(problem_from_record(r)),
          "chains": [], "attempt_correct": [], "max_context": results["config"]["max_context"]})
      into["chains"] += r["chains"]
      into["attempt_correct"] += r["attempt_correct"]
  return list(merged.values())


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "eval_revisions")
  common.reject_moved(config.revision_eval, "revision_eval", {"grader": "task.grader"})
  cfg = config_parsing.parse_section(RevisionEvalConfig, config.revision_eval, "revision_eval")
  task = common.make_task(config.task, workdir)
  grader = task.grader
  out_dir = resolve(workdir, cfg.out)
  results_path = os.path.join(out_dir, "results.json")
  inputs = {"reviser": export.model_identity(resolve(workdir, cfg.reviser)),
            "verifier": export.model_identity(resolve(workdir, cfg.verifier)) if cfg.verifier else None}
  if common.current_result(results_path, inputs):
    logging.info("Revision evaluation already done: %s", results_path)
    return
  mesh = common.setup_mesh(config, per_process=True)  # Each process revises its own shards.
  problems = common.prepare_task(task).problems(cfg.split, cfg.first_problem + cfg.num_problems)[cfg.first_problem:]
  if not problems:
    raise ValueError(f"revision_eval.first_problem={cfg.first_problem}: the {cfg.split!r} split has no problem there")
  reviser_ref = resolve(workdir, cfg.reviser)
  gate = heldout.read_gate(hf_path(reviser_ref))
  if "missing" in gate:
    logging.warning("No first-attempt check of the reviser: %s", gate["missing"])
  elif gate["gate"] in heldout.WARN:
    logging.warning("The reviser's first attempt (held-out check): %s; the chains below start from it",
                    heldout.gate_summary(gate))
  reviser = export.load_model(reviser_ref, mesh)
  # A ttc verifier reads revision contexts, whose attempts are written as lines (revise.format): its
  # delimiter is "\n" whatever the task's. Off-the-shelf formats bring their own step separators.
  verifier = load_verifier(resolve(workdir, cfg.verifier), mesh, cfg.verifier_format) if cfg.verifier else None
  standalone = verifier is not None and cfg.verifier_format != "ttc"
  methods = selection.methods(with_scores=verifier is not None)
  base_rng = jax.random.key(config.seed)
  curves: dict = {m: {} for m in methods}
  details, by_setting = {}, {}
  for parallel, revisions in cfg.settings():
    n = parallel * revisions
    name = f"P{parallel}xL{revisions}"
    run_dir = os.path.join(out_dir, name)
    rng = jax.random.fold_in(jax.random.fold_in(base_rng, parallel), revisions)

    def compute_shard(index, parallel=parallel, revisions=revisions, rng=rng):
      chunk = problems[index * cfg.problems_per_shard:(index + 1) * cfg.problems_per_shard]
      questions = [p.question for p in chunk]
      with jax.set_mesh(mesh):  # Rows of every sampler and verifier call split over the data axis.
        outs = run_chains(reviser.model, reviser.params, reviser.tokenizer, questions,
                          jax.random.fold_in(rng, index), parallel=parallel, revisions=revisions, cfg=cfg.sampling,
                          batch_size=cfg.batch_size, max_context=cfg.max_context,
                          shared_prefix=cfg.shared_prefix)
        scores, vtokens = [None] * len(chunk), [0] * len(chunk)
        if standalone:
          scores, vtokens = score_standalone(verifier, questions, [o["chains"] for o in outs], task.step_format,
                                             batch_size=cfg.verifier_batch_size)
        elif verifier is not None:
          scores, vtokens = score_chains(verifier, questions, [o["chains"] for o in outs],
                                         max_context=cfg.max_context, batch_size=cfg.verifier_batch_size)
      return [chain_record(p, grader, o, s, methods, parallel, revisions, v, cfg.verifier_format)
              for p, o, s, v in zip(chunk, outs, scores, vtokens)]

    spec_json = {"strategy": f"revise_{name}", "generation_budget": n, "parallel": parallel, "revisions": revisions,
                 "sampling": dataclasses.asdict(cfg.sampling), "max_context": cfg.max_context, "seed": config.seed,
                 "reviser": reviser.manifest.get("source_workdir"),
                 "verifier": verifier.manifest.get("source_workdir") if verifier else None,
                 "num_problems": len(problems)}
    if cfg.first_problem:  # Only when set: shards written before the field existed keep a matching spec.
      spec_json["first_problem"] = cfg.first_problem
    if standalone:  # Likewise: ttc shards keep their spec.
      spec_json.update(verifier_format=cfg.verifier_format, verifier_path=resolve(workdir, cfg.verifier),
                       step_delimiter=task.step_format.delimiter)
    manifest = shards.run_sharded(run_dir, -(-len(problems) // cfg.problems_per_shard), compute_shard,
                                  spec=spec_json, summarize=_summary(methods), desc=f"revisions {name}",
                                  write=jax.process_index() == 0,
                                  job="the eval_revisions job (configs/revision_eval.py)", workdir=workdir,
                                  inputs=inputs, split_over_processes=True)
    by_setting[(parallel, revisions)] = run_dir
    ratio = selection.ratio_label(parallel, revisions)
    for m in methods:
      curves[m].setdefault(ratio, {})[n] = manifest["accuracy_by_method"][m]
    details[name] = {k: manifest[k] for k in _summary(methods)([]) if k in manifest}
    logging.info("Revisions %s (N=%d): %s", name, n, manifest["accuracy_by_method"])

  longest = max(by_setting, key=lambda pl: (pl[1], pl[0]))  # most revisions, then most chains
  grids = [r["attempt_correct"] for r in shards.read_records(by_setting[longest])]
  steps = selection.pass_at_step(grids)
  result = {"git_commit": git_commit(), "config": dataclasses.asdict(cfg), "inputs": inputs,
            "num_problems": len(problems),
            "verifier_format": cfg.verifier_format if verifier is not None else None,
            "verifier_scoring": (None if verifier is None else "standalone" if standalone else "revision_context"),
            "methods": methods, "settings": [f"P{p}xL{l}" for p, l in cfg.settings()],
            "pass_at_step": {"setting": f"P{longest[0]}xL{longest[1]}", "values": steps},
            "transitions": {"setting": f"P{longest[0]}xL{longest[1]}", **selection.transition_rates(grids)},
            "reviser_check": gate,
            "curves": {m: {r: {str(n): a for n, a in c.items()} for r, c in rs.items()} for m, rs in curves.items()},
            "details": details}
  if jax.process_index() == 0:
    plot_curves({"pass@1": dict(enumerate(steps))}, os.path.join(out_dir, "pass_at_step.png"),
                title="Revision model: pass@1 at each step", xlabel="Revision step t (0 = first attempt)",
                ylabel="pass@1", log_x=False)
    for m in methods:
      plot_curves({f"seq:par {r}": c for r, c in curves[m].items()},
                  os.path.join(out_dir, f"accuracy_vs_budget_{m}.png"),
                  title=f"Revisions, {m} selection", xlabel="Generation budget N = P x L")
    write_json(results_path, result)
  logging.info("Revision curves -> %s; pass@1 per step %s; transitions %s", results_path,
               [round(s, 3) for s in steps], result["transitions"])
