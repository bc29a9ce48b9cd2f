"""A task over published benchmark files: problems from a loader, prompts from `tasks.prompts`."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

from ttc_jax.tasks import prompts
from ttc_jax.tasks.grading import Grader
from ttc_jax.tasks.problem import Problem
from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.steps import StepFormat


@dataclasses.dataclass(frozen=True)
class FileTask:
  """Problems read by `loader(path, split)` from local files; nothing is downloaded.

  Attributes:
    name: registry name.
    path: the file or directory the loader reads (its module says which layouts it accepts).
    loader: (path, split) -> problems in file order.
    grader: the answer checker (wrapped so few-shot continuations are not graded).
    step_format: the delimiter the prompt asks for and steps are split on.
    prompt_style: "auto" (chat when the tokenizer has a template, else few-shot), "chat", "few_shot".
  """

  name: str
  path: str
  loader: Callable[[pathlib.Path, str], list[Problem]]
  grader: Grader
  step_format: StepFormat
  prompt_style: str = "auto"

  def __post_init__(self):
    if self.prompt_style not in prompts.STYLES:
      raise ValueError(f"task.prompt={self.prompt_style!r}; valid: {', '.join(prompts.STYLES)}")

  def problems(self, split: str, limit: int | None = None) -> list[Problem]:
    problems = self.loader(pathlib.Path(self.path), split)
    return problems if limit is None else problems[:limit]

  def prompt(self, problem: Problem, tokenizer: Tokenizer) -> str:
    return prompts.render(self.prompt_style, problem.question, tokenizer, self.step_format)
