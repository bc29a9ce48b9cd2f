"""The countdown task (`tasks.countdown`) behind the `Task` interface.

Generated into a tfds ArrayRecord dataset under `data_dir` on first use, like arith
(`tasks.synthetic_task`); the prompt layout, answer line and "\\n" steps are arith's, the grader
checks the whole computation (`countdown.CountdownGrader`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ttc_jax.tasks import countdown, synthetic
from ttc_jax.tasks.grading import Grader
from ttc_jax.tasks.problem import Problem
from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat

NAME = "countdown"


def to_problem(p: countdown.Problem) -> Problem:
  return Problem(id=p.id, question=p.question, answer=p.answer, solution=p.solution,
                 metadata={**p.metadata, "source": NAME})


@dataclasses.dataclass(frozen=True)
class CountdownTask:
  """Attributes: data_dir (where the tfds data is built), generator (`countdown.CountdownConfig`),
  sizes (problems per split), grader (defaults to the generator's rules) and step_format ("\\n")."""

  data_dir: str
  generator: countdown.CountdownConfig = countdown.CountdownConfig()
  sizes: Mapping[str, int] = dataclasses.field(default_factory=lambda: {"train": 20_000, "validation": 500,
                                                                        "test": 500})
  grader: Grader | None = None
  step_format: StepFormat = LINE_STEPS
  name: str = NAME

  def __post_init__(self):
    if self.grader is None:
      object.__setattr__(self, "grader", countdown.CountdownGrader(self.generator.ops, self.generator.use_all))

  def builder(self):
    from ttc_jax.tasks import countdown_tfds  # tfds is heavy: only tasks that generate data import it.
    return countdown_tfds.prepare_dataset(self.data_dir, self.generator, self.sizes)

  def problems(self, split: str, limit: int | None = None) -> list[Problem]:
    from ttc_jax.tasks import countdown_tfds
    if split not in self.sizes:
      raise ValueError(f"the {self.name} task has splits {sorted(self.sizes)}, not {split!r}")
    source = countdown_tfds.data_source(self.builder(), split)
    return [to_problem(p) for p in countdown_tfds.load_problems(source, limit)]

  def prompt(self, problem: Problem, tokenizer: Tokenizer) -> str:
    del tokenizer
    return synthetic.prompt_text(problem)
