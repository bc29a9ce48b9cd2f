"""Job `label_rollouts`: Monte Carlo step labels for sampled solutions, in resumable shards.

Reads WORKDIR/samples/<split>/ (job sample_solutions; the `task` section gives the grader and the step
delimiter, and must be the task those samples were drawn from) and writes
WORKDIR/labels/<split>/: the same records with `step_labels` per sample, plus
the rollout compute spent (tokens sampled, prompt tokens, FLOPs) in the manifest.
"""
import dataclasses
import os

import jax
from absl import logging

from ttc_jax import config_parsing, export, shards, storage
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.jobs import common
from ttc_jax.model_refs import resolve
from ttc_jax.models.flops import forward_flops_per_token
from ttc_jax.provenance import input_fingerprint
from ttc_jax.verify.rollouts import label_records

SECTIONS = {"job", "seed", "task", "labels", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class LabelJobConfig:
  policy: str = "policy"  # Stage dir under WORKDIR, or a path: the rollout policy.
  samples: str = "samples/train"  # Input, under WORKDIR or a path.
  name: str = "train"  # Output WORKDIR/labels/<name>.
  rollouts: int = 16  # R rollouts per step prefix (the paper uses 16).
  temperature: float = 1.0
  max_new_tokens: int = 96
  problems_per_shard: int = 32
  batch_size: int = 16  # Prefixes per sampler call (x rollouts rows).
  shared_prefix: bool = True  # A prefix's rollouts read one stored copy of its keys and values; not in the spec.

  def __post_init__(self):
    for field in ("rollouts", "problems_per_shard", "batch_size", "max_new_tokens"):
      if getattr(self, field) <= 0:
        raise ValueError(f"labels.{field}={getattr(self, field)} must be positive")

  @property
  def sampling(self) -> SamplingConfig:
    return SamplingConfig(temperature=self.temperature, max_new_tokens=self.max_new_tokens)


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "label_rollouts")
  common.reject_moved(config.labels, "labels", {"grader": "task.grader"})
  cfg = config_parsing.parse_section(LabelJobConfig, config.labels, "labels")
  task = common.make_task(config.task, workdir)  # Its grader and step delimiter; its problems are not read.
  out_dir = os.path.join(storage.abspath(workdir), "labels", cfg.name)
  samples_dir = resolve(workdir, cfg.samples)
  shards.require_complete(samples_dir, f"labels.samples={cfg.samples!r}",
                          "the sample_solutions job (configs/samples.py)")
  inputs = {"policy": export.model_identity(resolve(workdir, cfg.policy)), "samples": input_fingerprint(samples_dir)}
  if shards.is_complete(out_dir) and shards.made_from(out_dir, inputs):
    logging.info("Labels already complete: %s", out_dir)
    return
  records = shards.read_records(samples_dir)
  mesh = common.setup_mesh(config, per_process=True)  # Each process labels its own shards.
  policy = export.load_model(resolve(workdir, cfg.policy), mesh)
  num_shards = -(-len(records) // cfg.problems_per_shard)
  base_rng = jax.random.key(config.seed)

  def compute_shard(index: int) -> list[dict]:
    chunk = records[index * cfg.problems_per_shard:(index + 1) * cfg.problems_per_shard]
    with jax.set_mesh(mesh):
      return label_records(policy.model, policy.params, policy.tokenizer, task.grader, chunk,
                           jax.random.fold_in(base_rng, index), rollouts=cfg.rollouts, cfg=cfg.sampling,
                           batch_size=cfg.batch_size, step_format=task.step_format,
                           shared_prefix=cfg.shared_prefix)

  # FLOPs at the mean context a rollout token sees (prompt + half the generation).
  flops_per_token = forward_flops_per_token(policy.model.cfg, context_len=96)

  def summarize(labelled: list[dict]) -> dict:
    samples = [s for r in labelled for s in r["samples"]]
    sampled = sum(s["rollout_tokens"] for s in samples)
    prompt = sum(s["rollout_prompt_tokens"] for s in samples)
    return {"num_problems": len(labelled), "num_samples": len(samples),
            "num_steps_labelled": sum(len(s["step_labels"]) for s in samples),
            "rollout_tokens_sampled": sampled, "rollout_prompt_tokens": prompt,
            "rollout_flops": (sampled + prompt) * flops_per_token,
            "mean_step_label": sum(sum(s["step_labels"]) for s in samples) / max(1, sum(len(s["step_labels"]) for s in samples))}

  spec = {"labels": common.spec_fields(cfg), "seed": config.seed, "policy": policy.manifest.get("source_workdir"),
          "policy_step": policy.manifest.get("step"), "num_problems": len(records)}
  manifest = shards.run_sharded(out_dir, num_shards, compute_shard, spec=spec, summarize=summarize,
                                desc="MC rollout labels", write=jax.process_index() == 0,
                                job="the label_rollouts job (configs/labels.py)", workdir=workdir,
                                inputs=inputs, split_over_processes=True)
  logging.info("Labelled %d steps of %d samples with %d rollouts each (%d tokens sampled) -> %s",
               manifest["num_steps_labelled"], manifest["num_samples"], cfg.rollouts,
               manifest["rollout_tokens_sampled"], out_dir)
