"""The task interface: problems, their prompt, their grader and their step format.

Jobs, record writers and reports see a task only through `Task`, so a benchmark is one loader
module plus a registry entry (`tasks.registry`); the built-in synthetic task is one
implementation (`tasks.synthetic_task`), the published benchmarks another (`tasks.file_task`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ttc_jax.tasks.grading import Grader
from ttc_jax.tasks.problem import Problem
from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.steps import StepFormat


@runtime_checkable
class Task(Protocol):
  """A set of problems with their prompt layout, grader and step delimiter.

  Attributes:
    name: the registry name ("arith", "math500", ...).
    grader: reads and checks the final answer of a generated solution.
    step_format: the delimiter after each solution step (stop rule, step splitting, verifiers).
  """

  name: str
  grader: Grader
  step_format: StepFormat

  def problems(self, split: str, limit: int | None = None) -> list[Problem]:
    """The split's problems in a fixed order (the first `limit` of them when given)."""
    ...

  def prompt(self, problem: Problem, tokenizer: Tokenizer) -> str:
    """The text the policy is conditioned on; the solution follows it directly.

    Fed as `tokenizer.prompt_ids(text)`; it may depend on the tokenizer (a chat template).
    """
    ...
