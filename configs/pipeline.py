"""The whole chain in one workdir: policies, verifiers, reviser, search and revision evaluation, report.

  python -m ttc_jax.main --config=configs/pipeline.py --workdir=workdirs/demo        # `make demo`
  python -m ttc_jax.main --config=configs/pipeline.py:gpu --workdir=workdirs/gpu     # one H100-class GPU
  python -m ttc_jax.main --config=configs/pipeline.py:smoke --workdir=/tmp/smoke     # tests
  python -m ttc_jax.main --config=configs/pipeline.py:countdown --workdir=workdirs/countdown  # countdown task

Each stage is the config of its own job (configs/<file>.py, see STAGE_FILES) with the
pipeline's sizes applied, under `stages.<name>`; override any field with
--config.stages.<name>.<section>.<field>=value. `task`, `mesh` and `distributed` are set
once here and apply to every stage. Re-running skips finished stages and resumes the
interrupted one (ttc_jax/jobs/pipeline.py). `pipeline.only` runs a subset;
`pipeline.time_limit_s` stops before starting a stage after that many seconds.
The PRM's step labels are Monte Carlo (`labels` stage); --config.stages.prm.verifier.labels=exact
trains it on arith's exact line labels of the same samples instead (README "PRM label sources").

Arguments:
  ""     CPU quickstart, sized for `make demo` (about 12 minutes on 2 cores, set-up
         included): an easier task (2-digit values, at most 4 operations) so a 0.16M-parameter
         policy learns it in 600 steps; the larger policy is only 2.65x larger (M is measured
         from parameter counts and stated in the report), 100 test problems.
  "gpu"  one H100-class GPU (about 15 minutes of stages on an H200; with --config.pipeline.time_limit_s=300
         it stops between stages to fit runs of <= 10 minutes): the default task, a 3.2M policy
         and a 13.9x larger one, PRM and ORM fine-tuned from the larger one, 1,000 test problems.
  "smoke" tiny, for tests (seconds per stage; results meaningless).
  "countdown", "countdown_gpu", "countdown_smoke": the same sizes on the countdown task (tasks/countdown.py:
         reach a target from 2-4 numbers 1..9 with + - *, many correct solutions; smoke: 2-3 numbers 1..5).
         Change its difficulty with --config.task.generator.<field> (README "Built-in task and data").
"""
import importlib.util
import os

import ml_collections

from ttc_jax import config_defaults

_HERE = os.path.dirname(os.path.abspath(__file__))

# Stage -> the config file in configs/ its job config starts from.
STAGE_FILES = {
    "policy": "policy",
    "large_policy": "policy",
    "samples_train": "samples",
    "labels": "labels",
    "prm": "prm",
    "orm": "orm",
    "samples_revision": "samples",
    "revision_data": "revision_data",
    "reviser": "reviser",
    "revision_chains": "revision_eval",
    "revision_orm": "revision_orm",
    "samples_difficulty": "samples",
    "verifier_eval": "verifier_eval",
    "difficulty": "difficulty",
    "search_eval": "search_eval",
    "revision_eval": "revision_eval",
    "report": "report",
}
_STAGE_ARGS = {  # Argument passed to the stage's config file, per pipeline argument, where not the same.
    "samples_difficulty": {"": "test", "gpu": "test", "smoke": "smoke"},
    "revision_chains": {"": "train", "gpu": "train", "smoke": "train_smoke"},
}
_GPU_ARG_FILES = {"policy", "prm", "orm", "reviser", "revision_orm"}  # Files that take "gpu".


def _load(file: str, arg: str) -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location(f"{file}_config", os.path.join(_HERE, f"{file}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _stage_config(name: str, arg: str) -> ml_collections.ConfigDict:
  file = STAGE_FILES[name]
  if name in _STAGE_ARGS:
    stage_arg = _STAGE_ARGS[name][arg]
  elif arg == "gpu":
    stage_arg = "gpu" if file in _GPU_ARG_FILES else ""
  else:
    stage_arg = arg
  c = _load(file, stage_arg)
  for section in ("task", "mesh", "distributed"):  # The pipeline's own sections replace these.
    if section in c:
      del c[section]
  return c


def _set(c: ml_collections.ConfigDict, overrides: dict) -> None:
  for dotted, value in overrides.items():
    *path, field = dotted.split(".")
    section = c
    for part in path:
      section = section[part]
    section[field] = value


# Sizes per argument: stage -> {dotted field: value}. Everything not named keeps its config file's default.
def _sizes(arg: str) -> dict:
  smoke = arg == "smoke"
  n_test = {"": 100, "gpu": 1000, "smoke": 8}[arg]  # The same first test problems in every evaluation stage.
  sizes = {
      "policy": {"eval.num_problems": n_test},
      "large_policy": {"stage": "large_policy", "eval.temperature": 0.0, "eval.samples_per_problem": 1,
                       "eval.num_problems": n_test},
      "samples_train": {},
      "labels": {},
      "prm": {},
      "orm": {},
      "samples_revision": {"sampling.name": "revision_train", "sampling.samples_per_problem": 4 if smoke else 64},
      "revision_data": {"revision.samples": "samples/revision_train"},
      "reviser": {},
      "revision_chains": {},
      "revision_orm": {},
      "samples_difficulty": {"sampling.name": "difficulty", "sampling.split": "test", "sampling.num_problems": n_test,
                             "sampling.samples_per_problem": 4 if smoke else 64},
      "verifier_eval": {"verifier_eval.samples": "samples/difficulty"},
      "difficulty": {},
      "search_eval": {"search_eval.num_problems": n_test},
      "revision_eval": {"revision_eval.num_problems": n_test, "revision_eval.verifier": "revision_orm"},
      "report": {},
  }
  if smoke:  # Enough training that the tiny policy solves the tiny task sometimes (revisions need both).
    for policy in ("policy", "large_policy"):
      sizes[policy].update({"train.steps": 300, "train.checkpoint_every": 300, "train.learning_rate": 1e-2})
    sizes["large_policy"]["model.d_model"] = 48
    sizes["samples_revision"].update({"sampling.num_problems": 32, "sampling.samples_per_problem": 8})
  elif arg == "":
    _cpu_quickstart(sizes)
  else:
    _gpu_scale(sizes)
  return sizes


def _gpu_scale(sizes: dict) -> None:
  """One H100-class GPU: the default task, a few-million-parameter policy and a ~14x larger one."""
  # Both policies: the same data, steps, batch and sequence length (the same training tokens). 500 steps leave
  # room for test-time compute (H200 run: pass@1 0.59, large greedy 0.79); at 2,500 both reached 0.97-0.98.
  # Training is host-bound on an H100 (grain input, 65-105 ms a step for either model).
  train = {"train.steps": 500, "train.batch_size": 128, "train.seq_len": 128, "train.learning_rate": 1e-3,
           "train.warmup_steps": 50, "train.checkpoint_every": 250, "train.log_every": 100}
  sizes["policy"].update({"model.d_model": 256, "model.n_layers": 4, "model.n_heads": 4, "model.n_kv_heads": 2,
                          "model.d_ff": 768, **train, "eval.samples_per_problem": 16, "eval.batch_size": 64})
  sizes["large_policy"].update({"model.d_model": 640, "model.n_layers": 9, "model.n_heads": 10,
                                "model.n_kv_heads": 5, "model.d_ff": 1920, **train, "eval.batch_size": 256})
  # PRM / ORM data: 4,000 training questions x 6 samples (~24,000 solutions); labels from 16 rollouts per step
  # prefix (the paper's). Both verifiers start from the large policy (a generator-verifier gap: 13.9x the
  # policy's parameters) and fine-tune at 3e-4 for 600 steps (~3 epochs): the 3.2M-policy initialisation at
  # 1e-3 had a held-out loss flat from step 50 and ranked one question's samples barely above chance.
  sizes["samples_train"].update({"sampling.num_problems": 4000, "sampling.samples_per_problem": 6,
                                 "sampling.problems_per_shard": 500, "sampling.batch_size": 256})
  sizes["labels"].update({"labels.rollouts": 16, "labels.problems_per_shard": 250, "labels.batch_size": 128})
  for verifier in ("prm", "orm"):
    sizes[verifier].update({"verifier.policy": "large_policy", "train.steps": 600, "train.batch_size": 128,
                            "train.learning_rate": 3e-4, "train.warmup_steps": 60, "train.checkpoint_every": 300,
                            "verifier.eval_batch_size": 256})
  # Revision data: 64 samples for each of 3,000 training questions (the paper samples 64), about 3 trajectories
  # per problem with a correct sample; the reviser trains one epoch of them (reviser.epochs), at most 300 steps.
  sizes["samples_revision"].update({"sampling.num_problems": 3000, "sampling.problems_per_shard": 750,
                                    "sampling.batch_size": 64})
  sizes["reviser"].update({"train.steps": 300, "train.batch_size": 64, "train.warmup_steps": 30,
                           "train.checkpoint_every": 300, "reviser.eval_batch_size": 128})
  # The revision ORM's chains: training questions after the 3,000 sampled above (never seen by the reviser).
  sizes["revision_chains"].update({"revision_eval.num_problems": 1000, "revision_eval.first_problem": 3000,
                                   "revision_eval.problems_per_shard": 1000, "revision_eval.batch_size": 1024,
                                   "revision_eval.verifier_batch_size": 1024})
  sizes["revision_orm"].update({"train.steps": 250, "train.batch_size": 64, "train.warmup_steps": 25,
                                "train.checkpoint_every": 250, "verifier.eval_batch_size": 128})
  sizes["samples_difficulty"].update({"sampling.problems_per_shard": 125, "sampling.batch_size": 64})
  sizes["verifier_eval"].update({"verifier_eval.batch_size": 512})
  # Every row of a search batch writes each round's step at the same cache slots, so a round uses the longest
  # step of the batch (up to max_step_tokens = 24); 6 x 24 slots guarantee the 6 rounds of a 5-operation solution.
  sizes["search_eval"].update({"search_eval.budgets": (1, 4, 16, 64), "search_eval.problems_per_shard": 125,
                               "search_eval.batch_size": 64, "search_eval.max_solution_tokens": 144,
                               "search_eval.strategies": ("best_of_n", "beam:4", "beam:sqrt", "lookahead:4:1",
                                                          "dvts:4")})
  # One shard per P x L split: a split's L sequential steps each sample all 500 x P chains at once.
  sizes["revision_eval"].update({"revision_eval.budgets": (4, 16, 64), "revision_eval.problems_per_shard": 500,
                                 "revision_eval.batch_size": 1024, "revision_eval.verifier_batch_size": 1024})


def _cpu_quickstart(sizes: dict) -> None:
  """`make demo`: every stage shrunk to fit about 11.5 minutes of 2 CPU cores (timings in README)."""
  tokens = 64  # Longest solution: the quickstart task's solutions are at most 4 short steps.
  sizes["policy"].update({"model.d_model": 64, "model.n_layers": 3, "model.d_ff": 192, "train.steps": 600,
                          "train.warmup_steps": 40, "train.checkpoint_every": 300, "train.log_every": 100,
                          "train.seq_len": 96, "eval.samples_per_problem": 8, "eval.max_new_tokens": tokens})
  # Same data, steps, batch and sequence length as the policy: the same training tokens.
  sizes["large_policy"].update({k: v for k, v in sizes["policy"].items() if k.startswith("train.")})
  sizes["large_policy"].update({"model.d_model": 96, "model.n_layers": 4, "model.d_ff": 256,
                                "eval.max_new_tokens": tokens})
  sizes["samples_train"].update({"sampling.num_problems": 300, "sampling.samples_per_problem": 4,
                                 "sampling.max_new_tokens": tokens, "sampling.batch_size": 32})
  sizes["labels"].update({"labels.rollouts": 4, "labels.max_new_tokens": tokens, "labels.batch_size": 32})
  for verifier in ("prm", "orm"):  # ~1,200 solutions: about 4 epochs.
    sizes[verifier].update({"train.steps": 150, "train.warmup_steps": 15, "train.checkpoint_every": 150,
                            "train.seq_len": 96})
  # Problems [0, 500): the revision ORM's chains start at 500. About 3 trajectories per problem with a correct
  # sample, a third of them k = 0.
  sizes["samples_revision"].update({"sampling.num_problems": 500, "sampling.samples_per_problem": 16,
                                    "sampling.max_new_tokens": tokens, "sampling.batch_size": 16})
  # Question + 4 previous attempts + the new one: the longest quickstart trajectory was 318 tokens
  # (longer ones are skipped and counted in train_summary.json). One epoch (reviser.epochs), at most 150 steps;
  # then the first-attempt gate on the 100 validation problems.
  sizes["reviser"].update({"train.steps": 150, "train.warmup_steps": 15, "train.checkpoint_every": 150,
                           "train.seq_len": 320, "reviser.check_max_new_tokens": tokens})
  sizes["revision_chains"].update({"revision_eval.num_problems": 100, "revision_eval.max_new_tokens": tokens})
  sizes["revision_orm"].update({"train.steps": 100, "train.batch_size": 16, "train.warmup_steps": 10,
                                "train.checkpoint_every": 100, "train.seq_len": 320})
  sizes["samples_difficulty"].update({"sampling.samples_per_problem": 16, "sampling.max_new_tokens": tokens,
                                      "sampling.batch_size": 16})
  sizes["search_eval"].update({"search_eval.budgets": (1, 4, 16), "search_eval.max_step_tokens": 16,
                               "search_eval.max_solution_tokens": 5 * 16,
                               "search_eval.strategies": ("best_of_n", "beam:4", "beam:sqrt", "lookahead:4:1",
                                                          "dvts:4")})
  # All-sequential, balanced and all-parallel splits (N = 4: 1x4, 4x1; N = 16: 1x16, 4x4, 16x1).
  sizes["revision_eval"].update({"revision_eval.budgets": (4, 16), "revision_eval.parallel": (1, 4, 16),
                                 "revision_eval.max_new_tokens": tokens})


_QUICKSTART_SECONDS = {"policy": 105, "large_policy": 166, "samples_train": 4, "labels": 26, "prm": 25, "orm": 25,
                       "samples_revision": 5, "revision_data": 1, "reviser": 68, "revision_chains": 30,
                       "revision_orm": 46, "samples_difficulty": 3, "verifier_eval": 3, "difficulty": 1,
                       "search_eval": 59, "revision_eval": 124, "report": 1}

_GPU_SECONDS = {"policy": 87, "large_policy": 57, "samples_train": 9, "labels": 86, "prm": 41, "orm": 29,
                "samples_revision": 19, "revision_data": 2, "reviser": 33, "revision_chains": 23, "revision_orm": 23,
                "samples_difficulty": 5, "verifier_eval": 21, "difficulty": 2, "search_eval": 225,
                "revision_eval": 233, "report": 9}


def _quickstart_task(task: ml_collections.ConfigDict) -> None:
  """Two-digit values and at most 4 operations: learnable by a 0.16M policy in 600 steps on a CPU."""
  task.train_size, task.validation_size, task.test_size = 5000, 100, 200
  task.generator.max_steps = 4
  task.generator.max_value = 99
  task.generator.operand_maxes = (9, 20)
  task.generator.operand_max_weights = (0.5, 0.5)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = config_defaults.check_arg(arg, ("", "gpu", "smoke", "countdown", "countdown_gpu", "countdown_smoke"),
                                  "configs/pipeline.py")
  countdown = arg.startswith("countdown")
  arg = arg.removeprefix("countdown").removeprefix("_")  # The sizes: "", "gpu" or "smoke".
  c = ml_collections.ConfigDict()
  c.job = "pipeline"
  c.task = config_defaults.task(smoke=arg == "smoke")
  if countdown:
    config_defaults.countdown_task(c.task, smoke=arg == "smoke")
    if arg == "":
      c.task.train_size, c.task.validation_size, c.task.test_size = 5000, 100, 200
    elif arg == "gpu":
      c.task.train_size, c.task.test_size = 100_000, 1000
  elif arg == "":
    _quickstart_task(c.task)
  elif arg == "gpu":  # The policies' 500 steps x 128 sequences see 64,000 of these 100,000 questions, each once.
    c.task.train_size, c.task.test_size = 100_000, 1000
  elif arg == "smoke":
    c.task.generator.max_steps = 2
    c.task.generator.max_value = 40
    c.task.generator.operand_maxes = (9,)
    c.task.generator.operand_max_weights = (1.0,)
    c.task.generator.op_sets = ("+",)
    c.task.generator.op_set_weights = (1.0,)
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  c.pipeline = ml_collections.ConfigDict()
  c.pipeline.only = ()
  c.pipeline.time_limit_s = 0.0
  # Seconds per stage for the console's ETA: measured on the 2-core CPU machine and on one H200.
  c.pipeline.expected_s = ml_collections.ConfigDict({"": _QUICKSTART_SECONDS, "gpu": _GPU_SECONDS}.get(arg, {}))
  c.stages = ml_collections.ConfigDict()
  for name, overrides in _sizes(arg).items():
    stage = _stage_config(name, arg)
    _set(stage, overrides)
    c.stages[name] = stage
  return c
