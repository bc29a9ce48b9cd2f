"""Job `difficulty`: oracle, predicted and (MATH) level difficulty bins of the test questions, and their cost.

Reads n_d graded samples per test question (WORKDIR/samples/difficulty, from
sample_solutions) and the PRM's step scores of those same samples
(WORKDIR/eval/verifiers/scores.jsonl, from eval_verifiers with
verifier_eval.samples=samples/difficulty). Writes WORKDIR/difficulty/difficulty.json:

  problems: [{problem_id, pass1, predicted_score, oracle_bin, predicted_bin[, level_bin]}]
  oracle / predicted: per bin {count, mean_pass1, min_pass1, max_pass1, mean_predicted_score}
  level, num_levels: the same table by the problems' published level (bin k = level k), only when the
    sample records carry `level` metadata (MATH, MATH-500)
  cost: what estimating difficulty spent: generations, policy tokens sampled, prompt tokens,
    verifier tokens scored, FLOPs (total and per problem)
  num_bins, samples_per_problem, config, git_commit

No model is loaded: only the tokenizer (to count verifier tokens) and model_config.json files.
"""
import dataclasses
import os

from absl import logging

from ttc_jax import config_parsing, export, shards, storage
from ttc_jax.analysis import difficulty as diff
from ttc_jax.model_refs import hf_path, resolve
from ttc_jax.models.flops import span_forward_flops
from ttc_jax.jobs import common
from ttc_jax.provenance import file_digest, git_commit, input_fingerprint, read_json, read_jsonl, write_json
from ttc_jax.tasks import registry

SECTIONS = {"job", "seed", "difficulty"}


@dataclasses.dataclass(frozen=True)
class DifficultyConfig:
  samples: str = "samples/difficulty"  # sample_solutions output: n_d graded samples per test question.
  scores: str = "eval/verifiers/scores.jsonl"  # eval_verifiers' PRM / ORM step scores of those samples.
  policy: str = "policy"  # The stage that sampled (model_config.json, tokenizer.model): FLOPs, tokens.
  prm: str = ""  # The verifier that scored; "" = `config.prm` of results.json next to `scores`.
  prm_format: str = ""  # Its layout (verify.formats), for its token count; "" = results.json's, else "ttc".
  out: str = "difficulty"
  num_bins: int = 5

  def __post_init__(self):
    if self.num_bins < 1:
      raise ValueError(f"difficulty.num_bins={self.num_bins} must be positive")


def _read_scores(path: str) -> list[dict]:
  if not storage.exists(path):
    raise FileNotFoundError(f"difficulty.scores: {path} is missing; run the eval_verifiers job "
                            "(configs/verifier_eval.py) with --config.verifier_eval.samples=samples/difficulty first")
  return read_jsonl(path, "delete it and re-run the eval_verifiers job (configs/verifier_eval.py)")


def _verifier(workdir: str, cfg: DifficultyConfig, scores_path: str) -> tuple[str, str]:
  """(the verifier that scored, its format): from the config, else from eval_verifiers' results.json."""
  results = os.path.join(os.path.dirname(scores_path), "results.json")
  recorded = {}
  if storage.exists(results):
    recorded = read_json(results)["config"]
  elif not cfg.prm:
    raise FileNotFoundError(f"difficulty.prm is '' (take it from {results}), but that file is missing: finish the "
                            "eval_verifiers job or set difficulty.prm to the verifier that wrote the scores")
  path = resolve(workdir, cfg.prm or recorded["prm"])
  return path, cfg.prm_format or recorded.get("prm_format", "ttc")


def problem_costs(records: list[dict], tokenizer, policy_cfg, verifier_cfg, verifier_format: str = "ttc",
                  verifier_tokenizer=None, delimiter: str | None = None) -> dict:
  """Per problem: generations, policy / prompt / verifier tokens and FLOPs of its samples and their scoring.

  The policy encodes the prompt once per problem (its samples share one prefill) and samples
  each solution after it; the verifier reads its layout of every sample in full (`verifier_format`,
  with its own tokenizer), as `verify.scoring.score_steps` does; `delimiter`: the samples' step
  delimiter, which the `ttc` layout writes after every step (None: "\\n").
  """
  from ttc_jax.verify.formats import get_format  # Imports jax: only here.
  from ttc_jax.verify.scored_text import record_prompt
  fmt = get_format(verifier_format, delimiter)
  verifier_tokenizer = verifier_tokenizer or tokenizer
  out = {}
  for r in records:
    prompt = record_prompt(r)
    prompt_tokens = len(tokenizer.prompt_ids(prompt))  # [bos] + prompt
    sampled = [int(s["num_tokens"]) for s in r["samples"]]
    problem = prompt if verifier_format == "ttc" else r["question"]  # Other formats lay out the question.
    scored = [len(fmt.encode(verifier_tokenizer, problem, s["steps"])[0]) for s in r["samples"]]
    out[r["problem_id"]] = {
        "generations": len(r["samples"]), "policy_tokens": sum(sampled), "prompt_tokens": prompt_tokens,
        "verifier_tokens": sum(scored),
        "policy_flops": float(span_forward_flops(policy_cfg, prompt_tokens, 0)
                              + sum(span_forward_flops(policy_cfg, n, prompt_tokens) for n in sampled)),
        "verifier_flops": float(sum(span_forward_flops(verifier_cfg, n, 0) for n in scored))}
  return out


def compute(records: list[dict], score_lines: list[dict], costs: dict, num_bins: int, seed: int) -> dict:
  """difficulty.json's content except config / git_commit (pure: records in, JSON out)."""
  scores_by_id = {line["problem_id"]: line for line in score_lines}
  missing = [r["problem_id"] for r in records if r["problem_id"] not in scores_by_id]
  if missing:
    raise ValueError(f"{len(missing)} sampled problems have no verifier scores (first: {missing[0]}): were the "
                     "scores made from other samples?")
  for r in records:
    if len(scores_by_id[r["problem_id"]]["prm_steps"]) != len(r["samples"]):
      raise ValueError(f"problem {r['problem_id']}: {len(r['samples'])} samples but "
                       f"{len(scores_by_id[r['problem_id']]['prm_steps'])} scored: scores from other samples?")
  pass1 = diff.oracle_pass1(records)
  predicted = diff.predicted_scores([scores_by_id[r["problem_id"]] for r in records])
  oracle_bins = diff.quantile_bins(pass1, num_bins, seed=seed)
  predicted_bins = diff.quantile_bins(predicted, num_bins, seed=seed)
  levels = diff.level_bins(records)
  level = {}
  if levels is not None:
    level = {"level": diff.bin_table(pass1, predicted, levels, max(levels.values())),
             "num_levels": max(levels.values())}

  return {"num_problems": len(records), "num_bins": num_bins,
          "samples_per_problem": min(len(r["samples"]) for r in records),
          "tie_break": f"sha256 of '{seed}:problem_id' (config seed {seed})",
          "problems": [{"problem_id": pid, "pass1": pass1[pid], "predicted_score": predicted[pid],
                        "oracle_bin": oracle_bins[pid], "predicted_bin": predicted_bins[pid],
                        **({"level_bin": levels[pid]} if levels is not None else {})} for pid in pass1],
          "oracle": diff.bin_table(pass1, predicted, oracle_bins, num_bins),
          "predicted": diff.bin_table(pass1, predicted, predicted_bins, num_bins),
          **level,
          "cost": {**diff.estimation_cost(costs),
                   "note": "oracle difficulty needs the policy's samples (and ground truth); predicted difficulty "
                           "needs the same samples plus the PRM's scoring of them (verifier_* fields)."}}


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "difficulty")
  cfg = config_parsing.parse_section(DifficultyConfig, config.difficulty, "difficulty")
  seed = int(config.get("seed", 0))
  out_path = os.path.join(resolve(workdir, cfg.out), "difficulty.json")
  samples_dir = resolve(workdir, cfg.samples)
  scores_path = resolve(workdir, cfg.scores)
  # What the bins are computed from: the samples, the verifier's scores of them and the policy (its size).
  inputs = {"samples": input_fingerprint(samples_dir), "policy": export.model_identity(resolve(workdir, cfg.policy)),
            "scores": file_digest(scores_path) if storage.exists(scores_path) else None}
  if common.current_result(out_path, inputs):
    old = read_json(out_path, "delete it to recompute it")
    if old.get("config") == {**dataclasses.asdict(cfg), "seed": seed}:
      logging.info("Difficulty already done: %s", out_path)
      return
  shards.require_complete(samples_dir, f"difficulty.samples={cfg.samples!r}",
                          "the sample_solutions job (configs/samples.py:test with "
                          "--config.sampling.name=difficulty)")
  records = shards.read_records(samples_dir)
  score_lines = _read_scores(scores_path)
  policy_dir = resolve(workdir, cfg.policy)
  verifier_dir, verifier_format = _verifier(workdir, cfg, scores_path)
  policy_cfg = export.model_config_of(policy_dir, f"difficulty.policy={cfg.policy!r}")
  verifier_cfg = export.model_config_of(verifier_dir, "difficulty.prm")
  try:
    tokenizer = export.tokenizer_in(hf_path(policy_dir))
  except FileNotFoundError:  # A stage written before tokenizers were copied along: the shipped one.
    from ttc_jax.tasks.tokenizer import load_tokenizer
    tokenizer = load_tokenizer(None)
  verifier_tokenizer = None if verifier_format == "ttc" else export.tokenizer_in(hf_path(verifier_dir))
  delimiter = registry.samples_step_format(samples_dir, workdir).delimiter
  costs = problem_costs(records, tokenizer, policy_cfg, verifier_cfg, verifier_format, verifier_tokenizer, delimiter)
  result = {"git_commit": git_commit(), "config": {**dataclasses.asdict(cfg), "seed": seed}, "inputs": inputs,
            "policy": policy_dir, "verifier": verifier_dir,
            **compute(records, score_lines, costs, cfg.num_bins, seed)}
  write_json(out_path, result)
  mean = lambda x: "n/a" if x is None else f"{x:.2f}"  # An empty bin (e.g. a MATH level no problem has).
  fmt = lambda s: ", ".join(f"{b}: {v['count']} @ {mean(v['mean_pass1'])}" for b, v in s.items())
  logging.info("Difficulty of %d problems -> %s\n  oracle bins (count @ mean pass@1): %s\n  predicted bins: %s\n"
               "  level bins: %s\n  estimation cost per problem: %s", result["num_problems"], out_path,
               fmt(result["oracle"]), fmt(result["predicted"]),
               fmt(result["level"]) if "level" in result else "none (no level metadata)",
               {k: f"{v:.3g}" for k, v in result["cost"]["per_problem"].items()})
