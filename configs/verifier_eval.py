"""Accuracy vs N for majority vote, ORM / PRM best-of-N weighted and pass@N on held-out problems.

  python -m ttc_jax.main --config=configs/verifier_eval.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/verifier_eval.py:smoke --workdir=/tmp/smoke

Needs WORKDIR/samples/test (configs/samples.py:test), WORKDIR/prm and WORKDIR/orm
(configs/prm.py, configs/orm.py). Writes WORKDIR/eval/verifiers/{results.json,
scores.jsonl, accuracy_vs_n.png}.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke"), "configs/verifier_eval.py")
  c = ml_collections.ConfigDict()
  c.job = "eval_verifiers"
  c.seed = 0
  c.verifier_eval = ml_collections.ConfigDict()
  c.verifier_eval.samples = "samples/test"
  c.verifier_eval.prm = "prm"
  c.verifier_eval.orm = "orm"
  c.verifier_eval.prm_format = "ttc"  # Off-the-shelf PRMs: qwen_prm, math_shepherd, rlhflow, skywork (with prm=hf:DIR).
  c.verifier_eval.orm_format = "ttc"
  c.verifier_eval.out = "eval/verifiers"
  c.verifier_eval.num_subsets = 32
  c.verifier_eval.batch_size = 64
  c.verifier_eval.num_bins = 5  # Oracle difficulty bins of results.json's `ranking` (within-question AUROC).
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  if arg == "smoke":
    c.verifier_eval.update(num_subsets=4, batch_size=8)
  return c
