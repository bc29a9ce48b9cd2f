"""Monte Carlo step labels (Math-Shepherd style, as in the paper).

For a sampled solution with steps s_1..s_n, the label of step i is the
fraction of R rollouts from the prefix (s_1..s_i) that end with the correct
answer. The last step's label is the solution's own correctness (no rollout
needed: nothing is left to write). All prefixes of a shard go to the device
together, R rollouts per prefix sharing one prefill.
"""
from typing import Sequence

import jax

from ttc_jax.decode.generate import encode_prompt, generate
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat
from ttc_jax.verify.scored_text import record_prompt


def prefix_prompt(problem_prompt: str, steps: Sequence[str], i: int, delimiter: str = "\n") -> str:
  """The policy's context after the first i steps (each ends with the delimiter, as it was generated)."""
  return problem_prompt + "".join(step + delimiter for step in steps[:i])


def label_records(model, params, tokenizer, grader, records: Sequence[dict], rng: jax.Array, *, rollouts: int,
                  cfg: SamplingConfig, batch_size: int, step_format: StepFormat = LINE_STEPS,
                  shared_prefix: bool = True) -> list[dict]:
  """Adds `step_labels` (one float per step) and rollout accounting to each sample of each record.

  Prefixes are the record's prompt plus steps, each followed by `step_format`'s delimiter (the task's).
  `shared_prefix`: a prefix's rollouts read one stored copy of its keys and values (`generate`).
  """
  prompts, owners = [], []  # owners[k] = (record index, sample index, step index) of prompts[k]
  for r, record in enumerate(records):
    problem_prompt = record_prompt(record)
    for s, sample in enumerate(record["samples"]):
      for i in range(1, len(sample["steps"])):
        prompts.append(prefix_prompt(problem_prompt, sample["steps"], i, step_format.delimiter))
        owners.append((r, s, i - 1))
  generations = generate(model, params, tokenizer, prompts, rng, num_samples=rollouts, cfg=cfg,
                         batch_size=batch_size, step_format=step_format,
                         shared_prefix=shared_prefix) if prompts else []

  out = [{**record, "samples": [dict(sample) for sample in record["samples"]]} for record in records]
  for record in out:
    for sample in record["samples"]:
      n = len(sample["steps"])
      sample["step_labels"] = [0.0] * n
      if n:
        sample["step_labels"][-1] = float(sample["correct"])
      sample["rollouts_per_step"] = rollouts
      sample["rollout_tokens"] = 0
      sample["rollout_prompt_tokens"] = 0
  for prompt, (r, s, i), gens in zip(prompts, owners, generations):
    record, sample = out[r], out[r]["samples"][s]
    # The solution is graded, not the prompt: a few-shot prompt holds other problems' answers.
    solution_prefix = prompt[len(record_prompt(record)):]
    correct = [grader.is_correct(solution_prefix + g.text, record["answer"]) for g in gens]
    sample["step_labels"][i] = sum(correct) / len(correct)
    sample["rollout_tokens"] += sum(g.num_tokens for g in gens)
    sample["rollout_prompt_tokens"] += len(encode_prompt(tokenizer, prompt))  # One prefill per prefix.
  return out
