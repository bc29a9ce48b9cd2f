"""Monte Carlo rollout labels for the PRM: R rollouts from every step prefix of the sampled solutions.

  python -m ttc_jax.main --config=configs/labels.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/labels.py:smoke --workdir=/tmp/smoke

Reads WORKDIR/samples/train (configs/samples.py) and WORKDIR/policy; writes
WORKDIR/labels/train/ shards + manifest (with the rollout compute spent).
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke"), "configs/labels.py")
  c = ml_collections.ConfigDict()
  c.job = "label_rollouts"
  c.seed = 2
  c.task = config_defaults.task(smoke=arg == "smoke")  # The samples' task: its grader and step delimiter.
  c.labels = ml_collections.ConfigDict()
  c.labels.policy = "policy"
  c.labels.samples = "samples/train"
  c.labels.name = "train"
  c.labels.rollouts = 8  # The paper uses 16; 8 keeps the CPU default near 15 minutes.
  c.labels.temperature = 1.0
  c.labels.max_new_tokens = 96
  c.labels.problems_per_shard = 32
  c.labels.batch_size = 16
  c.labels.shared_prefix = True  # A prefix's rollouts read one stored copy of its keys and values; False: a copy each.
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.labels.update(rollouts=2, max_new_tokens=32, problems_per_shard=4, batch_size=8)
  return c
