"""Train the process reward model (PRM) on step labels (Monte Carlo by default), starting from the policy.

  python -m ttc_jax.main --config=configs/prm.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/prm.py:smoke --workdir=/tmp/smoke   # seconds on CPU
  python -m ttc_jax.main --config=configs/prm.py:gpu --workdir=workdirs/gpu
  # Exact line labels of the same samples (arith only; no label_rollouts needed), into WORKDIR/prm_exact:
  python -m ttc_jax.main --config=configs/prm.py --workdir=workdirs/demo \
      --config.verifier.labels=exact --config.verifier.stage=prm_exact
  # PRM800K's human labels (local files from github.com/openai/prm800k, data/), prompted and delimited as the
  # benchmark tasks are (task prm800k: the same prompt and "\n\n" steps as math500):
  python -m ttc_jax.main --config=configs/prm.py --workdir=W --config.verifier.policy=hf:/models/P \
      --config.verifier.labels=prm800k --config.verifier.data=/data/prm800k/data --config.verifier.stage=prm800k \
      --config.task.name=prm800k --config.task.path=/data/prm800k/data --config.train.seq_len=1024

Reads WORKDIR/policy (configs/policy.py) and, by `verifier.labels`, WORKDIR/labels/train
(configs/labels.py; "rollouts"), WORKDIR/samples/train (configs/samples.py; "exact") or the
PRM800K files `verifier.data` names ("prm800k"; a neutral rating's target is
`verifier.prm800k_neutral`, 1.0 = correct); writes WORKDIR/prm (checkpoints, train_summary.json,
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
