"""Wiring shared by jobs: config sections -> dataclasses, mesh, task data, tokenizer."""
import dataclasses
import os
from typing import Any

import jax
import tensorflow_datasets as tfds
from absl import logging
from jax.experimental import multihost_utils

from ttc_jax import config_parsing
from ttc_jax.models import ModelConfig
from ttc_jax.parallel import DistributedConfig, MeshConfig, make_mesh, maybe_initialize_distributed
from ttc_jax.tasks import synthetic, tfds_builder
from ttc_jax.tasks.tokenizer import Tokenizer


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """Which task, how many problems per split, and where its tfds data lives."""
  name: str = "arith"
  train_size: int = 20_000
  validation_size: int = 500
  test_size: int = 500
  data_dir: str = ""  # "" = WORKDIR/data
  tokenizer: str = ""  # "" = the shipped SentencePiece model

  def __post_init__(self):
    if self.name != "arith":
      raise ValueError(f"task.name={self.name!r}: only the built-in 'arith' task exists so far")
    for split in ("train_size", "validation_size", "test_size"):
      if getattr(self, split) <= 0:
        raise ValueError(f"task.{split}={getattr(self, split)} must be positive")

  @property
  def sizes(self) -> dict[str, int]:
    return {"train": self.train_size, "validation": self.validation_size, "test": self.test_size}


def parse_task(section: Any) -> tuple[TaskSpec, synthetic.TaskConfig]:
  values = section.to_dict() if hasattr(section, "to_dict") else dict(section)
  generator = values.pop("generator", {})
  return (config_parsing.parse_section(TaskSpec, values, "task"),
          config_parsing.parse_section(synthetic.TaskConfig, generator, "task.generator"))


def parse_model(section: Any, tokenizer: Tokenizer) -> ModelConfig:
  """model.vocab_size = -1 takes the tokenizer's size; a smaller one is an error."""
  values = section.to_dict() if hasattr(section, "to_dict") else dict(section)
  if values.get("vocab_size", -1) == -1:
    values["vocab_size"] = tokenizer.vocab_size
  elif values["vocab_size"] < tokenizer.vocab_size:
    raise ValueError(f"model.vocab_size={values['vocab_size']} is smaller than the tokenizer's "
                     f"{tokenizer.vocab_size} tokens")
  return config_parsing.parse_section(ModelConfig, values, "model")


def setup_mesh(config: Any):
  """Starts multi-host JAX if configured, then builds the (data, fsdp, tensor) mesh."""
  maybe_initialize_distributed(config_parsing.parse_section(DistributedConfig, config.get("distributed"), "distributed"))
  mesh = make_mesh(config_parsing.parse_section(MeshConfig, config.get("mesh"), "mesh"))
  logging.info("Mesh %s over %d devices (%s), process %d of %d", dict(mesh.shape), mesh.size,
               jax.devices()[0].platform, jax.process_index(), jax.process_count())
  return mesh


def task_data(spec: TaskSpec, task_cfg: synthetic.TaskConfig, workdir: str):
  """Prepares (once) and returns the task's tfds builder.

  Call after `setup_mesh`: on several hosts the lead host writes the data and the
  others wait, then read it (tfds does not lock a shared data_dir).
  """
  data_dir = spec.data_dir or os.path.join(workdir, "data")
  tfds.disable_progress_bar()  # Progress bars flood job logs; the job logs its own progress.
  if jax.process_count() > 1:
    if jax.process_index() == 0:
      tfds_builder.prepare_dataset(data_dir, task_cfg, spec.sizes)
    multihost_utils.sync_global_devices("ttc_jax.task_data")
  return tfds_builder.prepare_dataset(data_dir, task_cfg, spec.sizes)


def load_split(builder, split: str, num_problems: int) -> list[synthetic.Problem]:
  """The first `num_problems` problems of a split in stored order (-1: all of them)."""
  return tfds_builder.load_problems(tfds_builder.data_source(builder, split),
                                    limit=None if num_problems < 0 else num_problems)


def stage_dir(workdir: str, name: str) -> str:
  path = os.path.join(os.path.abspath(workdir), name)
  os.makedirs(path, exist_ok=True)
  return path
