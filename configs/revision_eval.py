"""Revision chains at every sequential:parallel split of each generation budget (the paper's ratio knob).

  python -m ttc_jax.main --config=configs/revision_eval.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/revision_eval.py:smoke --workdir=/tmp/smoke
  python -m ttc_jax.main --config=configs/revision_eval.py --workdir=workdirs/demo --config.revision_eval.verifier=orm

Needs WORKDIR/reviser (configs/reviser.py) and, when revision_eval.verifier is set, that
verifier stage (scoring each attempt with its revision context). Writes
WORKDIR/eval/revisions/P<P>xL<L>/ (per-problem records, resumable shards) and
WORKDIR/eval/revisions/{results.json, pass_at_step.png, accuracy_vs_budget_<method>.png}.
Splits: every N = P x L in `budgets` with P a power of 2, or the chain counts in `parallel`.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke"), "configs/revision_eval.py")
  c = ml_collections.ConfigDict()
  c.job = "eval_revisions"
  c.seed = 7
  c.task = config_defaults.task(smoke=arg == "smoke")
  c.revision_eval = ml_collections.ConfigDict()
  c.revision_eval.reviser = "reviser"
  c.revision_eval.verifier = ""  # "" = majority-vote selections only
  c.revision_eval.out = "eval/revisions"
  c.revision_eval.split = "test"
  c.revision_eval.num_problems = 100
  c.revision_eval.budgets = (4, 16)
  c.revision_eval.parallel = ()  # () = every power of 2 dividing the budget
  c.revision_eval.max_context = 4
  c.revision_eval.temperature = 1.0
  c.revision_eval.top_p = 1.0
  c.revision_eval.max_new_tokens = 96
  c.revision_eval.problems_per_shard = 25
  c.revision_eval.batch_size = 64
  c.revision_eval.verifier_batch_size = 64
  c.revision_eval.grader = "exact"
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.revision_eval.update(num_problems=4, budgets=(2, 4), max_new_tokens=32, problems_per_shard=2, batch_size=8,
                           verifier_batch_size=8)
  return c
