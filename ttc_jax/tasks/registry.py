"""Tasks by name: the config's `task` section (`TaskSpec`) -> a `Task`.

  task = make_task(TaskSpec(name="math500", path="/data/math500/test.jsonl"), data_dir="")
  task.problems("test")[0].id        # "test/precalculus/807.json"

A benchmark is a loader module (`tasks.loaders.*`) plus one row of `_FILE_TASKS`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os

from ttc_jax.model_refs import resolve
from ttc_jax.tasks import synthetic
from ttc_jax.tasks.base import Task
from ttc_jax.tasks.file_task import FileTask
from ttc_jax.tasks.grading import GRADER_NAMES, CutAtGrader, get_grader
from ttc_jax.tasks.loaders import aime2024, aime2025, gsm8k, hendrycks_math, math500, prm800k
from ttc_jax.tasks.prompts import FEW_SHOT_CUT, STYLES
from ttc_jax.tasks.synthetic_task import NAME as SYNTHETIC, SyntheticTask
from ttc_jax.tokenization.steps import PARAGRAPH_STEPS, StepFormat


@dataclasses.dataclass(frozen=True)
class _FileTaskKind:
  loader: object  # (path, split) -> list[Problem]
  grader: str = "math_verify"
  step_format: StepFormat = PARAGRAPH_STEPS  # Open models write MATH-style steps as paragraphs.


_FILE_TASKS = {
    "math500": _FileTaskKind(math500.load),
    "math": _FileTaskKind(hendrycks_math.load),
    "gsm8k": _FileTaskKind(gsm8k.load),
    "aime2024": _FileTaskKind(aime2024.load),
    "aime2025": _FileTaskKind(aime2025.load),
    "prm800k": _FileTaskKind(prm800k.load),
}
TASK_NAMES = (SYNTHETIC, *_FILE_TASKS)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """The config's `task` section (without `generator`, the synthetic task's `synthetic.TaskConfig`).

  Attributes:
    name: one of TASK_NAMES.
    path: benchmark tasks: the published file or directory (README "Tasks and data files").
    prompt: benchmark tasks: "auto", "chat" or "few_shot" (`tasks.prompts`).
    grader: "" = the task's own ("exact" for arith, "math_verify" for the benchmarks).
    step_delimiter: "" = the task's own ("\\n" for arith, "\\n\\n" for the benchmarks).
    train_size, validation_size, test_size: problems generated per split (arith only).
    data_dir: where arith's generated data goes; "" = WORKDIR/data.
    tokenizer: the tokenizer of trained policies; "" = the shipped SentencePiece model.
  """

  name: str = SYNTHETIC
  path: str = ""
  prompt: str = "auto"
  grader: str = ""
  step_delimiter: str = ""
  train_size: int = 20_000
  validation_size: int = 500
  test_size: int = 500
  data_dir: str = ""
  tokenizer: str = ""

  def __post_init__(self):
    if self.name not in TASK_NAMES:
      close = difflib.get_close_matches(self.name, TASK_NAMES, n=1)
      hint = f" (did you mean {close[0]!r}?)" if close else ""
      raise ValueError(f"task.name={self.name!r}{hint}; valid: {', '.join(TASK_NAMES)}")
    for split in ("train_size", "validation_size", "test_size"):
      if getattr(self, split) <= 0:
        raise ValueError(f"task.{split}={getattr(self, split)} must be positive")
    if self.name in _FILE_TASKS and not self.path:
      raise ValueError(f"task.path: the {self.name} task reads local files; set it to the published file or "
                       "directory (README, 'Tasks and data files')")
    if self.name == SYNTHETIC and self.path:
      raise ValueError(f"task.path={self.path!r}: the {SYNTHETIC} task generates its problems; leave it empty")
    if self.prompt not in STYLES:
      raise ValueError(f"task.prompt={self.prompt!r}; valid: {', '.join(STYLES)}")
    if self.name == SYNTHETIC and self.prompt != "auto":
      raise ValueError(f"task.prompt={self.prompt!r}: the {SYNTHETIC} task has its own prompt; leave it 'auto'")
    if self.name == SYNTHETIC and self.step_delimiter not in ("", "\n"):
      raise ValueError(f"task.step_delimiter={self.step_delimiter!r}: the {SYNTHETIC} task writes one step per line")
    if self.grader and self.grader not in GRADER_NAMES:
      raise ValueError(f"task.grader={self.grader!r}; valid: {', '.join(GRADER_NAMES)} ('' = the task's own)")

  @property
  def sizes(self) -> dict[str, int]:
    return {"train": self.train_size, "validation": self.validation_size, "test": self.test_size}


def step_format_of(name: str, step_delimiter: str = "") -> StepFormat:
  """The step format of task `name` with `task.step_delimiter` ("" = the task's own)."""
  if step_delimiter:
    return StepFormat(step_delimiter)
  return SyntheticTask.step_format if name == SYNTHETIC else _FILE_TASKS[name].step_format


def recorded_step_format(task_record: dict | None) -> StepFormat:
  """The step format of the task a sampling job pinned in its spec (`jobs.sample_solutions.task_record`):
  a `TaskSpec` as a dict, or arith's generator alone (no "name"; also no record at all): "\\n" steps."""
  if not task_record or "name" not in task_record:
    return SyntheticTask.step_format
  return step_format_of(task_record["name"], task_record.get("step_delimiter", ""))


def samples_step_format(samples_dir: str, workdir: str) -> StepFormat:
  """The step format of the task whose samples `samples_dir` holds, as its spec.json pinned it.

  A sample_solutions output records its task; a label_rollouts output records the samples it
  labelled (followed, relative to `workdir`); anything else (hand-written records, no spec):
  "\\n" steps.
  """
  spec = {}
  spec_path = os.path.join(samples_dir, "spec.json")
  if os.path.exists(spec_path):
    with open(spec_path) as f:
      spec = json.load(f)
  labelled = spec.get("labels", {}).get("samples") if isinstance(spec.get("labels"), dict) else None
  if "task" not in spec and labelled:
    source = resolve(workdir, labelled)
    if os.path.abspath(source) != os.path.abspath(samples_dir):
      return samples_step_format(source, workdir)
  return recorded_step_format(spec.get("task"))


def make_task(spec: TaskSpec, data_dir: str, generator: synthetic.TaskConfig = synthetic.TaskConfig()) -> Task:
  """The task `spec` names. `data_dir`: where arith generates its data (unused by file tasks);
  `generator`: arith's difficulty mixture. Touches no file: problems are read on `problems()`."""
  step_format = step_format_of(spec.name, spec.step_delimiter)
  if spec.name == SYNTHETIC:
    return SyntheticTask(data_dir=data_dir, generator=generator, sizes=spec.sizes,
                         grader=get_grader(spec.grader or "exact"), step_format=step_format)
  kind = _FILE_TASKS[spec.name]
  return FileTask(name=spec.name, path=spec.path, loader=kind.loader,
                  grader=CutAtGrader(get_grader(spec.grader or kind.grader), FEW_SHOT_CUT),
                  step_format=step_format, prompt_style=spec.prompt)
