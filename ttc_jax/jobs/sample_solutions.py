"""Job `sample_solutions`: K graded solutions per problem of a split, in resumable shards.

Writes WORKDIR/samples/<name>/ (name defaults to the split): shard-*.jsonl with
one record per problem (see ttc_jax/decode/solutions.py), spec.json and
manifest.json (totals: problems, samples, tokens sampled, accuracy).
"""
import dataclasses
import os

import jax
from absl import logging

from ttc_jax import config_parsing, export, shards, storage
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.decode.solutions import sample_solutions
from ttc_jax.jobs import common
from ttc_jax.model_refs import resolve

SECTIONS = {"job", "seed", "task", "sampling", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class SampleJobConfig:
  policy: str = "policy"  # A stage or export directory, or hf:/path (relative paths are under WORKDIR).
  name: str = ""  # Output WORKDIR/samples/<name>; "" = the split.
  split: str = "train"
  num_problems: int = -1  # -1: the whole split.
  samples_per_problem: int = 16
  temperature: float = 1.0
  top_p: float = 1.0
  max_new_tokens: int = 96
  problems_per_shard: int = 64
  batch_size: int = 16  # Prompts per sampler call (x samples_per_problem rows).
  # A prompt's samples read one stored copy of its keys and values (False: one copy per sample, the
  # same samples up to float summation order); not in the spec.
  shared_prefix: bool = True

  def __post_init__(self):
    for field in ("samples_per_problem", "problems_per_shard", "batch_size"):
      if getattr(self, field) <= 0:
        raise ValueError(f"sampling.{field}={getattr(self, field)} must be positive")
    if self.num_problems == 0 or self.num_problems < -1:
      raise ValueError(f"sampling.num_problems={self.num_problems} must be positive, or -1 for the whole split")
    if self.split not in ("train", "validation", "test"):
      raise ValueError(f"sampling.split={self.split!r} must be train, validation or test")

  @property
  def sampling(self) -> SamplingConfig:
    return SamplingConfig(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)


def task_record(spec, generator) -> dict:
  """The task as the spec pins it: arith's generator as before, plus which task / file / prompt / grader
  for the others (a changed file or prompt layout then refuses to resume into old shards)."""
  if spec.name == "arith" and not spec.grader:
    return dataclasses.asdict(generator)
  record = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("data_dir", "tokenizer")}
  if spec.name == "countdown":  # Generated: its problems depend on the generator too.
    record["generator"] = dataclasses.asdict(generator)
  return record


def summarize_samples(records: list[dict]) -> dict:
  samples = [s for r in records for s in r["samples"]]
  return {"num_problems": len(records), "num_samples": len(samples),
          "tokens_sampled": sum(s["num_tokens"] for s in samples),
          "accuracy": sum(s["correct"] for s in samples) / max(len(samples), 1)}


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "sample_solutions")
  common.reject_moved(config.sampling, "sampling", {"grader": "task.grader"})
  cfg = config_parsing.parse_section(SampleJobConfig, config.sampling, "sampling")
  task_spec, task_cfg = common.parse_task(config.task)
  task = common.make_task(config.task, workdir)
  out_dir = os.path.join(storage.abspath(workdir), "samples", cfg.name or cfg.split)
  inputs = {"policy": export.model_identity(resolve(workdir, cfg.policy))}
  if shards.is_complete(out_dir) and shards.made_from(out_dir, inputs):
    logging.info("Samples already complete: %s", out_dir)
    return
  mesh = common.setup_mesh(config, per_process=True)  # Each process samples its own shards.
  policy = export.load_model(resolve(workdir, cfg.policy), mesh)
  problems = common.prepare_task(task).problems(cfg.split, None if cfg.num_problems < 0 else cfg.num_problems)
  common.require_problems(problems, f"sampling.split={cfg.split!r}, sampling.num_problems={cfg.num_problems}",
                          cfg.split)
  num_shards = -(-len(problems) // cfg.problems_per_shard)
  base_rng = jax.random.key(config.seed)

  def compute_shard(index: int) -> list[dict]:
    chunk = problems[index * cfg.problems_per_shard:(index + 1) * cfg.problems_per_shard]
    with jax.set_mesh(mesh):
      return sample_solutions(policy.model, policy.params, policy.tokenizer, task, chunk,
                              jax.random.fold_in(base_rng, index), num_samples=cfg.samples_per_problem,
                              cfg=cfg.sampling, batch_size=cfg.batch_size, shared_prefix=cfg.shared_prefix)

  spec = {"sampling": common.spec_fields(cfg), "seed": config.seed, "policy_step": policy.manifest.get("step"),
          "policy": policy.manifest.get("source_workdir"), "task": task_record(task_spec, task_cfg),
          "num_problems": len(problems)}
  manifest = shards.run_sharded(out_dir, num_shards, compute_shard, spec=spec, summarize=summarize_samples,
                                desc=f"sample {cfg.split}", write=jax.process_index() == 0,
                                job="the sample_solutions job (configs/samples.py)", workdir=workdir,
                                inputs=inputs, split_over_processes=True)
  logging.info("Sampled %d solutions for %d problems (accuracy %.3f, %d tokens) -> %s", manifest["num_samples"],
               manifest["num_problems"], manifest["accuracy"], manifest["tokens_sampled"], out_dir)
