"""The one prompt layout of the revision model.

  Question: <question>
  Solution 1:
  <step>
  ...
  The answer is 7.
  Solution 2:
  ...
  Solution:
  <- the new attempt (steps + "The answer is N.") is generated / trained from here

Previous attempts are "Solution i:" and the new one plain "Solution:", words the
policy already has as single tokens (5 tokens a header; "Previous attempt i:" would
be 17 with this 192-piece vocabulary). Attempts are numbered 1..k within the context (never by their position in a longer
chain): a chain of 10 revisions shows its last 4 as attempts 1-4, exactly as the k=4
trajectories seen in training. With no previous attempt the prompt is the policy's
own (`synthetic.prompt_text`), so the reviser, initialised from the policy, starts
out as the policy on the first attempt of a chain.
"""
from typing import Sequence

from ttc_jax.tasks import synthetic

MAX_CONTEXT = 4  # Previous attempts kept in the context (the paper's 4).
ATTEMPT_HEADER = "Solution {}:\n"
SOLUTION_HEADER = "Solution:\n"


def attempt_text(text: str) -> str:
  """An attempt as it appears in a context: its non-empty lines joined by newlines.

  Sampled text may end with a newline or hold blank lines (an attempt stopped
  anywhere); normalising keeps each attempt exactly its step lines, so the next
  header always starts a line of its own.
  """
  return "\n".join(synthetic.solution_steps(text))


def question_header(question: str) -> str:
  """The start of every revision prompt of `question`: what all its chains share at every step."""
  return f"Question: {question}\n"


def revision_prompt(question: str, previous_attempts: Sequence[str], max_context: int = MAX_CONTEXT) -> str:
  """Prompt text for a new attempt given the chain so far (oldest first).

  Only the last `max_context` attempts are shown; ends with "Solution:\\n" (the
  newline is a standalone token, so encoding prompt and attempt apart equals
  encoding their concatenation, as `encode_example` requires).
  """
  if max_context < 0:
    raise ValueError(f"max_context={max_context} must be >= 0")
  shown = list(previous_attempts)[-max_context:] if max_context else []
  parts = [question_header(question)]
  for i, attempt in enumerate(shown, 1):
    body = attempt_text(attempt)
    parts.append(ATTEMPT_HEADER.format(i) + (body + "\n" if body else ""))
  parts.append(SOLUTION_HEADER)
  return "".join(parts)


def scored_attempts(question: str, chain: Sequence[str], max_context: int = MAX_CONTEXT
                    ) -> list[tuple[str, list[str]]]:
  """(prompt, steps) of every attempt of a chain as a verifier sees it: attempt t after the
  context it was sampled from, `revision_prompt(question, chain[:t])`, never a later attempt.

  The one definition shared by scoring chains (eval_revisions) and the revision ORM's
  training examples (`verify.data`), so training and scoring read the same positions.
  """
  return [(revision_prompt(question, chain[:t], max_context), synthetic.solution_steps(text))
          for t, text in enumerate(chain)]
