"""`load_tokenizer(path)`: picks the backend from what the path holds."""

from __future__ import annotations

import functools
import os
import pathlib

from ttc_jax import storage
from ttc_jax.tokenization.base import Tokenizer
from ttc_jax.tokenization.hf import HFTokenizer
from ttc_jax.tokenization.sentencepiece import SentencePieceTokenizer


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Tokenizer:
  p = pathlib.Path(path)
  if p.is_file():
    if p.suffix == ".model":
      return SentencePieceTokenizer(p)
    if p.name == "tokenizer.json":
      return HFTokenizer(p.parent)
    raise ValueError(f"{p}: not a tokenizer: expected a SentencePiece .model file, or a directory "
                     "with tokenizer.json or tokenizer.model")
  if (p / "tokenizer.json").is_file():
    return HFTokenizer(p)
  if (p / "tokenizer.model").is_file():
    return SentencePieceTokenizer(p / "tokenizer.model")
  raise FileNotFoundError(f"{p}: tokenizer missing: no tokenizer.json (Hugging Face) and no tokenizer.model "
                          "(SentencePiece)")


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
  """Loads (and caches) a tokenizer.

  `path`: a SentencePiece `.model` file; a directory with tokenizer.json (Hugging Face,
  preferred when both are present); a directory with tokenizer.model only (SentencePiece).
  """
  # SentencePiece and `tokenizers` read local files only: a gs:// tokenizer is read from a downloaded copy.
  return _load(storage.local_copy(str(path)))
