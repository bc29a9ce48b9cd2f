"""MATH-500 with a given policy and an off-the-shelf PRM: the paper's chain without training.

  python -m ttc_jax.main --config=configs/experiments/math500.py --workdir=workdirs/math500 \
      --config.experiment.policy=hf:/models/Llama-3.2-1B-Instruct \
      --config.experiment.prm=hf:/models/Qwen2.5-Math-PRM-7B --config.experiment.prm_format=qwen_prm \
      --config.experiment.data=/data/MATH-500/test.jsonl

Runs the pipeline's stages that need no training (`pipeline.only`): samples_difficulty (n
samples per question, graded with math-verify) -> verifier_eval (PRM accuracy vs N) ->
difficulty (oracle, predicted and MATH-level bins) -> search_eval (every strategy at every
budget, on the device) -> report (its revision and FLOPs-exchange sections say why they are
absent). `experiment.*` is set once and read by every stage; any stage field can still be
overridden with --config.stages.<stage>.<section>.<field>=value. Re-running resumes.

Arguments:
  ""      one GPU: 500 problems, 16 samples each, budgets 4..256, solutions up to 2,048 tokens.
  "smoke" tests: 3 fixture problems, tiny budgets (give tiny models as experiment.policy / prm).
"""
import importlib.util
import os

import ml_collections

from ttc_jax import config_defaults

_CONFIGS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("samples_difficulty", "verifier_eval", "difficulty", "search_eval", "report")


def _pipeline(arg: str) -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location("pipeline_config", os.path.join(_CONFIGS, "pipeline.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "smoke"), "configs/experiments/math500.py")
  smoke = arg == "smoke"
  c = _pipeline("smoke" if smoke else "gpu")
  # Shared values: each stage field below holds a reference to one of these, so setting
  # --config.experiment.policy=... changes every stage that reads the policy.
  e = c.experiment = ml_collections.ConfigDict()
  e.policy = ml_collections.FieldReference("", field_type=str)
  e.prm = ml_collections.FieldReference("", field_type=str)
  e.prm_format = ml_collections.FieldReference("ttc", field_type=str)
  e.data = ml_collections.FieldReference("", field_type=str)
  e.num_problems = ml_collections.FieldReference(3 if smoke else 500, field_type=int)
  ref = e.get_ref  # Attribute access would copy the value; the stages must hold the reference.

  c.pipeline.only = STAGES
  c.pipeline.expected_s = ml_collections.ConfigDict({})
  c.task = config_defaults.task()
  c.task.name = "math500"
  c.task.path = ref('data')
  c.task.prompt = "chat"

  s = c.stages
  s.samples_difficulty.sampling.update(policy=ref('policy'), num_problems=ref('num_problems'),
                                       samples_per_problem=4 if smoke else 16,
                                       max_new_tokens=32 if smoke else 2048, temperature=0.8,
                                       problems_per_shard=3 if smoke else 50, batch_size=3 if smoke else 32)
  s.verifier_eval.verifier_eval.update(prm=ref('prm'), orm=ref('prm'), prm_format=ref('prm_format'), orm_format=ref('prm_format'),
                                       batch_size=8 if smoke else 64)
  s.difficulty.difficulty.update(policy=ref('policy'), num_bins=1 if smoke else 5)
  s.search_eval.search_eval.update(
      policy=ref('policy'), prm=ref('prm'), prm_format=ref('prm_format'), num_problems=ref('num_problems'), temperature=0.8,
      budgets=(2,) if smoke else (4, 16, 64, 256), strategies=("best_of_n", "beam:2") if smoke else
      ("best_of_n", "beam:4", "beam:sqrt", "lookahead:4:1", "dvts:4"),
      max_step_tokens=8 if smoke else 256, max_solution_tokens=32 if smoke else 2048, max_rounds=4 if smoke else 40,
      problems_per_shard=3 if smoke else 25, batch_size=3, rows_per_call=0 if smoke else 64)
  return c
