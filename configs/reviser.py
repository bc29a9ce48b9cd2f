"""Train the revision model on revision trajectories, starting from the policy.

  python -m ttc_jax.main --config=configs/reviser.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/reviser.py:smoke --workdir=/tmp/smoke   # seconds on CPU
  python -m ttc_jax.main --config=configs/reviser.py:gpu --workdir=workdirs/gpu

Reads WORKDIR/policy (configs/policy.py) and WORKDIR/revisions/data
(configs/revision_data.py); writes WORKDIR/reviser like a policy stage, plus
reviser_eval.json: the loss on the trajectories of the last 10% of problems (never
trained on) of the reviser and of the policy, overall and by number of previous
attempts (next-token cross-entropy on the final, correct attempt only), and the gate:
the first-attempt pass@1 of both on 100 validation problems (4 samples each) with a
paired 95% bootstrap interval of the difference, which eval_revisions and the report
carry. Training stops after reviser.epochs (1) pass over the examples if that comes
before train.steps. Arguments: "" (CPU default), "smoke" (tiny, for tests), "gpu".
Override any field with --config.<section>.<field>=value.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke", "gpu"), "configs/reviser.py")
  c = ml_collections.ConfigDict()
  c.job = "train_reviser"
  c.seed = 6
  c.task = config_defaults.task(smoke=arg == "smoke")  # The check problems and their grader.
  c.reviser = ml_collections.ConfigDict()
  c.reviser.policy = "policy"
  c.reviser.data = "revisions/data"
  c.reviser.stage = "reviser"
  c.reviser.heldout_fraction = 0.1  # Last 10% of problems: reviser_eval.json, never trained on.
  c.reviser.eval_batch_size = 32
  c.reviser.epochs = 1.0  # At most one pass over the examples: train.steps is a cap.
  # The first-attempt gate: reviser vs policy pass@1 from the question alone on problems neither trained on.
  c.reviser.check_split = "validation"
  c.reviser.check_problems = 100
  c.reviser.check_samples = 4
  c.reviser.check_temperature = 1.0
  c.reviser.check_max_new_tokens = 96
  c.reviser.check_batch_size = 64
  # seq_len 576 fits every trajectory of the default task sampled with max_new_tokens=96:
  # at most 1 + 44 (question) + 4 x (5 + 96) (headers, attempts) + 96 (target) + 1 = 546
  # tokens. Longer ones (other tasks or samplers) are skipped and counted in train_summary.json.
  # At most one pass over the data (reviser.epochs) at a fine-tuning learning rate: the first CPU run
  # (300 steps at 1e-3, about 3 epochs of 1,560 trajectories) reached loss 0.02, a first attempt worse
  # than the policy's and pass@1 falling with every revision (README, Results). train.steps is the cap
  # for larger datasets; reviser_eval.json says whether the reviser's first attempt keeps up with the
  # policy's.
  c.train = config_defaults.train(steps=200, batch_size=16, learning_rate=3e-4, warmup_steps=20,
                                  checkpoint_every=200, seq_len=576)
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.train.update(steps=6, batch_size=8, seq_len=384, warmup_steps=2, checkpoint_every=3, log_every=3)
    c.reviser.eval_batch_size = 8
    c.reviser.update(check_problems=12, check_samples=2, check_max_new_tokens=32, check_batch_size=8)
  elif arg == "gpu":
    # A cap: one epoch of trajectories from 10x more problems (--config.sampling.num_problems=5000
    # when sampling them; then start the revision ORM's chains after them with
    # --config.revision_eval.first_problem=5000) is about this; fewer problems train fewer steps.
    c.train.update(steps=400, batch_size=128, warmup_steps=40, checkpoint_every=200)
    c.reviser.update(check_problems=500, check_samples=8, check_batch_size=512)
  return c


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x epochs ablation (launch/sweep.py expands it); compare reviser_eval.json's losses and gate."""
  del arg
  return [{"train.learning_rate": lr, "reviser.epochs": e} for lr in (3e-4, 1e-3) for e in (0.25, 0.5, 1.0)]
