"""Verifier formats: how a verifier's input is laid out and where a step score is read.

A verifier is model params + a format. A format lays a problem and its steps out as

  prompt segment + step segment(0) + step segment(1) + ...

each segment encoded on its own, so a search can feed a verifier one step at a time
(tests check that the segments equal the encoding of the reference full string), and
names the token of each step segment whose output is read, and the head that reads it
(`heads.Reader`). Registry: `FORMATS` (by name), `get_format`.

  ttc            this project's PRM / ORM: [bos] + prompt + step + delimiter + ...,
                 sigmoid(value) at the delimiter (`verify.scored_text`); the delimiter is the
                 task's (`get_format("ttc", task.step_format.delimiter)`), "\\n" by default.
  qwen_prm       Qwen2.5-Math-PRM: chat (system prompt, user = problem), the assistant
                 turn is the steps each followed by <extra_0>; class 1 of the 2-class head there.
  math_shepherd  question + " " + steps, each ending " ки", joined by "\n"; P("+") of the
                 "+" / "-" LM logits at the tag.
  rlhflow        Llama 3.1 chat (RLHFlow Llama3.1-8B PRMs): one user turn per step (the first
                 prefixed by the question and a space), each assistant turn "+"; P("+") of the
                 "+" / "-" logits at the token before the assistant's "+".
  skywork        Skywork-o1-Open-PRM: bos + problem + "\n", each step's own encoding followed by
                 the "\n" separator id; sigmoid of the value head (v_head.summary) there.

On the device (`search.verifier_feed`) a step is fed as the policy's own tokens between
constant wrapper ids (`Wrapper`) when the verifier shares the policy's vocabulary.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from ttc_jax.verify.heads import Reader


@dataclasses.dataclass(frozen=True)
class Wrapper:
  """Constant ids around a step's own tokens, for feeding policy tokens on the device.

  Step i is fed as (first_before if i == 0 else before) + step tokens + after, and read
  `read_from_end` ids from the block's end (-1: its last id). `feed_prompt_ids` (per
  problem, built on the host once) precede step 0; `join` is text between them and step 0,
  merged into the step's first token as the tokenizer would merge it.
  """
  first_before: tuple[int, ...]
  before: tuple[int, ...]
  after: tuple[int, ...]
  read_from_end: int = -1
  join: str = ""

  @property
  def max_len(self) -> int:
    return max(len(self.first_before), len(self.before)) + len(self.after)


class VerifierFormat:
  """Base: subclasses set `name` and implement the layout; see the module docstring.

  `problem` is the question for off-the-shelf formats and the policy's prompt text for `ttc`.
  """
  name = ""

  def reader(self, tok) -> Reader:
    raise NotImplementedError

  def prompt_ids(self, tok, problem: str) -> list[int]:
    raise NotImplementedError

  def step_ids(self, tok, problem: str, index: int, step: str) -> tuple[list[int], int]:
    """(ids of step `index`'s segment, index of the read token within them, negative from the end)."""
    raise NotImplementedError

  def wrapper(self, tok) -> Wrapper | None:
    """Constant wrapper ids for on-device feeding, or None when a step's segment is not constant around it."""
    return None

  def feed_prompt_ids(self, tok, problem: str) -> list[int]:
    """The prompt a search feeds before step 0, on the device or from the host.

    It differs from `prompt_ids` for rlhflow, whose step 0 turn opens with the question: a search
    puts the question here once, so that every round's block only holds a step (`feed_step_ids`).
    """
    return self.prompt_ids(tok, problem)

  def feed_step_ids(self, tok, problem: str, index: int, step: str) -> tuple[list[int], int]:
    """`step_ids` after `feed_prompt_ids`: together they are `encode`'s ids (tested)."""
    return self.step_ids(tok, problem, index, step)

  def encode(self, tok, problem: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
    """(ids of the whole layout, the read position of every step) for full-solution scoring."""
    ids, reads = list(self.prompt_ids(tok, problem)), []
    for i, step in enumerate(steps):
      seg, read = self.step_ids(tok, problem, i, step)
      ids += seg
      reads.append(len(ids) + read if read < 0 else len(ids) - len(seg) + read)
    return ids, reads

  def __repr__(self):
    return f"{type(self).__name__}()"


def _single_id(tok, text: str) -> int:
  ids = tok.encode(text)
  if len(ids) != 1:
    raise ValueError(f"{text!r} must be one token of the verifier's vocabulary, got ids {ids} ({tok!r})")
  return ids[0]


@dataclasses.dataclass(frozen=True, repr=False)
class TtcFormat(VerifierFormat):
  """This project's layout (`verify.scored_text.encode_scored_solution`)."""
  delimiter: str = "\n"
  name = "ttc"

  def reader(self, tok) -> Reader:
    return Reader("value")

  def prompt_ids(self, tok, problem):
    return tok.prompt_ids(problem)

  def step_ids(self, tok, problem, index, step):
    return tok.encode(step) + tok.encode(self.delimiter), -1

  def encode(self, tok, problem, steps):
    from ttc_jax.tokenization.steps import StepFormat  # Import cycle: scored_text imports the task.
    from ttc_jax.verify.scored_text import encode_scored_solution
    return encode_scored_solution(tok, problem, steps, StepFormat(self.delimiter))


QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclasses.dataclass(frozen=True, repr=False)
class QwenPrmFormat(VerifierFormat):
  system: str = QWEN_SYSTEM
  step_tag: str = "<extra_0>"
  name = "qwen_prm"

  def reader(self, tok) -> Reader:
    return Reader("classes")

  def prompt_ids(self, tok, problem):
    messages = [{"role": "system", "content": self.system}, {"role": "user", "content": problem}]
    return tok.encode(tok.apply_chat_template(messages, add_generation_prompt=True))

  def step_ids(self, tok, problem, index, step):
    return tok.encode(step) + [_single_id(tok, self.step_tag)], -1

  def wrapper(self, tok):
    return Wrapper(first_before=(), before=(), after=(_single_id(tok, self.step_tag),))


@dataclasses.dataclass(frozen=True, repr=False)
class MathShepherdFormat(VerifierFormat):
  step_tag: str = " ки"
  joiner: str = "\n"  # Between a tag and the next step.
  name = "math_shepherd"

  def reader(self, tok) -> Reader:
    ids = tok.encode("+ -")  # The model card's candidate tokens: "+" and the "-" after a space.
    return Reader("token_pair", good_id=ids[0], bad_id=ids[-1])

  def prompt_ids(self, tok, problem):
    return tok.prompt_ids(problem)

  def step_ids(self, tok, problem, index, step):
    # The space (or joiner) starts the segment: BPE attaches it to the step's first word.
    return tok.encode((" " if index == 0 else self.joiner) + step + self.step_tag), -1

  def wrapper(self, tok):
    return None  # The space / joiner merges into the step's first token: not constant ids.


LLAMA3_USER = "<|start_header_id|>user<|end_header_id|>\n\n"
LLAMA3_ASSISTANT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


@dataclasses.dataclass(frozen=True, repr=False)
class RlhflowFormat(VerifierFormat):
  good: str = "+"
  bad: str = "-"
  name = "rlhflow"

  def reader(self, tok) -> Reader:
    return Reader("token_pair", good_id=tok.encode(self.good)[-1], bad_id=tok.encode(self.bad)[-1])

  def _answer_ids(self, tok) -> list[int]:
    return tok.encode(self.good + "<|eot_id|>")

  def prompt_ids(self, tok, problem):
    # Everything the template writes before the first user turn (bos, the system block with its date).
    text = tok.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": self.good}],
                                   add_generation_prompt=False)
    return tok.encode(text[:text.index(LLAMA3_USER)])

  def step_ids(self, tok, problem, index, step):
    content = (problem + " " + step if index == 0 else step).strip()  # The template trims every turn.
    head = tok.encode(LLAMA3_USER + content + LLAMA3_ASSISTANT)
    return head + self._answer_ids(tok), -1 - len(self._answer_ids(tok))

  def wrapper(self, tok):
    answer = tuple(self._answer_ids(tok))
    return Wrapper(first_before=(), before=tuple(tok.encode(LLAMA3_USER)),
                   after=tuple(tok.encode(LLAMA3_ASSISTANT)) + answer, read_from_end=-1 - len(answer), join=" ")

  def feed_prompt_ids(self, tok, problem):
    # The question opens the first user turn; the space after it is joined to step 0's first token.
    return self.prompt_ids(tok, problem) + tok.encode(LLAMA3_USER + problem.lstrip())

  def feed_step_ids(self, tok, problem, index, step):
    if index:
      return self.step_ids(tok, problem, index, step)
    # Step 0's turn without the question: " " + step, trimmed at the end as the template trims the turn.
    # BPE starts a word at the space (Llama 3's pre-tokeniser), so this is the rest of step_ids' encoding.
    answer = self._answer_ids(tok)
    return tok.encode((" " + step).rstrip() + LLAMA3_ASSISTANT) + answer, -1 - len(answer)


@dataclasses.dataclass(frozen=True, repr=False)
class SkyworkFormat(VerifierFormat):
  separator: str = "\n"
  name = "skywork"

  def reader(self, tok) -> Reader:
    return Reader("value")

  def _separator_id(self, tok) -> int:
    return tok.encode(self.separator)[-1]

  def prompt_ids(self, tok, problem):
    bos = tok.special_tokens().get("bos_token")
    if bos is None:
      raise ValueError(f"the skywork format starts with the tokenizer's bos_token, and {tok!r} names none")
    return tok.encode(bos + problem + "\n")

  def step_ids(self, tok, problem, index, step):
    return tok.encode(step) + [self._separator_id(tok)], -1

  def wrapper(self, tok):
    return Wrapper(first_before=(), before=(), after=(self._separator_id(tok),))


FORMATS: dict[str, VerifierFormat] = {f.name: f for f in (TtcFormat(), QwenPrmFormat(), MathShepherdFormat(),
                                                           RlhflowFormat(), SkyworkFormat())}


def get_format(name: str, delimiter: str | None = None) -> VerifierFormat:
  """The format `name`; `delimiter` (the task's step delimiter, `StepFormat.delimiter`) sets the
  one written after every step of the `ttc` layout (None: "\\n"). Off-the-shelf formats ignore it:
  their step separators are their own, part of what the PRM was trained on."""
  if name not in FORMATS:
    raise ValueError(f"verifier format {name!r} is not one of {sorted(FORMATS)}")
  if name == TtcFormat.name and delimiter is not None:
    return TtcFormat(delimiter)
  return FORMATS[name]
