"""tfds builder of the countdown task (`tasks.countdown`), stored as ArrayRecord.

As `tasks.tfds_builder` (arith): the config name is a hash of (CountdownConfig, sizes), so
differently configured datasets never share a directory; training reads "prompt" and "solution".
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

from ttc_jax.tasks import countdown, synthetic
from ttc_jax.tasks.tfds_builder import data_source  # noqa: F401  (the same reader for both tasks)


@dataclasses.dataclass
class CountdownBuilderConfig(tfds.core.BuilderConfig):
  task: countdown.CountdownConfig = countdown.CountdownConfig()
  sizes: dict[str, int] = dataclasses.field(default_factory=dict)


def make_config(task: countdown.CountdownConfig, sizes: Mapping[str, int]) -> CountdownBuilderConfig:
  sizes = {k: int(v) for k, v in sorted(sizes.items())}
  blob = json.dumps([dataclasses.asdict(task), sizes], sort_keys=True)
  name = "c" + hashlib.sha256(blob.encode()).hexdigest()[:12]
  return CountdownBuilderConfig(name=name, task=task, sizes=sizes, description=f"task={task} sizes={sizes}")


class TtcCountdown(tfds.core.GeneratorBasedBuilder):
  """Reach a target from a few numbers with + - * (see countdown.py)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)  # As TtcArith: tfds' default needs a package it does not depend on.

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text()
    return self.dataset_info_from_configs(
        description=__doc__.splitlines()[0],
        features=tfds.features.FeaturesDict({
            "id": text, "question": text, "solution": text, "answer": text, "prompt": text,
            "generating_solution": text, "numbers": text, "ops": text,
            "target": tfds.features.Scalar(dtype=np.int64),
            "num_solutions": tfds.features.Scalar(dtype=np.int64),
            "use_all": tfds.features.Scalar(dtype=np.int32),
        }),
        disable_shuffling=True,  # source[i] is "{split}-{i:06d}", as arith.
        metadata=tfds.core.MetadataDict(task=dataclasses.asdict(self.builder_config.task)),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    splits = countdown.generate_splits(self.builder_config.task, self.builder_config.sizes)
    return {name: self._generate_examples(problems) for name, problems in splits.items()}

  def _generate_examples(self, problems):
    for p in problems:
      yield p.id, to_features(p)


def to_features(p: countdown.Problem) -> dict:
  return {"id": p.id, "question": p.question, "solution": p.solution, "answer": p.answer,
          "prompt": synthetic.prompt_text(p), "generating_solution": p.generating_solution,
          "numbers": " ".join(str(x) for x in p.numbers), "ops": p.ops, "target": p.target,
          "num_solutions": p.num_solutions, "use_all": int(p.use_all)}


def _decode(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def from_features(example: Mapping) -> countdown.Problem:
  return countdown.Problem(
      id=_decode(example["id"]), question=_decode(example["question"]), solution=_decode(example["solution"]),
      answer=_decode(example["answer"]), numbers=tuple(int(x) for x in _decode(example["numbers"]).split()),
      target=int(example["target"]), num_solutions=int(example["num_solutions"]),
      generating_solution=_decode(example["generating_solution"]), ops=_decode(example["ops"]),
      use_all=bool(int(example["use_all"])))


def prepare_dataset(data_dir: str | os.PathLike, task: countdown.CountdownConfig,
                    sizes: Mapping[str, int]) -> TtcCountdown:
  """Builds the dataset under `data_dir` unless already there (see `tfds_builder.prepare_dataset`)."""
  builder = TtcCountdown(data_dir=os.fspath(data_dir), config=make_config(task, sizes), file_format="array_record")
  builder.download_and_prepare()
  return builder


def load_problems(source, limit: int | None = None) -> list[countdown.Problem]:
  n = len(source) if limit is None else min(limit, len(source))
  return [from_features(source[i]) for i in range(n)]
