"""Wiring shared by jobs: config sections -> dataclasses, mesh, task data, tokenizer, stage dirs."""
import contextlib
import dataclasses
import os
import time
from typing import Any

import jax
import tensorflow_datasets as tfds
from absl import logging

from ttc_jax import config_parsing, shards, storage
from ttc_jax.models import ModelConfig
from ttc_jax.provenance import read_json
from ttc_jax.parallel import DistributedConfig, MeshConfig, make_mesh, maybe_initialize_distributed, processes
from ttc_jax.tasks import registry, synthetic, tfds_builder
from ttc_jax.tasks.base import Task
from ttc_jax.tasks.registry import TaskSpec
from ttc_jax.tasks.tokenizer import Tokenizer
from ttc_jax.train import checkpoint_dir, stage


# Job fields that say how the work is laid out on the device, not what it computes.
LAYOUT_FIELDS = ("shared_prefix",)


def spec_fields(cfg) -> dict:
  """A job section as an artifact's spec pins it: without `LAYOUT_FIELDS`, so shards made with
  either layout (or before such a field existed) resume and match each other."""
  return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in LAYOUT_FIELDS}


def parse_task(section: Any) -> tuple[TaskSpec, Any]:
  """(TaskSpec, the generator: `synthetic.TaskConfig` for arith, `countdown.CountdownConfig` for countdown)."""
  values = section.to_dict() if hasattr(section, "to_dict") else dict(section)
  generator = values.pop("generator", {})
  spec = config_parsing.parse_section(TaskSpec, values, "task")
  return spec, config_parsing.parse_section(registry.generator_class(spec.name), generator, "task.generator")


def make_task(section: Any, workdir: str) -> Task:
  """The task of a config's `task` section; reads no file (call `prepare_task` before reading problems)."""
  spec, generator = parse_task(section)
  return registry.make_task(spec, _data_dir(spec, workdir), generator)


def _data_dir(spec: TaskSpec, workdir: str) -> str:
  """Where a generated task's tfds data is built: a local folder, the local mirror of a gs:// one
  (ArrayRecord writes local files only; `prepare_task` copies it up and down)."""
  return storage.local_mirror(spec.data_dir or os.path.join(workdir, "data"))


def prepare_task(task: Task) -> Task:
  """Builds a generated task's data once, then returns the task.

  Call after `setup_mesh`: on several hosts the lead host writes the data and the others wait,
  then read it (tfds does not lock a shared data_dir). Tasks read from files need nothing.
  """
  if isinstance(task, registry.GENERATED_TASK_TYPES):
    tfds.disable_progress_bar()  # Progress bars flood job logs; the job logs its own progress.
    remote = storage.mirrored_url(task.data_dir)  # Set when the data lives in a bucket.
    if jax.process_index() == 0:
      start = time.time()
      if remote:
        storage.download_tree(remote, task.data_dir)  # Built before (by any host): reused, not rebuilt.
      task.builder()
      if remote:
        storage.upload_tree(task.data_dir, remote, newer_than=start)
    if jax.process_count() > 1:
      processes.barrier("ttc_jax.task_data")
    if jax.process_index() != 0:
      if remote:
        storage.download_tree(remote, task.data_dir)
      task.builder()
  return task


def reject_moved(section: Any, prefix: str, moved: dict[str, str]) -> None:
  """Names the new place of a config field that moved (e.g. `sampling.grader` -> `task.grader`)."""
  for old, new in moved.items():
    if section is not None and old in section:
      raise ValueError(f"{prefix}.{old} moved to {new} (the task owns it); set --config.{new} instead")


def parse_model(section: Any, tokenizer: Tokenizer) -> ModelConfig:
  """model.vocab_size = -1 takes the tokenizer's size; a smaller one is an error."""
  values = section.to_dict() if hasattr(section, "to_dict") else dict(section)
  if values.get("vocab_size", -1) == -1:
    values["vocab_size"] = tokenizer.vocab_size
  elif values["vocab_size"] < tokenizer.vocab_size:
    raise ValueError(f"model.vocab_size={values['vocab_size']} is smaller than the tokenizer's "
                     f"{tokenizer.vocab_size} tokens")
  return config_parsing.parse_section(ModelConfig, values, "model")


def setup_mesh(config: Any, *, per_process: bool = False):
  """Starts multi-host JAX if configured, then builds the (data, fsdp, tensor) mesh.

  per_process: a mesh over this process's own devices (mesh.data=-1 fills them), for jobs whose
  processes each run their own share of the work (evaluation and labelling, `parallel.processes`);
  training meshes span every host.
  """
  maybe_initialize_distributed(config_parsing.parse_section(DistributedConfig, config.get("distributed"), "distributed"))
  devices = jax.local_devices() if per_process else None
  mesh = make_mesh(config_parsing.parse_section(MeshConfig, config.get("mesh"), "mesh"), devices)
  logging.info("Mesh %s over %d devices (%s), process %d of %d%s", dict(mesh.shape), mesh.size,
               jax.devices()[0].platform, jax.process_index(), jax.process_count(),
               " (this process's devices)" if per_process and jax.process_count() > 1 else "")
  return mesh


def task_data(spec: TaskSpec, task_cfg: Any, workdir: str):
  """Prepares (once, see `prepare_task`) and returns a generated task's tfds builder (training reads it)."""
  task = registry.make_task(spec, _data_dir(spec, workdir), task_cfg)
  if not isinstance(task, registry.GENERATED_TASK_TYPES):
    names = ", ".join(t.name for t in registry.GENERATED_TASK_TYPES)
    raise ValueError(f"task.name={spec.name!r}: only the generated tasks ({names}) have training data in tfds form; "
                     "benchmark tasks are read through Task.problems")
  return prepare_task(task).builder()


def load_split(builder, split: str, num_problems: int) -> list[synthetic.Problem]:
  """The first `num_problems` problems of a split in stored order (-1: all of them)."""
  return tfds_builder.load_problems(tfds_builder.data_source(builder, split),
                                    limit=None if num_problems < 0 else num_problems)


def require_problems(problems: list, field: str, split: str) -> list:
  """An empty selection is a config error naming the field: it would otherwise make an empty "complete" artifact."""
  if not problems:
    raise ValueError(f"{field}: selects no problem of the {split!r} split; nothing to do")
  return problems


def is_current(path: str, step: int | None, identity: str, **fields) -> bool:
  """Whether the result at `path` was computed from the model `identity` at `step` (and `fields` match):
  a retrained model (another seed, width or data) re-evaluates instead of keeping an old result."""
  if not storage.exists(path):
    return False
  old = read_json(path, "delete it to recompute it")
  return ((step is None or old.get("step") == step) and old.get("model_fingerprint") == identity
          and all(old.get(k) == v for k, v in fields.items()))


def current_result(path: str, inputs: dict, *also: str) -> bool:
  """Whether the result at `path` exists and was made from `inputs` ({name: identity} of the models and
  artifacts it reads: `export.model_identity`, `provenance.input_fingerprint`).

  A result made from other inputs is stale: it is moved to `<path>.stale-<n>` (and so is every file in
  `also` computed with it, e.g. cached scores), kept rather than deleted, and False is returned so the job
  makes it again. A result that records no inputs (written before they were recorded) counts as current.

  In a multi-host run every process calls this (jobs run the same code everywhere) and gets the same
  answer: all read before the lead alone moves anything aside, and none goes on until it has.
  """
  old = read_json(path, "delete it to recompute it").get("inputs", None) if storage.exists(path) else _MISSING
  processes.barrier("current_result.read")
  if old is _MISSING:
    return False
  if old is None or old == inputs:
    return True
  if jax.process_index() == 0:
    for p in (path, *also):
      if storage.exists(p):
        storage.replace(p, shards.stale_path(p))
    logging.warning("%s was made from other inputs (%s changed): moved aside, computing it again", path,
                    ", ".join(shards.changed_inputs(old, inputs)))
  processes.barrier("current_result.moved")
  return False


_MISSING = object()  # No result file at all (as opposed to one that records no inputs).


def stage_dir(workdir: str, name: str) -> str:
  path = os.path.join(storage.abspath(workdir), name)
  storage.makedirs(path)
  return path


@contextlib.contextmanager
def training_stage(workdir: str, name: str, model_cfg: ModelConfig):
  """WORKDIR/<name> for a training job: locked for the with-block, refused if it holds another model.

  Enter it after the config is validated and before writing anything in the stage. The lead host
  holds the lock; the other hosts of a multi-host run are the same run.
  """
  path = stage_dir(workdir, name)
  what = f"stage {name!r}"
  with stage.locked(path, what, enabled=jax.process_index() == 0):
    stage.check_model_config(path, dataclasses.asdict(model_cfg), what, checkpoint_dir(path))
    yield path
