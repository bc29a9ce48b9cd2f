"""Sample and grade solutions to task problems: the records every later stage reads.

One record per problem:
  {"problem_id", "question", "answer", "metadata" (the task's: level, subject, num_steps, ...),
   "prompt" (the text the policy was conditioned on),
   "samples": [{"text", "steps", "extracted", "correct", "num_tokens", "stop_reason"}, ...]}
"""
import dataclasses
from typing import Sequence

import jax

from ttc_jax.decode.generate import generate
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.tasks.problem import Problem

# Metadata the synthetic task's records held as top-level fields before records had `metadata`.
_LEGACY_METADATA = ("num_steps", "max_operand", "ops")


def problem_fields(problem) -> dict:
  """The fields of a record that say which problem it is (any task's problem)."""
  return {"problem_id": problem.id, "question": problem.question, "answer": problem.answer,
          "metadata": dict(problem.metadata)}


def problem_from_record(record: dict) -> Problem:
  """The problem a record was made from (its reference solution is not stored)."""
  metadata = record.get("metadata")
  if metadata is None:  # A record written before `metadata` existed.
    metadata = {k: record[k] for k in _LEGACY_METADATA if k in record}
  return Problem(id=record["problem_id"], question=record["question"], answer=record["answer"],
                 metadata=dict(metadata))


def sample_solutions(model, params, tokenizer, task, problems: Sequence[Problem], rng: jax.Array, *,
                     num_samples: int, cfg: SamplingConfig, batch_size: int,
                     shared_prefix: bool = True) -> list[dict]:
  """`num_samples` solutions per problem, graded and split into steps by `task` (module docstring).

  `shared_prefix`: a problem's samples read one stored copy of its prompt's keys and values (`generate`).
  """
  prompts = [task.prompt(p, tokenizer) for p in problems]
  generations = generate(model, params, tokenizer, prompts, rng, num_samples=num_samples, cfg=cfg,
                         batch_size=batch_size, step_format=task.step_format, shared_prefix=shared_prefix)
  records = []
  for problem, prompt, gens in zip(problems, prompts, generations):
    samples = [{"text": g.text, "steps": task.step_format.split_text(g.text),
                "extracted": task.grader.extract_answer(g.text),
                "correct": bool(task.grader.is_correct(g.text, problem.answer)), "num_tokens": g.num_tokens,
                "stop_reason": g.stop_reason} for g in gens]
    records.append({**problem_fields(problem), "prompt": prompt, "samples": samples})
  return records


def sampling_spec(cfg: SamplingConfig) -> dict:
  return dataclasses.asdict(cfg)
