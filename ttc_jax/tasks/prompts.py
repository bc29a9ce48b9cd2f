"""Prompt layouts of the benchmark tasks: zero-shot chat for chat models, few-shot text for base models.

Both keep the task's step delimiter: the chat instruction names it, and the few-shot exemplars
write their steps separated by it, so a policy's steps end where the stop rule and the verifier
expect. The text returned is what `tokenizer.prompt_ids` is fed: a chat template's own leading
BOS is removed because `prompt_ids` puts it back (encoding it twice would double it).

  chat (Llama 3.2 Instruct):   <|start_header_id|>user<|end_header_id|>\\n\\n{question}\\n\\n
                               Solve the problem step by step. Separate the steps with a blank line
                               ("\\n\\n"). Put your final answer within \\boxed{}.<|eot_id|>...assistant...
  few_shot:                    Problem:\\n{q_1}\\n\\nSolution:\\n{step}{delim}{step}...\\boxed{a_1}
                               \\n\\n\\nProblem:\\n{question}\\n\\nSolution:\\n
"""

from __future__ import annotations

from ttc_jax.tasks import fewshot
from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.steps import StepFormat

STYLES = ("auto", "chat", "few_shot")
FEW_SHOT_SEPARATOR = "\n\n\nProblem:\n"
# A base model goes on to write a next exemplar after its answer: graders read the text before this.
FEW_SHOT_CUT = "\nProblem:"


def delimiter_words(step_format: StepFormat) -> str:
  """How the instruction asks for the delimiter."""
  if step_format.delimiter == "\n\n":
    return 'Separate the steps with a blank line ("\\n\\n").'
  if step_format.delimiter == "\n":
    return "Write each step on its own line."
  return f"End each step with {step_format.delimiter!r}."


def instruction(step_format: StepFormat) -> str:
  """The zero-shot step-by-step instruction; it ends with `\\boxed{}`, as open math models are prompted."""
  return f"Solve the problem step by step. {delimiter_words(step_format)} Put your final answer within \\boxed{{}}."


def resolve_style(style: str, tokenizer: Tokenizer) -> str:
  """"auto" is "chat" when the tokenizer has a chat template, else "few_shot"."""
  if style not in STYLES:
    raise ValueError(f"prompt style {style!r}; valid: {', '.join(STYLES)}")
  if style == "auto":
    return "chat" if tokenizer.chat_template else "few_shot"
  return style


def _strip_bos(text: str, tokenizer: Tokenizer) -> str:
  if tokenizer.bos_id is None or tokenizer.encode(text)[:1] != [tokenizer.bos_id]:
    return text
  for token in tokenizer.special_tokens().values():
    if text.startswith(token) and tokenizer.encode(token) == [tokenizer.bos_id]:
      return text[len(token):]
  raise ValueError(f"{tokenizer!r}: the chat template writes the BOS id {tokenizer.bos_id} first, but no named "
                   "special token spells it, so the prompt cannot be fed without doubling it")


def chat_prompt(question: str, tokenizer: Tokenizer, step_format: StepFormat) -> str:
  """One user turn (the question, then the instruction), rendered with the generation prompt."""
  if not tokenizer.chat_template:
    raise ValueError(f"task.prompt='chat' but {tokenizer!r} has no chat template; use 'few_shot' for a base model")
  messages = [{"role": "user", "content": f"{question}\n\n{instruction(step_format)}"}]
  return _strip_bos(tokenizer.apply_chat_template(messages, add_generation_prompt=True), tokenizer)


def few_shot_prompt(question: str, step_format: StepFormat, exemplars=fewshot.EXEMPLARS) -> str:
  """Worked exemplars (steps joined by the delimiter), then the question and an open "Solution:"."""
  shots = [f"{q}\n\nSolution:\n{step_format.delimiter.join(steps)}" for q, steps in exemplars]
  return "Problem:\n" + FEW_SHOT_SEPARATOR.join(shots + [f"{question}\n\nSolution:\n"])


def render(style: str, question: str, tokenizer: Tokenizer, step_format: StepFormat) -> str:
  """The prompt text of `question` in `style` ("auto", "chat" or "few_shot")."""
  if resolve_style(style, tokenizer) == "chat":
    return chat_prompt(question, tokenizer, step_format)
  return few_shot_prompt(question, step_format)
