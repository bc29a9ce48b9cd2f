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
  return config_defaults.verifier("prm", arg)


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x steps ablation (launch/sweep.py expands it)."""
  del arg
  return [{"train.learning_rate": lr, "train.steps": s} for lr in (3e-4, 1e-3) for s in (1000, 2000)]
