"""The report: difficulty bins, compute-optimal selection, FLOPs-matched exchange, findings.

  python -m ttc_jax.main --config=configs/report.py --workdir=workdirs/demo

Needs WORKDIR/difficulty/difficulty.json (configs/difficulty.py) and WORKDIR/eval/search
(configs/search_eval.py); uses WORKDIR/eval/revisions (configs/revision_eval.py),
WORKDIR/policy/train_summary.json and WORKDIR/large_policy/{train_summary.json, eval.json}
(a larger policy evaluated greedily) and WORKDIR/eval/verifiers/results.json (configs/verifier_eval.py:
the verifiers' within-question ranking) when present. Writes WORKDIR/report/{results.json,
report.md, *.png}. Cheap: no model is loaded.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_defaults.check_arg(arg, ("", "smoke"), "configs/report.py")  # smoke: nothing to shrink.
  c = ml_collections.ConfigDict()
  c.job = "report"
  c.report = ml_collections.ConfigDict()
  c.report.difficulty = "difficulty/difficulty.json"
  c.report.search = "eval/search"
  c.report.revisions = "eval/revisions"
  c.report.policy = "policy"
  c.report.large_policy = "large_policy"
  c.report.verifiers = "eval/verifiers/results.json"  # Optional: the verifiers' within-question AUROC.
  c.report.out = "report"
  c.report.ratios = (0.16, 0.79, 22.0)  # R = D_inference / D_pretrain; k = M + 3 (M - 1) / R.
  c.report.small_gain = 0.05
  return c
