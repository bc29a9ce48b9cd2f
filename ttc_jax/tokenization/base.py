"""The tokenizer interface every backend implements (SentencePiece, Hugging Face `tokenizers`).

Sampling, search, training examples and verifiers only see this Protocol, so a model
family brings its own vocabulary without touching them. Ids are plain ints; the
per-vocabulary step tables (`tokenization.steps`) are built from `token_texts()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
  """Text <-> ids, the special ids a sampler needs, and chat rendering.

  Attributes:
    vocab_size: number of ids the tokenizer can produce (a model may have more rows).
    bos_id: the id every prompt starts with, or None when the model takes none (Qwen,
      GPT-2-style vocabularies whose post-processor adds nothing).
    eos_id: the end-of-sequence id written after a training target.
    eos_ids: every id that ends generation (Llama 3.2 Instruct: 128001, 128008, 128009).
    pad_id: padding id: the pad token, else `eos_id`, else 0.
    chat_template: jinja source of the chat template, or None.
  """

  vocab_size: int
  bos_id: int | None
  eos_id: int
  eos_ids: frozenset[int]
  pad_id: int
  chat_template: str | None

  def encode(self, text: str) -> list[int]:
    """Ids of `text`, no special tokens added."""
    ...

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids` up to (excluding) the first EOS; pad and BOS ids are dropped."""
    ...

  def prompt_ids(self, text: str) -> list[int]:
    """Ids a prompt is fed as: [bos_id] + encode(text), or encode(text) without a BOS."""
    ...

  def token_texts(self) -> tuple[str, ...]:
    """Text of every id (length vocab_size); "" for special and control tokens."""
    ...

  def special_tokens(self) -> dict[str, str]:
    """Named special tokens as strings ("bos_token", "eos_token", ...): what templates see."""
    ...

  def apply_chat_template(self, messages: Sequence[Mapping], add_generation_prompt: bool = True,
                          **kwargs) -> str:
    """The rendered chat; raises ValueError if the tokenizer has no template."""
    ...

  def encode_chat(self, messages: Sequence[Mapping], add_generation_prompt: bool = True, **kwargs) -> list[int]:
    """Ids of the rendered chat, encoded without adding special tokens again."""
    ...
