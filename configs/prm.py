"""Train the process reward model (PRM) on Monte Carlo step labels, starting from the policy.

  python -m ttc_jax.main --config=configs/prm.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/prm.py:smoke --workdir=/tmp/smoke   # seconds on CPU
  python -m ttc_jax.main --config=configs/prm.py:gpu --workdir=workdirs/gpu

Reads WORKDIR/policy (configs/policy.py) and WORKDIR/labels/train
(configs/labels.py); writes WORKDIR/prm (checkpoints, train_summary.json,
verifier_eval.json on the last 10% of problems, held out). The model is the
policy's, with a scalar value head instead of the LM head. Arguments: ""
(CPU default), "smoke" (tiny, for tests), "gpu". Override any field with
--config.<section>.<field>=value.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke", "gpu"), "configs/prm.py")
  c = ml_collections.ConfigDict()
  c.job = "train_verifier"
  c.seed = 3

  c.verifier = ml_collections.ConfigDict()
  c.verifier.kind = "prm"
  c.verifier.policy = "policy"
  c.verifier.data = "labels/train"
  c.verifier.stage = "prm"
  c.verifier.heldout_fraction = 0.1
  c.verifier.eval_batch_size = 64

  c.train = ml_collections.ConfigDict()
  c.train.steps = 1500
  c.train.batch_size = 32
  c.train.seq_len = 128  # Fits every default-task solution; longer samples are skipped and counted.
  c.train.grad_accum_steps = 1
  c.train.learning_rate = 1e-3  # Lower than the policy's: fine-tuning, and the head starts from scratch.
  c.train.warmup_steps = 100
  c.train.weight_decay = 0.1
  c.train.checkpoint_every = 500
  c.train.log_every = 50

  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()

  if arg == "smoke":
    c.train.update(steps=10, batch_size=8, warmup_steps=2, checkpoint_every=5, log_every=5)
    c.verifier.eval_batch_size = 8
  elif arg == "gpu":
    c.train.update(steps=3000, batch_size=128, warmup_steps=200)
  return c


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x steps ablation (launch/sweep.py expands it)."""
  del arg
  return [{"train.learning_rate": lr, "train.steps": s} for lr in (3e-4, 1e-3) for s in (1000, 2000)]
