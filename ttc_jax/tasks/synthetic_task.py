"""The built-in arithmetic task (`tasks.synthetic`) behind the `Task` interface.

Problems are generated into a tfds ArrayRecord dataset under `data_dir` on first use (as the
jobs always did) and read back in generation order; their difficulty knobs (num_steps,
max_operand, ops) become metadata. Prompts, ids and splits are those of `tasks.synthetic`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ttc_jax.tasks import synthetic
from ttc_jax.tasks.grading import ExactAnswerGrader, Grader
from ttc_jax.tasks.problem import Problem
from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat

NAME = "arith"


def to_problem(p: synthetic.Problem) -> Problem:
  return Problem(id=p.id, question=p.question, answer=p.answer, solution=p.solution,
                 metadata={**p.metadata, "source": NAME})


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
  """Attributes: data_dir (where the tfds data is built), generator (the difficulty mixture),
  sizes (problems per split), grader and step_format (the exact answer line, "\\n" steps)."""

  data_dir: str
  generator: synthetic.TaskConfig = synthetic.TaskConfig()
  sizes: Mapping[str, int] = dataclasses.field(default_factory=lambda: {"train": 20_000, "validation": 500,
                                                                        "test": 500})
  grader: Grader = ExactAnswerGrader()
  step_format: StepFormat = LINE_STEPS
  name: str = NAME

  def builder(self):
    """The prepared tfds builder (built on first call; a no-op once the data is complete)."""
    from ttc_jax.tasks import tfds_builder  # tfds is heavy: only tasks that generate data import it.
    return tfds_builder.prepare_dataset(self.data_dir, self.generator, self.sizes)

  def problems(self, split: str, limit: int | None = None) -> list[Problem]:
    from ttc_jax.tasks import tfds_builder
    if split not in self.sizes:
      raise ValueError(f"the {self.name} task has splits {sorted(self.sizes)}, not {split!r}")
    source = tfds_builder.data_source(self.builder(), split)
    return [to_problem(p) for p in tfds_builder.load_problems(source, limit)]

  def prompt(self, problem: Problem, tokenizer: Tokenizer) -> str:
    del tokenizer  # The task's own layout, whatever the vocabulary.
    return synthetic.prompt_text(problem)
