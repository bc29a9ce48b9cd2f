"""Policy evaluation: sample each test problem n times, grade, summarise pass@1."""
import dataclasses

import jax
from absl import logging

from ttc_jax.analysis import pass_rate
from ttc_jax.decode.solutions import sample_solutions
from ttc_jax.jobs import common
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.provenance import git_commit
from ttc_jax.tasks import synthetic
from ttc_jax.tasks.grading import get_grader


@dataclasses.dataclass(frozen=True)
class PolicyEvalConfig:
  split: str = "test"
  num_problems: int = -1  # -1: the whole split.
  samples_per_problem: int = 16
  temperature: float = 1.0
  top_p: float = 1.0
  max_new_tokens: int = 96
  batch_size: int = 32  # Prompts per sampler call (times samples_per_problem rows).
  show: int = 5  # Samples printed to the console with their grades.
  grader: str = "exact"

  def __post_init__(self):
    if self.samples_per_problem <= 0:
      raise ValueError(f"eval.samples_per_problem={self.samples_per_problem} must be positive")
    if self.batch_size <= 0:
      raise ValueError(f"eval.batch_size={self.batch_size} must be positive")

  @property
  def sampling(self) -> SamplingConfig:
    return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)


def evaluate_policy(model, params, tokenizer, builder, cfg: PolicyEvalConfig, rng: jax.Array) -> dict:
  """Per-problem pass@1 (temperature sampling) and its spread; returns the JSON-ready result."""
  problems = common.load_split(builder, cfg.split, cfg.num_problems)
  grader = get_grader(cfg.grader)
  solved = sample_solutions(model, params, tokenizer, grader, problems, rng, num_samples=cfg.samples_per_problem,
                            cfg=cfg.sampling, batch_size=cfg.batch_size)
  records, pass1 = [], []
  for problem, record in zip(problems, solved):
    samples = record["samples"]
    pass1.append(pass_rate.pass_at_1([s["correct"] for s in samples]))
    records.append({"id": problem.id, "num_steps": problem.num_steps, "max_operand": problem.max_operand,
                    "ops": problem.ops, "pass1": pass1[-1],
                    "mean_tokens": sum(s["num_tokens"] for s in samples) / len(samples)})
  for problem, record in list(zip(problems, solved))[:cfg.show]:
    s = record["samples"][0]
    logging.info("\n%s%s\n  -> extracted %s, reference %s: %s", synthetic.prompt_text(problem), s["text"],
                 s["extracted"], problem.answer, "CORRECT" if s["correct"] else "wrong")
  return {
      "git_commit": git_commit(),
      "config": dataclasses.asdict(cfg),
      "summary": pass_rate.spread_summary(pass1),
      "pass1_by_num_steps": pass_rate.mean_by_key(pass1, [r["num_steps"] for r in records]),
      "pass1_by_max_operand": pass_rate.mean_by_key(pass1, [r["max_operand"] for r in records]),
      "pass1_by_ops": pass_rate.mean_by_key(pass1, [r["ops"] for r in records]),
      "problems": records,
  }


def log_summary(result: dict, path: str) -> None:
  s = result["summary"]
  logging.info("pass@1 %.3f (std across problems %.3f) on %d problems; never solved %.0f%%, always %.0f%%, "
               "in between %.0f%%; by steps %s. Written to %s", s["mean_pass1"], s["std_pass1"], s["num_problems"],
               100 * s["frac_never_solved"], 100 * s["frac_always_solved"], 100 * s["frac_strictly_between"],
               {k: round(v, 2) for k, v in result["pass1_by_num_steps"].items()}, path)
