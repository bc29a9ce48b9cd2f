"""tfds builder of the synthetic arithmetic task, stored as ArrayRecord.

  builder = prepare_dataset(data_dir, TaskConfig(), {"train": 20_000, "test": 500})
  source = data_source(builder, "train")       # random access, no TensorFlow
  source[0]["question"]                        # -> bytes

The builder config name is a hash of (TaskConfig, sizes), so differently configured
datasets never share a directory and `prepare_dataset` can skip work already done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from ttc_jax.tasks import synthetic

DEFAULT_SIZES = {"train": 20_000, "validation": 500, "test": 500}
# String fields of a stored example (bytes when read back); the rest are ints.
TEXT_FIELDS = ("id", "question", "solution", "answer", "prompt", "ops")


@dataclasses.dataclass
class ArithConfig(tfds.core.BuilderConfig):
  """A task configuration plus the number of problems per split."""

  task: synthetic.TaskConfig = synthetic.TaskConfig()
  sizes: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SIZES))


def _new_config(task: synthetic.TaskConfig, sizes: Mapping[str, int]) -> ArithConfig:
  sizes = {k: int(v) for k, v in sorted(sizes.items())}
  if task == synthetic.TaskConfig() and sizes == dict(sorted(DEFAULT_SIZES.items())):
    name = "default"
  else:
    blob = json.dumps([dataclasses.asdict(task), sizes], sort_keys=True)
    name = "c" + hashlib.sha256(blob.encode()).hexdigest()[:12]
  return ArithConfig(name=name, task=task, sizes=sizes,
                     description=f"task={task} sizes={sizes}")


_DEFAULT_CONFIG = _new_config(synthetic.TaskConfig(), DEFAULT_SIZES)


def make_config(task: synthetic.TaskConfig, sizes: Mapping[str, int]) -> ArithConfig:
  """Config named "default" for the defaults, else "c" + a hash of task and sizes."""
  config = _new_config(task, sizes)
  # tfds accepts a config named like one of BUILDER_CONFIGS only if it is that object.
  return _DEFAULT_CONFIG if config.name == _DEFAULT_CONFIG.name else config


class TtcArith(tfds.core.GeneratorBasedBuilder):
  """Step-by-step integer arithmetic chains with exact answers (see synthetic.py)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [_DEFAULT_CONFIG]

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    # tfds 4.9.10's default implementation imports `importlib_resources`, a backport
    # that it does not depend on for Python >= 3.9 (ModuleNotFoundError on a clean
    # install); its fallback answer is this file anyway.
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text()
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            "id": text,
            "question": text,
            "solution": text,
            "answer": text,
            "prompt": text,
            "ops": text,
            "num_steps": tfds.features.Scalar(dtype=np.int32),
            "max_operand": tfds.features.Scalar(dtype=np.int32),
        }),
        # Keep generation order: source[i] is "{split}-{i:06d}", so evaluation can walk a
        # split in order; training shuffles in grain anyway.
        disable_shuffling=True,
        metadata=tfds.core.MetadataDict(
            task=dataclasses.asdict(self.builder_config.task)),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: problems are generated.
    splits = synthetic.generate_splits(self.builder_config.task, self.builder_config.sizes)
    return {name: self._generate_examples(problems) for name, problems in splits.items()}

  def _generate_examples(self, problems):
    for p in problems:
      yield p.id, to_features(p)


NAME = TtcArith.name  # "ttc_arith", from the class name (tfds registers it on import).


def to_features(problem: synthetic.Problem) -> dict:
  """The stored example of a problem (the prompt is stored so readers need no code)."""
  return {
      "id": problem.id,
      "question": problem.question,
      "solution": problem.solution,
      "answer": problem.answer,
      "prompt": synthetic.prompt_text(problem),
      "ops": problem.ops,
      "num_steps": problem.num_steps,
      "max_operand": problem.max_operand,
  }


def _decode(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def from_features(example: Mapping) -> synthetic.Problem:
  """Inverse of `to_features` on an example read back (bytes or str, numpy ints)."""
  return synthetic.Problem(
      id=_decode(example["id"]),
      question=_decode(example["question"]),
      solution=_decode(example["solution"]),
      answer=_decode(example["answer"]),
      num_steps=int(example["num_steps"]),
      max_operand=int(example["max_operand"]),
      ops=_decode(example["ops"]),
  )


def prepare_dataset(
    data_dir: str | os.PathLike,
    task: synthetic.TaskConfig = synthetic.TaskConfig(),
    sizes: Mapping[str, int] = DEFAULT_SIZES,
) -> TtcArith:
  """Builds the dataset as ArrayRecord under `data_dir` unless already there.

  Works without TensorFlow installed (tfds then serialises examples with its own
  protobuf code). Returns the builder; read splits with `data_source`. On several hosts
  sharing `data_dir`, call it on one process first (then barrier): tfds does not lock.
  """
  builder = TtcArith(data_dir=os.fspath(data_dir), config=make_config(task, sizes),
                     file_format="array_record")
  # A no-op when this config's version directory is complete (tfds checks dataset_info.json).
  builder.download_and_prepare()
  return builder


def data_source(builder: tfds.core.DatasetBuilder, split: str):
  """Random-access source over a split: len(), [i] -> dict (text fields as bytes)."""
  return builder.as_data_source(split=split)


def load_problems(source, limit: int | None = None) -> list[synthetic.Problem]:
  """The problems of a split in stored (= generation) order, for evaluation jobs."""
  n = len(source) if limit is None else min(limit, len(source))
  return [from_features(source[i]) for i in range(n)]
