"""The one token layout a verifier is trained on and scored with.

  tokens = [bos] + encode(prompt) + encode(step_0) + [nl] + encode(step_1) + [nl] + ...
                                                      ^ step_end_positions[0]  ^ [1]

([bos] only where the tokenizer has one; [nl] = encode(delimiter), the task's step
delimiter, one token for the synthetic task.)

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
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat


def encode_scored_solution(tokenizer, prompt: str, steps: Sequence[str],
                           step_format: StepFormat = LINE_STEPS) -> tuple[list[int], list[int]]:
  """Token ids of prompt + steps and the index of the newline ending each step.

  Args:
    tokenizer: the task tokenizer (`prompt_ids`, `encode`).
    prompt: conditioning text, e.g. `synthetic.prompt_text(problem)`; it ends with a
      newline, so encoding it apart from the steps equals encoding the concatenation.
    steps: solution lines without their newlines; none may contain a newline.
    step_format: the delimiter written after every step (its last token is read).

  Returns:
    (tokens, step_end_positions): len(step_end_positions) == len(steps); no steps gives
    no positions (such a solution has no score).
  """
  tokens = tokenizer.prompt_ids(prompt)
  delimiter_ids = step_format.delimiter_ids(tokenizer)
  ends = []
  for step in steps:
    if step_format.delimiter in step:
      what = "one line" if step_format.delimiter == "\n" else f"free of the delimiter {step_format.delimiter!r}"
      raise ValueError(f"a step must be {what}, got {step!r}")
    tokens += tokenizer.encode(step) + delimiter_ids
    ends.append(len(tokens) - 1)
  return tokens, ends


def record_prompt(record: dict) -> str:
  """The prompt of a samples / labels record, as the policy saw it: its "prompt" (the task rendered it
  when sampling), else (records written before they held one) the synthetic task's layout."""
  if "prompt" in record:
    return record["prompt"]
  return synthetic.prompt_text(problem_from_record(record))
