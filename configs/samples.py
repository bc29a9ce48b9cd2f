"""Sample K graded solutions per problem of a split with the trained policy.

  python -m ttc_jax.main --config=configs/samples.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/samples.py:test --workdir=workdirs/demo   # the test split
  python -m ttc_jax.main --config=configs/samples.py:smoke --workdir=/tmp/smoke

Reads WORKDIR/policy (or --config.sampling.policy=PATH, a stage or export dir);
writes WORKDIR/samples/<split>/ shards + manifest. Arguments: "" (train split,
for PRM labels and revision data), "test" (held-out problems, for verifier and
difficulty evaluation), "smoke".
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "test", "smoke"), "configs/samples.py")
  c = ml_collections.ConfigDict()
  c.job = "sample_solutions"
  c.seed = 1
  c.task = config_defaults.task(smoke=arg == "smoke")
  c.sampling = ml_collections.ConfigDict()
  c.sampling.policy = "policy"
  c.sampling.name = ""
  c.sampling.split = "test" if arg == "test" else "train"
  c.sampling.num_problems = 200 if arg == "test" else 500
  c.sampling.samples_per_problem = 32 if arg == "test" else 4
  c.sampling.temperature = 1.0
  c.sampling.top_p = 1.0
  c.sampling.max_new_tokens = 96
  c.sampling.problems_per_shard = 64
  c.sampling.batch_size = 16
  c.sampling.shared_prefix = True  # A prompt's samples read one stored copy of its keys and values; False: a copy each.
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.sampling.update(num_problems=12, samples_per_problem=2, max_new_tokens=48, problems_per_shard=4, batch_size=4)
  return c
