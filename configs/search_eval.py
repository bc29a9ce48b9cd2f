"""Accuracy vs generation budget for best-of-N, beam search (M = 4 and sqrt(N)), lookahead (k = 1, 3) and DVTS.

  python -m ttc_jax.main --config=configs/search_eval.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/search_eval.py:smoke --workdir=/tmp/smoke

Needs WORKDIR/policy and WORKDIR/prm. Writes WORKDIR/eval/search/<strategy>/N<budget>/
(per-problem records, resumable shards) and WORKDIR/eval/search/{results.json,
accuracy_vs_budget.png}. Strategies are strings: best_of_n, beam:M, beam:sqrt,
lookahead:M:k, dvts:M (ttc_jax/search/strategies.py).
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke"), "configs/search_eval.py")
  c = ml_collections.ConfigDict()
  c.job = "eval_search"
  c.seed = 5
  c.task = config_defaults.task(smoke=arg == "smoke")
  c.search_eval = ml_collections.ConfigDict()
  c.search_eval.policy = "policy"
  c.search_eval.prm = "prm"
  c.search_eval.prm_format = "ttc"  # Off-the-shelf PRMs: qwen_prm, math_shepherd, rlhflow, skywork (with prm=hf:DIR).
  c.search_eval.verifier_feed = "auto"  # auto / device / host (README "Off-the-shelf verifiers").
  c.search_eval.out = "eval/search"
  c.search_eval.split = "test"
  c.search_eval.num_problems = 100
  c.search_eval.budgets = (1, 4, 16)
  c.search_eval.strategies = ("best_of_n", "beam:4", "beam:sqrt", "lookahead:4:1", "lookahead:4:3", "dvts:4")
  c.search_eval.max_rounds = 40
  c.search_eval.max_step_tokens = 24
  # Each round advances the shared cache by up to max_step_tokens: 6 x 24 leaves room for the default
  # task's longest solution (5 steps + the answer line); 96 cut some 5-step searches short.
  c.search_eval.max_solution_tokens = 144
  c.search_eval.temperature = 1.0
  c.search_eval.problems_per_shard = 25
  c.search_eval.batch_size = 25
  c.search_eval.shared_prefix = True  # A problem's candidates share one stored copy of its prompt; False: N copies.
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.search_eval.update(num_problems=4, budgets=(1, 4), strategies=("best_of_n", "beam:2", "lookahead:2:1", "dvts:2"),
                         max_step_tokens=12, max_solution_tokens=48, problems_per_shard=2, batch_size=2)
  return c
