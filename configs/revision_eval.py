"""Revision chains at every sequential:parallel split of each generation budget (the paper's ratio knob).

  python -m ttc_jax.main --config=configs/revision_eval.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/revision_eval.py:smoke --workdir=/tmp/smoke
  python -m ttc_jax.main --config=configs/revision_eval.py --workdir=workdirs/demo \
      --config.revision_eval.verifier=revision_orm   # select with the revision ORM (configs/revision_orm.py)
  python -m ttc_jax.main --config=configs/revision_eval.py --workdir=workdirs/demo \
      --config.revision_eval.verifier=hf:/models/Qwen2.5-Math-PRM-7B \
      --config.revision_eval.verifier_format=qwen_prm   # an off-the-shelf PRM scores each attempt alone
  python -m ttc_jax.main --config=configs/revision_eval.py:train --workdir=workdirs/demo   # revision ORM data

Needs WORKDIR/reviser (configs/reviser.py) and, when revision_eval.verifier is set, that
verifier stage, which scores each attempt after its revision context: `revision_orm`
(trained on the reviser's own chains, as the paper does) or `orm` (the policy's ORM,
which never saw a revision prompt). With revision_eval.verifier_format set to an
off-the-shelf PRM's format (verifier = hf:DIR or a stage) each attempt is scored as a
stand-alone solution to the question, steps split at the task's delimiter, by its last-step
score. Writes WORKDIR/eval/revisions/P<P>xL<L>/ (per-problem records, resumable shards) and
WORKDIR/eval/revisions/{results.json, pass_at_step.png, accuracy_vs_budget_<method>.png}.
Splits: every N = P x L in `budgets` with P a power of 2, or the chain counts in `parallel`.

Arguments: "" (test problems), "smoke", "train" (the revision ORM's training data: one chain
of 8 revisions per training problem, no verifier, to WORKDIR/revisions/chains_train),
"train_smoke".
"""
import ml_collections

from ttc_jax import config_defaults

# configs/samples.py samples the first 500 training problems (the revision trajectories and the
# ORM / PRM data come from them); the revision ORM's chains start after them, so the ORM learns
# the reviser's attempts on questions it was not trained on, as at test time.
_TRAIN_FIRST_PROBLEM = 500


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke", "train", "train_smoke"), "configs/revision_eval.py")
  smoke = arg in ("smoke", "train_smoke")
  c = ml_collections.ConfigDict()
  c.job = "eval_revisions"
  c.seed = 7
  c.task = config_defaults.task(smoke=smoke)
  c.revision_eval = ml_collections.ConfigDict()
  c.revision_eval.reviser = "reviser"
  c.revision_eval.verifier = ""  # "" = majority-vote selections only; "revision_orm" or "orm" adds weighted ones
  # verify.formats: "ttc" (this project's verifiers, attempts in their revision context) or an off-the-shelf
  # PRM's (qwen_prm, math_shepherd, rlhflow, skywork; verifier=hf:DIR): each attempt alone after the question.
  c.revision_eval.verifier_format = "ttc"
  c.revision_eval.out = "eval/revisions"
  c.revision_eval.split = "test"
  c.revision_eval.num_problems = 100
  c.revision_eval.first_problem = 0  # Problems [first_problem, first_problem + num_problems) of the split.
  c.revision_eval.budgets = (4, 16)
  c.revision_eval.parallel = ()  # () = every power of 2 dividing the budget
  c.revision_eval.max_context = 4
  c.revision_eval.temperature = 1.0
  c.revision_eval.top_p = 1.0
  c.revision_eval.max_new_tokens = 96
  c.revision_eval.problems_per_shard = 25
  c.revision_eval.batch_size = 64
  c.revision_eval.verifier_batch_size = 64
  c.revision_eval.shared_prefix = True  # A question's chains read one stored copy of it; False: a copy each.
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg in ("train", "train_smoke"):
    # One chain of 8 revisions per problem: 8 ORM examples, each attempt in its context. 8 and not
    # 2 x 4: test chains run to 16 revisions, so the ORM must see the full 4-attempt context (t >= 4)
    # and attempts deep in a chain, not only 0-3 previous attempts.
    c.revision_eval.update(out="revisions/chains_train", split="train", num_problems=250,
                           first_problem=_TRAIN_FIRST_PROBLEM, budgets=(8,), parallel=(1,), problems_per_shard=50)
  if arg == "smoke":
    c.revision_eval.update(num_problems=4, budgets=(2, 4), max_new_tokens=32, problems_per_shard=2, batch_size=8,
                           verifier_batch_size=8)
  elif arg == "train_smoke":
    # After configs/samples.py:smoke's 12 problems; one chain of 4 revisions of 32 tokens.
    c.revision_eval.update(num_problems=4, first_problem=12, budgets=(4,), max_new_tokens=32, problems_per_shard=2,
                           batch_size=8, verifier_batch_size=8)
  return c
