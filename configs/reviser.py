"""Train the revision model on revision trajectories, starting from the policy.

  python -m ttc_jax.main --config=configs/reviser.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/reviser.py:smoke --workdir=/tmp/smoke   # seconds on CPU
  python -m ttc_jax.main --config=configs/reviser.py:gpu --workdir=workdirs/gpu

Reads WORKDIR/policy (configs/policy.py) and WORKDIR/revisions/data
(configs/revision_data.py); writes WORKDIR/reviser like a policy stage, plus
reviser_eval.json: the loss on the trajectories of the last 10% of problems (never
trained on) of the reviser and of the policy, overall and by number of previous
attempts. The loss is next-token cross-entropy on the final (correct) attempt only.
Arguments: "" (CPU default), "smoke" (tiny, for tests), "gpu". Override any field with
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
  c.reviser.heldout_fraction = 0.1  # Last 10% of problems: reviser_eval.json, never trained on.
  c.reviser.eval_batch_size = 32
  # seq_len 576 fits every trajectory of the default task sampled with max_new_tokens=96:
  # at most 1 + 44 (question) + 4 x (5 + 96) (headers, attempts) + 96 (target) + 1 = 546
  # tokens. Longer ones (other tasks or samplers) are skipped and counted in train_summary.json.
  # About one pass over the data, at a fine-tuning learning rate: the first CPU run (300 steps at
  # 1e-3, about 3 epochs of 1,560 trajectories) reached loss 0.02, a first attempt worse than the
  # policy's and pass@1 falling with every revision (README, Results). 500 problems x 64 samples
  # give roughly 2-4k trajectories (targets are distinct correct texts, often one per problem,
  # x revision.per_correct=5), so 200 x 16 sequences is about one epoch. reviser_eval.json says
  # whether the reviser beats the policy on held-out problems; more steps only if it does.
  c.train = config_defaults.train(steps=200, batch_size=16, learning_rate=3e-4, warmup_steps=20,
                                  checkpoint_every=200, seq_len=576)
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.train.update(steps=6, batch_size=8, seq_len=384, warmup_steps=2, checkpoint_every=3, log_every=3)
    c.reviser.eval_batch_size = 8
  elif arg == "gpu":
    # One to two epochs of trajectories from 10x more problems (--config.sampling.num_problems=5000
    # when sampling them; then start the revision ORM's chains after them with
    # --config.revision_eval.first_problem=5000). With the 500-problem default use fewer steps.
    c.train.update(steps=400, batch_size=128, warmup_steps=40, checkpoint_every=200)
  return c


def sweep(arg: str | None = None) -> list[dict]:
  """Learning-rate x steps ablation (launch/sweep.py expands it); compare reviser_eval.json losses."""
  del arg
  return [{"train.learning_rate": lr, "train.steps": s} for lr in (3e-4, 1e-3) for s in (100, 200, 500)]
