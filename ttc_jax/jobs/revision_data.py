"""Job `revision_data`: revision trajectories from sampled solutions, as an ArrayRecord dataset.

Reads a samples artifact (job sample_solutions; the paper samples 64 solutions per
training question at high temperature) and writes WORKDIR/revisions/data/:
shard-*.jsonl with one trajectory per line ({problem_id, question, previous, target, k},
see ttc_jax/revise/trajectories.py), spec.json and manifest.json (trajectories by k,
the share with k = 0, problems without a correct / an incorrect sample), the resumable
work; then, from the finished shards, trajectories.array_record (one JSON record per
trajectory, with its fixed-format prompt and text, see ttc_jax/revise/dataset.py) and
dataset.json (file, record count, trajectories by k), which train_reviser reads.
"""
import dataclasses
import os

from absl import logging

from ttc_jax import config_parsing, shards
from ttc_jax.model_refs import resolve
from ttc_jax.provenance import input_fingerprint, read_json
from ttc_jax.revise import dataset, trajectories

SECTIONS = {"job", "seed", "revision"}


@dataclasses.dataclass(frozen=True)
class RevisionDataConfig:
  samples: str = "samples/train"  # Samples artifact under WORKDIR (or a path).
  out: str = "revisions/data"  # Output under WORKDIR (or a path).
  ks: tuple[int, ...] = (0, 1, 2, 3, 4)
  per_correct: int = 3
  first_attempt_fraction: float = 1 / 3  # Share of k = 0 (question only) trajectories; see revise/trajectories.py.
  distinct_targets: bool = True
  problems_per_shard: int = 256

  def __post_init__(self):
    if self.problems_per_shard <= 0:
      raise ValueError(f"revision.problems_per_shard={self.problems_per_shard} must be positive")

  def trajectory_config(self, seed: int) -> trajectories.TrajectoryConfig:
    return trajectories.TrajectoryConfig(ks=tuple(self.ks), per_correct=self.per_correct,
                                         first_attempt_fraction=self.first_attempt_fraction,
                                         distinct_targets=self.distinct_targets, seed=seed)


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "revision_data")
  cfg = config_parsing.parse_section(RevisionDataConfig, config.revision, "revision")
  traj_cfg = cfg.trajectory_config(config.seed)
  samples_dir = resolve(workdir, cfg.samples)
  shards.require_complete(samples_dir, f"revision.samples={cfg.samples!r}",
                          "the sample_solutions job (configs/samples.py, e.g. --config.sampling.samples_per_problem=64)")
  out_dir = resolve(workdir, cfg.out)
  # run_sharded skips finished shards itself, after checking they were made from these samples.
  _write_shards(cfg, traj_cfg, samples_dir, out_dir, config.seed, workdir)
  manifest = read_json(os.path.join(out_dir, "manifest.json"))
  if dataset.is_current(out_dir, manifest):
    logging.info("Revision dataset already written: %s", os.path.join(out_dir, dataset.FILENAME))
    return
  info = dataset.write_dataset(out_dir, shards.read_records(out_dir), manifest)
  logging.info("%d trajectories -> %s", info["num_records"], os.path.join(out_dir, info["file"]))


def _write_shards(cfg: RevisionDataConfig, traj_cfg: trajectories.TrajectoryConfig, samples_dir: str, out_dir: str,
                  seed: int, workdir: str) -> None:
  records = shards.read_records(samples_dir)
  num_shards = max(1, -(-len(records) // cfg.problems_per_shard))

  def compute_shard(index: int) -> list[dict]:
    return trajectories.build_trajectories(records[index * cfg.problems_per_shard:(index + 1) * cfg.problems_per_shard],
                                           traj_cfg)

  spec = {"revision": dataclasses.asdict(cfg), "seed": seed, "samples": samples_dir,
          "num_problems": len(records)}
  manifest = shards.run_sharded(out_dir, num_shards, compute_shard, spec=spec,
                                summarize=lambda trajs: trajectories.summarize(records, trajs), desc="revision data",
                                job="the revision_data job (configs/revision_data.py)", workdir=workdir,
                                inputs={"samples": input_fingerprint(samples_dir)})
  logging.info("%d revision trajectories (by k: %s; %.2f with k = 0) from %d problems (%d without a correct sample, "
               "%d without an incorrect one) -> %s", manifest["num_trajectories"], manifest["trajectories_by_k"],
               manifest["first_attempt_fraction"] or 0.0,
               manifest["num_problems"], manifest["problems_without_correct"], manifest["problems_without_incorrect"],
               out_dir)
