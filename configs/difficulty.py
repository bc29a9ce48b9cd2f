"""Oracle and predicted difficulty bins of the test questions, with the cost of estimating them.

  python -m ttc_jax.main --config=configs/difficulty.py --workdir=workdirs/demo

Needs WORKDIR/samples/difficulty (configs/samples.py:test with
--config.sampling.name=difficulty, n_d samples per question) and
WORKDIR/eval/verifiers/scores.jsonl (configs/verifier_eval.py with
--config.verifier_eval.samples=samples/difficulty). Writes WORKDIR/difficulty/difficulty.json.
Cheap: no model is loaded.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_defaults.check_arg(arg, ("", "smoke"), "configs/difficulty.py")  # smoke: nothing to shrink.
  c = ml_collections.ConfigDict()
  c.job = "difficulty"
  c.seed = 0  # Tie-breaking hash of the bins.
  c.difficulty = ml_collections.ConfigDict()
  c.difficulty.samples = "samples/difficulty"
  c.difficulty.scores = "eval/verifiers/scores.jsonl"
  c.difficulty.policy = "policy"
  c.difficulty.prm = ""  # "" = the `prm` of eval/verifiers/results.json (the verifier that wrote the scores).
  c.difficulty.prm_format = ""  # "" = the one eval_verifiers used (its results.json), else "ttc".
  c.difficulty.out = "difficulty"
  c.difficulty.num_bins = 5
  return c
