"""Job `pipeline`: the whole chain, stage after stage, in one workdir.

`config.stages.<name>` is a complete job config (built from that job's own config
file by configs/pipeline.py); `config.task`, `config.mesh` and `config.distributed`
are set once and replace those sections in every stage, so all stages see the same
problems and devices. Stages run in the order of `STAGE_ORDER`, in this process.

Resuming: a finished stage is recorded in WORKDIR/pipeline/status.json with a hash
of its config and the files it wrote. A re-run skips the leading stages recorded with
their current config whose files are all still there (sharded artifacts also with the
record counts and digests of their manifest); from the first other one (interrupted,
never run, with a changed config, or with an output deleted or damaged) every stage
runs again, and each job resumes or skips whatever of its own work it finished
before (checkpoints, shards, results files). Jobs judge "finished" by their outputs,
not by their inputs' freshness: after changing a finished stage's config, delete its
outputs and those of the stages after it to recompute them.

Progress: one line per stage start and end with the elapsed time and an ETA from
`pipeline.expected_s` (seconds per stage on the machine the config was sized for),
rescaled by how fast the stages run so far compared with those estimates.
`pipeline.time_limit_s` stops before starting a stage once that much time has
passed (for machines lent in short slices: re-run to go on).
"""
import dataclasses
import hashlib
import importlib
import json
import os
import time

import ml_collections
from absl import logging

from ttc_jax import config_parsing, shards, storage
from ttc_jax.jobs import JOBS, get_job
from ttc_jax.provenance import git_commit, read_json, write_json
from ttc_jax.train.metrics import format_seconds

# `experiment`: values an experiment config shares between its stages (FieldReferences the stage
# fields point to, configs/experiments/); already resolved into the stages, the pipeline reads none.
SECTIONS = {"job", "pipeline", "task", "mesh", "distributed", "stages", "experiment"}
_SHARED_SECTIONS = ("task", "mesh", "distributed")

# The chain, in dependency order (each stage reads only what stages before it wrote).
STAGE_ORDER = (
    "policy",             # train_policy: the small policy, and its pass@1 on the test split
    "large_policy",       # train_policy: M x larger, same data and tokens; greedy accuracy on the test split
    "samples_train",      # sample_solutions: a few samples per training question (PRM labels, ORM data)
    "labels",             # label_rollouts: Monte Carlo step labels
    "prm",                # train_verifier: process reward model
    "orm",                # train_verifier: outcome reward model
    "samples_revision",   # sample_solutions: many samples per training question for revision trajectories
    "revision_data",      # revision_data: incorrect attempts -> correct one
    "reviser",            # train_reviser: the revision model
    "revision_chains",    # eval_revisions on training questions: the reviser's own attempts in context
    "revision_orm",       # train_verifier: ORM on those attempts with their previous attempts in context
    "samples_difficulty",  # sample_solutions: n samples per test question (oracle difficulty)
    "verifier_eval",      # eval_verifiers on those samples: PRM / ORM scores (predicted difficulty), accuracy vs N
    "difficulty",         # difficulty: oracle and predicted bins, and what estimating them cost
    "search_eval",        # eval_search: best-of-N, beam, lookahead, DVTS at each budget
    "revision_eval",      # eval_revisions: sequential:parallel ratios and selection methods at each budget
    "report",             # report: compute-optimal selection, efficiency, FLOPs-matched exchange, plots
)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  only: tuple[str, ...] = ()  # Run just these stages (in chain order); () = all.
  time_limit_s: float = 0.0  # Start no stage after this many seconds; 0 = no limit.
  expected_s: dict = dataclasses.field(default_factory=dict)  # Stage -> estimated seconds, for the ETA.

  def __post_init__(self):
    for name in list(self.only) + list(self.expected_s):
      if name not in STAGE_ORDER:
        raise ValueError(f"pipeline: unknown stage {name!r}; stages: {', '.join(STAGE_ORDER)}")
    if self.time_limit_s < 0:
      raise ValueError(f"pipeline.time_limit_s={self.time_limit_s} must be >= 0")


def stage_configs(config) -> dict[str, ml_collections.ConfigDict]:
  """Each stage's job config with the shared sections put in; errors name a missing or stray stage."""
  given = set(config.stages.keys())
  missing = [s for s in STAGE_ORDER if s not in given]
  extra = sorted(given - set(STAGE_ORDER))
  if missing or extra:
    raise ValueError(f"pipeline config: stages missing {missing}, unknown {extra}; "
                     f"expected exactly: {', '.join(STAGE_ORDER)}")
  out = {}
  for name in STAGE_ORDER:
    stage = ml_collections.ConfigDict(config.stages[name].to_dict())
    get_job(stage.get("job", ""))  # Every stage names a job that exists, before the first one runs.
    reads = importlib.import_module(JOBS[stage.job]).SECTIONS
    for section in _SHARED_SECTIONS:
      if section in stage:
        raise ValueError(f"stages.{name}.{section}: set the top-level `{section}` instead; it applies to every stage")
      if section in reads:
        stage[section] = ml_collections.ConfigDict(config[section].to_dict())
    out[name] = stage
  return out


def config_hash(stage_config: ml_collections.ConfigDict) -> str:
  return hashlib.sha256(json.dumps(stage_config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def snapshot(workdir: str) -> dict[str, int]:
  """Every file under `workdir` (relative path -> mtime in ns), but the pipeline's own and temp files."""
  return {path: stamp for path, stamp in storage.file_versions(workdir).items()
          if not path.startswith("pipeline" + os.sep)
          # Not results: a write in progress, a shard set aside.
          and ".tmp-" not in os.path.basename(path) and not path.endswith(".damaged")}


def stage_outputs(before: dict[str, int], after: dict[str, int], recorded: list[str]) -> list[str]:
  """The files a stage owns: those it wrote or touched now, and those it wrote before that still exist."""
  written = {p for p, mtime in after.items() if before.get(p) != mtime}
  return sorted(p for p in written | set(recorded) if p in after)


def missing_outputs(workdir: str, outputs: list[str]) -> list[str]:
  """Recorded outputs that are gone or damaged (a sharded artifact whose shards no longer match its manifest)."""
  bad = [p for p in outputs if not storage.exists(os.path.join(workdir, p))]
  for p in outputs:
    if os.path.basename(p) == "manifest.json" and p not in bad:
      directory = os.path.join(workdir, os.path.dirname(p))
      if any(n.startswith("shard-") for n in storage.listdir(directory)):
        bad.extend(os.path.relpath(f, workdir) for f in shards.problems(directory))
  return bad


def is_done(workdir: str, name: str, entry: dict, stage_config: ml_collections.ConfigDict) -> bool:
  """Recorded with this config, and every file it recorded is still there and sound."""
  if entry.get("config_hash") != config_hash(stage_config):
    return False
  bad = missing_outputs(workdir, entry.get("outputs", []))
  if bad:
    logging.warning("[pipeline] stage %s is recorded done but %d of its outputs are missing or damaged (%s%s): "
                    "running it again", name, len(bad), ", ".join(bad[:3]), ", ..." if len(bad) > 3 else "")
  return not bad


def read_status(path: str) -> dict:
  if not storage.exists(path):
    return {}
  return read_json(path, "delete it to re-run every stage (each skips the work it finished)").get("stages", {})


def finish_message(workdir: str, selected: list[str], status: dict) -> str:
  """What the run leaves: the report if it exists, else the outputs of the stages run (pipeline.only)."""
  workdir = storage.abspath(workdir)
  report = os.path.join(workdir, "report", "report.md")
  if storage.exists(report):
    return f"Pipeline finished. Report: {report}"
  lines = [f"Pipeline finished stage(s) {', '.join(selected)}; no report yet ({report} does not exist: the "
           "report stage has not run)."]
  for name in selected:
    tops = sorted({p.split(os.sep)[0] for p in status.get(name, {}).get("outputs", [])
                   if storage.exists(os.path.join(workdir, p))})
    lines.append(f"  {name}: {', '.join(os.path.join(workdir, t) for t in tops) or 'no output files recorded'}")
  return "\n".join(lines)


class _Progress:
  """ETA = remaining stages' estimates x (actual / estimated time of the stages run so far)."""

  def __init__(self, expected_s: dict, todo: list[str]):
    self.expected = {name: float(expected_s.get(name, 60.0)) for name in todo}
    self.todo = list(todo)
    self.start = time.time()
    self.spent_estimated = 0.0

  def finish(self, name: str) -> None:
    self.spent_estimated += self.expected[name]
    self.todo.remove(name)

  def eta(self) -> float:
    elapsed = time.time() - self.start
    speed = elapsed / self.spent_estimated if self.spent_estimated > 0 else 1.0
    return sum(self.expected[n] for n in self.todo) * speed

  def elapsed(self) -> float:
    return time.time() - self.start


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "pipeline")
  values = config.pipeline.to_dict() if config.get("pipeline") is not None else {}
  cfg = config_parsing.parse_section(PipelineConfig, values, "pipeline")
  stages = stage_configs(config)

  status_path = os.path.join(workdir, "pipeline", "status.json")
  status = read_status(status_path)
  selected = [s for s in STAGE_ORDER if not cfg.only or s in cfg.only]
  # From the first stage not recorded as done with its current config and outputs, every later stage runs
  # again: its inputs may have changed, and its job skips whatever of its own work is already finished.
  pending = []
  for s in selected:
    pending.append(not is_done(workdir, s, status.get(s, {}), stages[s]))
    if pending[-1]:
      break
  first = pending.index(True) if any(pending) else len(selected)
  todo, done = selected[first:], selected[:first]
  if done:
    logging.info("[pipeline] already done, skipped: %s", ", ".join(done))
  progress = _Progress(cfg.expected_s, todo)
  logging.info("[pipeline] %d stage(s) to run: %s (estimated %s)", len(todo), ", ".join(todo),
               format_seconds(progress.eta()))

  for i, name in enumerate(todo, 1):
    if cfg.time_limit_s and progress.elapsed() >= cfg.time_limit_s:
      logging.info("[pipeline] time limit %s reached before stage %s; re-run the same command to go on",
                   format_seconds(cfg.time_limit_s), name)
      return
    stage = stages[name]
    logging.info("[pipeline] stage %d/%d %s (job %s) starting; elapsed %s, ETA %s", i, len(todo), name, stage.job,
                 format_seconds(progress.elapsed()), format_seconds(progress.eta()))
    started = time.time()
    before = snapshot(workdir)
    get_job(stage.job)(stage, workdir)
    seconds = time.time() - started
    progress.finish(name)
    outputs = stage_outputs(before, snapshot(workdir), status.get(name, {}).get("outputs", []))
    status[name] = {"job": stage.job, "config_hash": config_hash(stages[name]), "seconds": round(seconds, 1),
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "git_commit": git_commit(),
                    "outputs": outputs}
    write_json(status_path, {"stages": status, "order": list(STAGE_ORDER)})
    logging.info("[pipeline] stage %d/%d %s done in %s; elapsed %s, ETA %s", i, len(todo), name,
                 format_seconds(seconds), format_seconds(progress.elapsed()), format_seconds(progress.eta()))
  message = finish_message(workdir, selected, status)
  logging.info("[pipeline] finished in %s. %s", format_seconds(progress.elapsed()), message)
  print(f"\n{message}\n", flush=True)
