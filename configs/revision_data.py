"""Build revision trajectories (0-4 incorrect attempts, then a correct one) from sampled solutions.

A third of them have k = 0 (the question alone, a chain's first attempt), so the reviser
keeps the policy's first-attempt accuracy.

  python -m ttc_jax.main --config=configs/samples.py --workdir=workdirs/demo \
      --config.sampling.samples_per_problem=64 --config.sampling.name=revision_train
  python -m ttc_jax.main --config=configs/revision_data.py --workdir=workdirs/demo \
      --config.revision.samples=samples/revision_train
  python -m ttc_jax.main --config=configs/revision_data.py:smoke --workdir=/tmp/smoke

Reads WORKDIR/samples/train by default (the paper samples 64 solutions per training
question at high temperature); writes WORKDIR/revisions/data (shards + manifest with
trajectories by k). Arguments: "" (default), "smoke" (small shards). Override any
field with --config.revision.<field>=value.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke"), "configs/revision_data.py")
  c = ml_collections.ConfigDict()
  c.job = "revision_data"
  c.seed = 5
  c.revision = ml_collections.ConfigDict()
  c.revision.samples = "samples/train"
  c.revision.out = "revisions/data"
  c.revision.ks = (0, 1, 2, 3, 4)  # Previous incorrect attempts per trajectory (at most 4, the context size).
  # Trajectories per correct sample: each repeats its target text, so more would be more passes over the targets.
  c.revision.per_correct = 3
  # Share of them with k = 0 (one in three here); the k > 0 ones cycle over the feasible ks.
  c.revision.first_attempt_fraction = 1 / 3
  c.revision.distinct_targets = True
  c.revision.problems_per_shard = 256
  if arg == "smoke":
    c.revision.problems_per_shard = 4
  return c


def sweep(arg: str | None = None) -> list[dict]:
  """Context-size ablation: trajectories with at most 0, 1 or 4 previous attempts."""
  del arg
  return [{"revision.ks": ks, "revision.out": f"revisions/data_k{max(ks)}"} for ks in ((0,), (0, 1), (0, 1, 2, 3, 4))]
