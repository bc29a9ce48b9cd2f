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

from ttc_jax import storage
from ttc_jax.model_refs import resolve
from ttc_jax.tasks import countdown, synthetic
from ttc_jax.tasks.base import Task
from ttc_jax.tasks.countdown_task import NAME as COUNTDOWN, CountdownTask
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
# Tasks whose problems are generated (tfds data under data_dir, training data for the policy), with the
# dataclass of their config's `task.generator` section.
_GENERATED_TASKS = {SYNTHETIC: (SyntheticTask, synthetic.TaskConfig),
                    COUNTDOWN: (CountdownTask, countdown.CountdownConfig)}
GENERATED_TASK_TYPES = tuple(cls for cls, _ in _GENERATED_TASKS.values())
TASK_NAMES = (*_GENERATED_TASKS, *_FILE_TASKS)


def generator_class(name: str) -> type:
  """The dataclass of task `name`'s `task.generator` section (arith's for benchmarks, which ignore it)."""
  return _GENERATED_TASKS.get(name, _GENERATED_TASKS[SYNTHETIC])[1]


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """The config's `task` section (without `generator`: `synthetic.TaskConfig` for arith,
  `countdown.CountdownConfig` for countdown, see `generator_class`).

  Attributes:
    name: one of TASK_NAMES ("arith" and "countdown" are generated).
    path: benchmark tasks: the published file or directory (README "Tasks and data files").
    prompt: benchmark tasks: "auto", "chat" or "few_shot" (`tasks.prompts`).
    grader: "" = the task's own ("exact" for arith, "countdown" with its generator's rules, "math_verify" for
      the benchmarks).
    step_delimiter: "" = the task's own ("\\n" for arith and countdown, "\\n\\n" for the benchmarks).
    train_size, validation_size, test_size: problems generated per split (generated tasks only).
    data_dir: where a generated task's data goes; "" = WORKDIR/data.
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
    if self.name in _GENERATED_TASKS and self.path:
      raise ValueError(f"task.path={self.path!r}: the {self.name} task generates its problems; leave it empty")
    if self.prompt not in STYLES:
      raise ValueError(f"task.prompt={self.prompt!r}; valid: {', '.join(STYLES)}")
    if self.name in _GENERATED_TASKS and self.prompt != "auto":
      raise ValueError(f"task.prompt={self.prompt!r}: the {self.name} task has its own prompt; leave it 'auto'")
    if self.name in _GENERATED_TASKS and self.step_delimiter not in ("", "\n"):
      raise ValueError(f"task.step_delimiter={self.step_delimiter!r}: the {self.name} task writes one step per line")
    if self.grader and self.grader not in GRADER_NAMES:
      raise ValueError(f"task.grader={self.grader!r}; valid: {', '.join(GRADER_NAMES)} ('' = the task's own)")

  @property
  def sizes(self) -> dict[str, int]:
    return {"train": self.train_size, "validation": self.validation_size, "test": self.test_size}


def step_format_of(name: str, step_delimiter: str = "") -> StepFormat:
  """The step format of task `name` with `task.step_delimiter` ("" = the task's own)."""
  if step_delimiter:
    return StepFormat(step_delimiter)
  if name in _GENERATED_TASKS:
    return _GENERATED_TASKS[name][0].step_format
  return _FILE_TASKS[name].step_format


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
  if storage.exists(spec_path):
    with storage.open(spec_path) as f:
      spec = json.load(f)
  labelled = spec.get("labels", {}).get("samples") if isinstance(spec.get("labels"), dict) else None
  if "task" not in spec and labelled:
    source = resolve(workdir, labelled)
    if storage.abspath(source) != storage.abspath(samples_dir):
      return samples_step_format(source, workdir)
  return recorded_step_format(spec.get("task"))


def make_task(spec: TaskSpec, data_dir: str, generator=None) -> Task:
  """The task `spec` names. `data_dir`: where a generated task writes its data (unused by file tasks);
  `generator`: a generated task's `generator_class(spec.name)` (None: its defaults). Touches no file:
  problems are read on `problems()`."""
  step_format = step_format_of(spec.name, spec.step_delimiter)
  if spec.name in _GENERATED_TASKS:
    cls, gen_cls = _GENERATED_TASKS[spec.name]
    generator = gen_cls() if generator is None else generator
    if not isinstance(generator, gen_cls):
      raise ValueError(f"task.name={spec.name!r} takes a {gen_cls.__name__} generator, got {type(generator).__name__}")
    if spec.name == COUNTDOWN:  # Its grader needs the generator's rules (ops, use_all).
      grader = (countdown.CountdownGrader(generator.ops, generator.use_all)
                if spec.grader in ("", "countdown") else get_grader(spec.grader))
    else:
      grader = get_grader(spec.grader or "exact")
    return cls(data_dir=data_dir, generator=generator, sizes=spec.sizes, grader=grader, step_format=step_format)
  kind = _FILE_TASKS[spec.name]
  return FileTask(name=spec.name, path=spec.path, loader=kind.loader,
                  grader=CutAtGrader(get_grader(spec.grader or kind.grader), FEW_SHOT_CUT),
                  step_format=step_format, prompt_style=spec.prompt)
