"""Policy evaluation: sample each test problem n times, grade, summarise pass@1."""
import dataclasses

import jax
from absl import logging

from ttc_jax.analysis import pass_rate
from ttc_jax.decode.solutions import sample_solutions
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.provenance import git_commit

# Metadata that names where a problem comes from, not how hard it is: not summarised.
_NOT_DIFFICULTY = ("source", "url", "year", "exam", "numbers", "target", "generating_solution")  # The last: countdown.


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

  def __post_init__(self):
    if self.samples_per_problem <= 0:
      raise ValueError(f"eval.samples_per_problem={self.samples_per_problem} must be positive")
    if self.batch_size <= 0:
      raise ValueError(f"eval.batch_size={self.batch_size} must be positive")
    if self.num_problems == 0 or self.num_problems < -1:
      raise ValueError(f"eval.num_problems={self.num_problems} must be positive, or -1 for the whole split")

  @property
  def sampling(self) -> SamplingConfig:
    return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)


def evaluate_policy(model, params, tokenizer, task, cfg: PolicyEvalConfig, rng: jax.Array) -> dict:
  """Per-problem pass@1 (temperature sampling) and its spread, overall and by each metadata field of the
  task's problems (pass1_by_num_steps for arith, pass1_by_level for MATH, pass1_by_num_numbers and
  pass1_by_num_solutions for countdown); returns the JSON-ready result."""
  problems = task.problems(cfg.split, None if cfg.num_problems < 0 else cfg.num_problems)
  if not problems:
    raise ValueError(f"eval.split={cfg.split!r}, eval.num_problems={cfg.num_problems}: selects no problem")
  solved = sample_solutions(model, params, tokenizer, task, problems, rng, num_samples=cfg.samples_per_problem,
                            cfg=cfg.sampling, batch_size=cfg.batch_size)
  records, pass1 = [], []
  for problem, record in zip(problems, solved):
    samples = record["samples"]
    pass1.append(pass_rate.pass_at_1([s["correct"] for s in samples]))
    records.append({"id": problem.id, **record["metadata"], "pass1": pass1[-1],
                    "mean_tokens": sum(s["num_tokens"] for s in samples) / len(samples)})
  for record in solved[:cfg.show]:
    s = record["samples"][0]
    logging.info("\n%s%s\n  -> extracted %s, reference %s: %s", record["prompt"], s["text"],
                 s["extracted"], record["answer"], "CORRECT" if s["correct"] else "wrong")
  keys = [k for k in dict.fromkeys(k for r in solved for k in r["metadata"]) if k not in _NOT_DIFFICULTY]
  by_key = {f"pass1_by_{k}": pass_rate.mean_by_key([p for p, r in zip(pass1, solved) if k in r["metadata"]],
                                                    [r["metadata"][k] for r in solved if k in r["metadata"]])
            for k in keys}
  return {
      "git_commit": git_commit(),
      "config": dataclasses.asdict(cfg),
      "task": task.name,
      "summary": pass_rate.spread_summary(pass1),
      **by_key,
      "problems": records,
  }


def log_summary(result: dict, path: str) -> None:
  s = result["summary"]
  by = next((k for k in ("pass1_by_num_steps", "pass1_by_level", "pass1_by_num_numbers") if k in result), None)
  logging.info("pass@1 %.3f (std across problems %.3f) on %d problems; never solved %.0f%%, always %.0f%%, "
               "in between %.0f%%; %s %s. Written to %s", s["mean_pass1"], s["std_pass1"], s["num_problems"],
               100 * s["frac_never_solved"], 100 * s["frac_always_solved"], 100 * s["frac_strictly_between"],
               by or "", {k: round(v, 2) for k, v in result[by].items()} if by else "", path)
