"""Train the revision model on revision trajectories, starting from the policy.

  python -m ttc_jax.main --config=configs/reviser.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/reviser.py:smoke --workdir=/tmp/smoke   # seconds on CPU
  python -m ttc_jax.main --config=configs/reviser.py:gpu --workdir=workdirs/gpu

Reads WORKDIR/policy (configs/policy.py) and WORKDIR/revisions/data
(configs/revision_data.py); writes WORKDIR/reviser like a policy stage. The loss
is next-token cross-entropy on the final (correct) attempt only. Arguments: ""
(CPU default), "smoke" (tiny, for tests), "gpu". Override any field with
--config.<section>.<field>=value.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke", "gpu"), "configs/reviser.py")
  c = ml_collections.ConfigDict()
  c.job = "train_reviser"
  c.seed = 6
  c.reviser = ml_collections.ConfigDict()
  c.reviser.policy = "policy"
  c.reviser.data = "revisions/data"
  c.reviser.stage = "reviser"
  # seq_len 576 fits every trajectory of the default task sampled with max_new_tokens=96:
  # at most 1 + 44 (question) + 4 x (5 + 96) (headers, attempts) + 96 (target) + 1 = 546
  # tokens. Longer ones (other tasks or samplers) are skipped and counted in train_summary.json.
  c.train = config_defaults.train(steps=500, batch_size=16, learning_rate=1e-3, warmup_steps=50,
                                  checkpoint_every=250, seq_len=576)
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.train.update(steps=6, batch_size=8, seq_len=384, warmup_steps=2, checkpoint_every=3, log_every=3)
  elif arg == "gpu":
    c.train.update(steps=3000, batch_size=128, warmup_steps=200, checkpoint_every=500)
  return c


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x steps ablation (launch/sweep.py expands it)."""
  del arg
  return [{"train.learning_rate": lr, "train.steps": s} for lr in (3e-4, 1e-3) for s in (500, 1000)]
