"""SentencePiece backend: the synthetic task's model with this project's fixed special ids.

pad=0, eos=1, bos=2, unk=3 are checked on load (training examples, the sampler and the
shipped checkpoints rely on them); EOS is the only stop id and every prompt starts with
the BOS. SentencePiece models carry no chat template.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence

import sentencepiece as spm

PAD_ID, EOS_ID, BOS_ID, UNK_ID = 0, 1, 2, 3
NEWLINE = "\n"


class SentencePieceTokenizer:
  """Text <-> token ids with the fixed special ids of this project (see module docstring)."""

  # Fixed for every model built here (checked in __init__), so plain class attributes.
  pad_id, eos_id, bos_id, unk_id = PAD_ID, EOS_ID, BOS_ID, UNK_ID
  eos_ids = frozenset({EOS_ID})
  chat_template = None

  def __init__(self, model_path: str | os.PathLike):
    self.model_path = str(model_path)
    self._sp = spm.SentencePieceProcessor(model_file=self.model_path)
    got = (self._sp.pad_id(), self._sp.eos_id(), self._sp.bos_id(), self._sp.unk_id())
    if got != (PAD_ID, EOS_ID, BOS_ID, UNK_ID):
      raise ValueError(f"{self.model_path}: special ids (pad, eos, bos, unk) = {got}, "
                       f"expected {(PAD_ID, EOS_ID, BOS_ID, UNK_ID)}")
    self.newline_id = self._sp.piece_to_id(NEWLINE)
    if self._sp.id_to_piece(self.newline_id) != NEWLINE:
      raise ValueError(f"{self.model_path}: no dedicated newline piece")

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`, without bos/eos."""
    return self._sp.encode(text)

  def decode(self, ids: Sequence[int]) -> str:
    """Text of `ids` up to (excluding) the first eos; pad and bos are dropped."""
    ids = [int(i) for i in ids]
    if EOS_ID in ids:
      ids = ids[:ids.index(EOS_ID)]
    return self._sp.decode([i for i in ids if i not in (PAD_ID, BOS_ID)])

  def prompt_ids(self, text: str) -> list[int]:
    return [BOS_ID] + self.encode(text)

  def id_to_piece(self, i: int) -> str:
    return self._sp.id_to_piece(int(i))

  @functools.cache
  def token_texts(self) -> tuple[str, ...]:
    # decode() of one piece turns "▁" into a space and byte pieces into their byte;
    # control and unknown pieces have no text.
    sp = self._sp
    return tuple("" if sp.is_control(i) or sp.is_unknown(i) else sp.decode([i]) for i in range(self.vocab_size))

  def special_tokens(self) -> dict[str, str]:
    return {name: self._sp.id_to_piece(i) for name, i in
            (("bos_token", BOS_ID), ("eos_token", EOS_ID), ("unk_token", UNK_ID), ("pad_token", PAD_ID))}

  def apply_chat_template(self, messages: Sequence[Mapping], add_generation_prompt: bool = True, **kwargs) -> str:
    raise ValueError(f"{self.model_path}: a SentencePiece model has no chat template")

  def encode_chat(self, messages: Sequence[Mapping], add_generation_prompt: bool = True, **kwargs) -> list[int]:
    return self.encode(self.apply_chat_template(messages, add_generation_prompt, **kwargs))

  def __repr__(self):
    return f"Tokenizer({self.model_path!r}, vocab_size={self.vocab_size})"
