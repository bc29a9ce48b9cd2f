"""Tokenizer directories built at test time, in the layout transformers' `save_pretrained` writes.

  byte_bpe_dir(dir, merges=[("Ċ", "Ċ")], specials=["<eos>"], eos="<eos>")

writes tokenizer.json (byte-level BPE: the 256 byte symbols, then one token per merge,
then the special tokens, ids in that order so they are fixed) and the JSON files next to
it. No text is pre-split (use_regex=False), so merges may join punctuation and newlines
(".\\n\\n" as one token, as Llama 3's vocabulary does).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors


def byte_symbols() -> list[str]:
  """The 256 byte-level symbols (GPT-2's byte -> printable character map), in byte order."""
  return sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda c: _byte_of(c))


def _byte_of(symbol: str) -> int:
  # GPT-2 maps printable bytes to themselves and the rest to 256 + k.
  code = ord(symbol)
  printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
  if code in printable:
    return code
  others = [b for b in range(256) if b not in printable]
  return others[code - 256]


def byte_bpe_dir(directory, *, merges: Sequence[tuple[str, str]] = (), specials: Sequence[str] = (),
                 bos: str | None = None, eos: str | None = None, pad: str | None = None,
                 chat_template: str | None = None, config: dict | None = None,
                 generation_config: dict | None = None) -> pathlib.Path:
  """Writes a byte-level BPE tokenizer directory; `bos` is added before every text when given."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  vocab = {s: i for i, s in enumerate(byte_symbols())}
  for a, b in merges:
    vocab.setdefault(a + b, len(vocab))
  tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=list(merges)))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  tok.decoder = decoders.ByteLevel()
  tok.add_special_tokens(list(specials))
  if bos is not None:
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
  else:
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
  tok.save(str(directory / "tokenizer.json"))
  tok_config = {name: value for name, value in
                (("bos_token", bos), ("eos_token", eos), ("pad_token", pad)) if value is not None}
  tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
  if chat_template is not None:
    tok_config["chat_template"] = chat_template
  (directory / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
  for name, content in (("config.json", config), ("generation_config.json", generation_config)):
    if content is not None:
      (directory / name).write_text(json.dumps(content, indent=2))
  return directory
