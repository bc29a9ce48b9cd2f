"""Jobs: thin modules that wire a config to library calls. `config.job` picks one."""
import importlib

# Job name -> module with `run(config, workdir)`. Imported lazily: a job pays only for what it uses.
JOBS = {
    "train_policy": "ttc_jax.jobs.train_policy",
    "export": "ttc_jax.jobs.export",
    "import_hf": "ttc_jax.jobs.import_hf",
    "export_hf": "ttc_jax.jobs.export_hf",
    "sample_solutions": "ttc_jax.jobs.sample_solutions",
    "label_rollouts": "ttc_jax.jobs.label_rollouts",
    "eval_verifiers": "ttc_jax.jobs.eval_verifiers",
    "eval_search": "ttc_jax.jobs.eval_search",
    "train_verifier": "ttc_jax.jobs.train_verifier",
    "revision_data": "ttc_jax.jobs.revision_data",
    "train_reviser": "ttc_jax.jobs.train_reviser",
    "eval_revisions": "ttc_jax.jobs.eval_revisions",
    "difficulty": "ttc_jax.jobs.difficulty",
    "report": "ttc_jax.jobs.report",
    "pipeline": "ttc_jax.jobs.pipeline",
}


def get_job(name: str):
  if name not in JOBS:
    raise ValueError(f"Unknown job config.job={name!r}; known jobs: {', '.join(sorted(JOBS))}")
  return importlib.import_module(JOBS[name]).run
