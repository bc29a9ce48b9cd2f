"""Train the revision ORM: correctness of the reviser's own attempts, each after its chain's previous attempts.

  python -m ttc_jax.main --config=configs/revision_eval.py:train --workdir=workdirs/demo   # its data
  python -m ttc_jax.main --config=configs/revision_orm.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/revision_orm.py:smoke --workdir=/tmp/smoke   # seconds on CPU
  python -m ttc_jax.main --config=configs/revision_orm.py:gpu --workdir=workdirs/gpu
  python -m ttc_jax.main --config=configs/revision_eval.py --workdir=workdirs/demo \
      --config.revision_eval.verifier=revision_orm                                      # selects with it

Reads WORKDIR/reviser (configs/reviser.py; the initialisation, so the model already
reads the revision prompt) and WORKDIR/revisions/chains_train (the reviser's chains on
training problems, configs/revision_eval.py:train). One example per attempt: the prompt
is the revision context it was sampled from (question + last <= 4 previous attempts of
its chain), exactly what eval_revisions scores it with; the target, at the last step's
newline, is the attempt's correctness. Writes WORKDIR/revision_orm (checkpoints,
train_summary.json, verifier_eval.json on the last 10% of problems, held out).
Arguments: "" (CPU default), "smoke" (tiny, for tests), "gpu". Override any field
with --config.<section>.<field>=value.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke", "gpu"), "configs/revision_orm.py")
  return config_defaults.verifier("revision_orm", arg)


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x steps ablation (launch/sweep.py expands it)."""
  del arg
  return [{"train.learning_rate": lr, "train.steps": s} for lr in (3e-4, 1e-3) for s in (250, 1000)]
