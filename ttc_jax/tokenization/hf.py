"""Hugging Face backend: a checkpoint directory's tokenizer.json read with the `tokenizers` package.

Files read (all but tokenizer.json optional):
  tokenizer.json          the vocabulary, normaliser, pre-tokeniser, post-processor;
  tokenizer_config.json   named special tokens, chat_template (string or named list);
  special_tokens_map.json named special tokens of older checkpoints (tokenizer_config wins);
  config.json, generation_config.json  eos_token_id (an int or a list): with the
                          tokenizer's eos token they make the set of stop ids;
  chat_template.jinja     the chat template (wins over tokenizer_config's, as in transformers).

`bos_id` is the id the tokenizer's post-processor puts before a single text (Llama 3:
<|begin_of_text|>), None when it adds nothing (Qwen, SmolLM2), whatever token the config
names `bos_token`: prompts are then fed exactly as transformers encodes them.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
from collections.abc import Mapping, Sequence

import tokenizers

from ttc_jax.tokenization import chat

_SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _read_json(path: pathlib.Path) -> dict:
  if not path.is_file():
    return {}
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from None


def _token_text(value) -> str | None:
  """A special token entry: a string, or an AddedToken dict {"content": ...}."""
  if isinstance(value, dict):
    return value.get("content")
  return value


def _ids(value) -> list[int]:
  """eos_token_id as configs write it: None, an int or a list of ints."""
  if value is None:
    return []
  return [int(v) for v in (value if isinstance(value, list) else [value])]


def _template(config: dict, directory: pathlib.Path) -> str | None:
  jinja_file = directory / "chat_template.jinja"
  if jinja_file.is_file():
    return jinja_file.read_text(encoding="utf-8")
  template = config.get("chat_template")
  if isinstance(template, list):  # Named templates: [{"name": "default", "template": ...}, ...].
    named = {t.get("name"): t.get("template") for t in template}
    if "default" not in named:
      raise ValueError(f"{directory / 'tokenizer_config.json'}: chat_template lists {sorted(named)}, no 'default'")
    template = named["default"]
  return template


class HFTokenizer:
  """The `Tokenizer` interface over a directory written by transformers' `save_pretrained`."""

  def __init__(self, directory: str | os.PathLike):
    self.directory = pathlib.Path(directory)
    path = self.directory / "tokenizer.json"
    if not path.is_file():
      raise FileNotFoundError(f"{self.directory}: tokenizer missing: no tokenizer.json")
    try:
      self._tok = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception ("Model missing. at line 1 column 2").
      raise ValueError(f"{path}: not a tokenizers JSON file that the `tokenizers` library can read: {e}") from e
    config = {**_read_json(self.directory / "special_tokens_map.json"),
              **_read_json(self.directory / "tokenizer_config.json")}
    self._special = {name: _token_text(config.get(name)) for name in _SPECIAL_NAMES
                     if _token_text(config.get(name)) is not None}
    self.chat_template = _template(config, self.directory)
    self.vocab_size = max(self._tok.get_vocab(with_added_tokens=True).values()) + 1

    eos_token_id = self._named_id("eos_token")
    from_configs = (_ids(_read_json(self.directory / "generation_config.json").get("eos_token_id"))
                    + _ids(_read_json(self.directory / "config.json").get("eos_token_id")))
    eos_ids = ([eos_token_id] if eos_token_id is not None else []) + from_configs
    if not eos_ids:
      raise ValueError(f"{self.directory}: no end-of-sequence id (eos_token in tokenizer_config.json or "
                       "eos_token_id in config.json / generation_config.json)")
    self.eos_id = eos_ids[0]
    self.eos_ids = frozenset(eos_ids)
    pad = self._named_id("pad_token")
    self.pad_id = pad if pad is not None else self.eos_id
    self.bos_id = self._added_prefix()

  def _named_id(self, name: str) -> int | None:
    text = self._special.get(name)
    if text is None:
      return None
    i = self._tok.token_to_id(text)
    if i is None:
      raise ValueError(f"{self.directory}: {name} {text!r} is not in tokenizer.json's vocabulary")
    return i

  def _added_prefix(self) -> int | None:
    """The id the post-processor puts before a text, if any (probed on one sentence)."""
    plain = self._tok.encode("a", add_special_tokens=False).ids
    full = self._tok.encode("a", add_special_tokens=True).ids
    if len(full) > len(plain) and full[1:1 + len(plain)] == plain:
      return full[0]
    return None

  def encode(self, text: str) -> list[int]:
    return self._tok.encode(text, add_special_tokens=False).ids

  def decode(self, ids: Sequence[int]) -> str:
    ids = [int(i) for i in ids]
    stop = next((k for k, i in enumerate(ids) if i in self.eos_ids), len(ids))
    drop = {self.pad_id, self.bos_id}
    return self._tok.decode([i for i in ids[:stop] if i not in drop], skip_special_tokens=False)

  def prompt_ids(self, text: str) -> list[int]:
    return ([] if self.bos_id is None else [self.bos_id]) + self.encode(text)

  @functools.cache
  def token_texts(self) -> tuple[str, ...]:
    # One batched call: decoding 150k ids one by one from Python takes seconds.
    return tuple(self._tok.decode_batch([[i] for i in range(self.vocab_size)], skip_special_tokens=True))

  def special_tokens(self) -> dict[str, str]:
    return dict(self._special)

  def apply_chat_template(self, messages: Sequence[Mapping], add_generation_prompt: bool = True, **kwargs) -> str:
    if self.chat_template is None:
      raise ValueError(f"{self.directory}: no chat template (neither chat_template.jinja nor "
                       "tokenizer_config.json's chat_template)")
    return chat.render_chat(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                            special_tokens=self._special, **kwargs)

  def encode_chat(self, messages: Sequence[Mapping], add_generation_prompt: bool = True, **kwargs) -> list[int]:
    # The template writes its own BOS where the model wants one: add no special tokens again.
    return self.encode(self.apply_chat_template(messages, add_generation_prompt, **kwargs))

  def __repr__(self):
    return f"HFTokenizer({str(self.directory)!r}, vocab_size={self.vocab_size})"
