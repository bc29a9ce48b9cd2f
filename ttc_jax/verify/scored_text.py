"""The one token layout a verifier is trained on and scored with.

  tokens = [bos] + encode(prompt) + encode(step_0) + [nl] + encode(step_1) + [nl] + ...
                                                      ^ step_end_positions[0]  ^ [1]

The verifier's value at the newline that ends step i is its estimate that the
solution prefix steps[:i+1] leads to a correct answer. Every step, the last one
included, ends with a newline, so a partial solution (beam search) and a
finished one are scored the same way. Training data (`verify.data`) and scoring
(`verify.scoring`) both call `encode_scored_solution`, so the positions read at
scoring time are exactly those trained on.
"""
from typing import Sequence

from ttc_jax.decode.solutions import problem_from_record
from ttc_jax.tasks import synthetic


def encode_scored_solution(tokenizer, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
  """Token ids of prompt + steps and the index of the newline ending each step.

  Args:
    tokenizer: the task tokenizer (`bos_id`, `newline_id`, `encode`).
    prompt: conditioning text, e.g. `synthetic.prompt_text(problem)`; it ends with a
      newline, so encoding it apart from the steps equals encoding the concatenation.
    steps: solution lines without their newlines; none may contain a newline.

  Returns:
    (tokens, step_end_positions): len(step_end_positions) == len(steps); no steps gives
    no positions (such a solution has no score).
  """
  tokens = [tokenizer.bos_id] + tokenizer.encode(prompt)
  ends = []
  for step in steps:
    if "\n" in step:
      raise ValueError(f"a step must be one line, got {step!r}")
    tokens += tokenizer.encode(step) + [tokenizer.newline_id]
    ends.append(len(tokens) - 1)
  return tokens, ends


def record_prompt(record: dict) -> str:
  """The prompt of a samples / labels record, as the policy saw it."""
  return synthetic.prompt_text(problem_from_record(record))
