"""Sample and grade solutions to task problems: the records every later stage reads.

One record per problem:
  {"problem_id", "question", "answer", "num_steps", "max_operand", "ops",
   "samples": [{"text", "steps", "extracted", "correct", "num_tokens", "stop_reason"}, ...]}
"""
import dataclasses
from typing import Sequence

import jax

from ttc_jax.decode.generate import generate
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.tasks import synthetic


def problem_fields(problem: synthetic.Problem) -> dict:
  return {"problem_id": problem.id, "question": problem.question, "answer": problem.answer,
          "num_steps": problem.num_steps, "max_operand": problem.max_operand, "ops": problem.ops}


def problem_from_record(record: dict) -> synthetic.Problem:
  """The problem a record was made from (its reference solution is not stored)."""
  return synthetic.Problem(id=record["problem_id"], question=record["question"], solution="",
                           answer=record["answer"], num_steps=record["num_steps"],
                           max_operand=record["max_operand"], ops=record["ops"])


def sample_solutions(model, params, tokenizer, grader, problems: Sequence[synthetic.Problem], rng: jax.Array, *,
                     num_samples: int, cfg: SamplingConfig, batch_size: int) -> list[dict]:
  """`num_samples` graded solutions per problem (see the module docstring for the record)."""
  generations = generate(model, params, tokenizer, [synthetic.prompt_text(p) for p in problems], rng,
                         num_samples=num_samples, cfg=cfg, batch_size=batch_size)
  records = []
  for problem, gens in zip(problems, generations):
    samples = [{"text": g.text, "steps": synthetic.solution_steps(g.text), "extracted": grader.extract_answer(g.text),
                "correct": bool(grader.is_correct(g.text, problem.answer)), "num_tokens": g.num_tokens,
                "stop_reason": g.stop_reason} for g in gens]
    records.append({**problem_fields(problem), "samples": samples})
  return records


def sampling_spec(cfg: SamplingConfig) -> dict:
  return dataclasses.asdict(cfg)
