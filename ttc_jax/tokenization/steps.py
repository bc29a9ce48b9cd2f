"""Step format: the delimiter text between solution steps and its on-device stop rule.

A step ends at the delimiter ("\\n" for the synthetic task, "\\n\\n" for MATH-style
models). BPE merges newlines with their neighbours, so the rule works on token texts,
not on one id: token t ends a step if
  * its text contains the delimiter (Llama 3: "\\n\\n" is id 271, ".\\n\\n" id 382), or
  * the delimiter straddles it and the previous token: the previous text ends with
    delimiter[:k] and t's starts with delimiter[k:] for some cut k (GPT-2-style
    vocabularies write "\\n\\n" inside text as "\\n" "\\n").
A delimiter spread over three or more tokens is not seen. The rule only looks back
within the tokens of one decode call (the previous token of the first one is "none"),
so the end of a prompt or of the previous step never ends the next step early.

`StopRule` holds boolean tables of length vocab (built once per tokenizer, cached) and
is a pytree of arrays: jitted samplers take it as an argument, so a 150k vocabulary is
neither a compile-time constant nor a reason to recompile (one compile per shape).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.tokenization.base import Tokenizer


@flax.struct.dataclass
class StopRule:
  """Which sampled token ends generation (EOS) or a step; gathers on the device."""
  # Tables are numpy arrays when built (see `_rule`), device arrays inside jitted programs.
  eos_V: jax.Array  # bool: id ends the sequence.
  contains_V: jax.Array  # bool: id's text contains the delimiter.
  head_KxV: jax.Array  # bool [cuts, V]: text ends with delimiter[:k + 1] (cut k).
  tail_KxV: jax.Array  # bool [cuts, V]: text starts with delimiter[k + 1:].
  # The delimiter's id when it is exactly one token (-1 otherwise): a single-token
  # delimiter lets the PRM feed stand it in for EOS (search.prm). Static: it picks code.
  delimiter_id: int = flax.struct.field(pytree_node=False, default=-1)

  @classmethod
  def from_ids(cls, vocab_size: int, eos_ids: Iterable[int] = (), delimiter_id: int | None = None) -> StopRule:
    """A rule on bare ids (scripted models, benchmarks): EOS = `eos_ids`, one delimiter token.

    Negative ids are ignored (a rule that never stops on them).
    """
    eos = np.zeros(vocab_size, bool)
    eos[[i for i in eos_ids if i >= 0]] = True
    contains = np.zeros(vocab_size, bool)
    has_delimiter = delimiter_id is not None and delimiter_id >= 0
    if has_delimiter:
      contains[delimiter_id] = True
    empty = np.zeros((0, vocab_size), bool)
    return cls(eos_V=eos, contains_V=contains, head_KxV=empty, tail_KxV=empty,
               delimiter_id=int(delimiter_id) if has_delimiter else -1)

  def is_eos(self, token_B: jax.Array) -> jax.Array:
    """bool per row; ids past the table (padded model vocabularies) are never EOS."""
    return jnp.asarray(self.eos_V).at[token_B].get(mode="fill", fill_value=False)

  def ends_step(self, prev_B: jax.Array, token_B: jax.Array) -> jax.Array:
    """bool per row: `token_B` completes the delimiter. `prev_B` < 0 means no previous token."""
    hit_B = jnp.asarray(self.contains_V).at[token_B].get(mode="fill", fill_value=False)
    if self.head_KxV.shape[0]:  # Static: a one-character delimiter has no cuts.
      head_KxB = jnp.asarray(self.head_KxV).at[:, jnp.where(prev_B < 0, self.head_KxV.shape[1], prev_B)].get(
          mode="fill", fill_value=False)
      tail_KxB = jnp.asarray(self.tail_KxV).at[:, token_B].get(mode="fill", fill_value=False)
      hit_B = hit_B | jnp.any(head_KxB & tail_KxB, axis=0)
    return hit_B


@dataclasses.dataclass(frozen=True)
class WithStopRule:
  """A jitted program with its `stop` argument bound: called (and lowered) like the
  program without it, while the tables still enter as arguments, not constants."""
  program: Any
  stop: StopRule

  def __call__(self, *args, **kwargs):
    return self.program(*args, stop=self.stop, **kwargs)

  def lower(self, *args, **kwargs):
    return _Bound(self.program.lower(*args, stop=self.stop, **kwargs), self.stop)


@dataclasses.dataclass(frozen=True)
class _Bound:
  """A lowered or compiled program with `stop` bound: `compile()` keeps it bound, so
  `fn.lower(...).compile()(params, ...)` is called like the program without it."""
  stage: Any
  stop: StopRule

  def compile(self, *args, **kwargs):
    return _Bound(self.stage.compile(*args, **kwargs), self.stop)

  def __call__(self, *args, **kwargs):
    return self.stage(*args, stop=self.stop, **kwargs)

  def __getattr__(self, name):  # as_text(), cost_analysis(), memory_analysis(), ...
    return getattr(self.stage, name)


def texts_tables(texts: Sequence[str], delimiter: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(contains_V, head_KxV, tail_KxV) of the step rule for these token texts (module docstring)."""
  contains = np.array([delimiter in t for t in texts], bool)
  cuts = range(1, len(delimiter))
  head = np.array([[t.endswith(delimiter[:k]) and t != "" for t in texts] for k in cuts], bool)
  tail = np.array([[t.startswith(delimiter[k:]) and t != "" for t in texts] for k in cuts], bool)
  return contains, head.reshape(len(cuts), len(texts)), tail.reshape(len(cuts), len(texts))


@dataclasses.dataclass(frozen=True)
class StepFormat:
  """How a task writes steps: `delimiter` after each one ("\\n" or "\\n\\n")."""
  delimiter: str = "\n"

  def __post_init__(self):
    if not self.delimiter:
      raise ValueError("StepFormat.delimiter: must not be empty")

  def rule(self, tokenizer: Tokenizer, vocab_size: int | None = None) -> StopRule:
    """The stop rule for this tokenizer (cached; tables padded with False to `vocab_size`)."""
    return _rule(tokenizer, self.delimiter, vocab_size or tokenizer.vocab_size)

  def delimiter_ids(self, tokenizer: Tokenizer) -> list[int]:
    return tokenizer.encode(self.delimiter)

  def split_text(self, text: str) -> list[str]:
    """Step texts of a decoded solution: the pieces between delimiters, empty ones dropped (for
    "\n", `synthetic.solution_steps`). Prefer `split` where the ids are at hand: BPE can hide a
    delimiter the policy's tokens did not end a step at."""
    return [step for step in text.split(self.delimiter) if step]

  def split(self, tokenizer: Tokenizer, ids: Sequence[int]) -> list[str]:
    """Step texts of a generated solution, cut where the policy's own tokens ended steps.

    Never re-encodes: encode(a) + encode(b) != encode(a + b) when `a` ends with "\\n\\n".
    Cuts follow `StopRule.ends_step` (previous token reset after each cut, as in one
    decode call per step); EOS ends the text. A step's text drops the delimiter at its
    end (a token with text after the delimiter keeps all of it); steps with no text left
    are dropped (as `synthetic.solution_steps`).
    """
    texts = tokenizer.token_texts()
    eos = tokenizer.eos_ids
    contains, head, tail = _tables(tokenizer, self.delimiter)
    steps, current, prev = [], [], -1
    for t in (int(i) for i in ids):
      if t in eos:
        break
      current.append(t)
      in_vocab = 0 <= t < len(texts)
      pair = prev >= 0 and in_vocab and bool(np.any(head[:, prev] & tail[:, t]))
      if in_vocab and (contains[t] or pair):
        steps.append(current)
        current, prev = [], -1
      else:
        prev = t
    if current:
      steps.append(current)
    out = []
    for step in steps:
      text = tokenizer.decode(step).removesuffix(self.delimiter)
      if text:
        out.append(text)
    return out


LINE_STEPS = StepFormat("\n")
PARAGRAPH_STEPS = StepFormat("\n\n")


@functools.lru_cache(maxsize=16)
def _tables(tokenizer: Tokenizer, delimiter: str):
  return texts_tables(tokenizer.token_texts(), delimiter)


@functools.lru_cache(maxsize=16)
def _rule(tokenizer: Tokenizer, delimiter: str, vocab_size: int) -> StopRule:
  contains, head, tail = _tables(tokenizer, delimiter)
  if vocab_size < len(contains):
    raise ValueError(f"vocab_size={vocab_size} is smaller than the tokenizer's {len(contains)} ids ({tokenizer!r})")
  pad = vocab_size - len(contains)
  eos = np.zeros(vocab_size, bool)
  eos[sorted(tokenizer.eos_ids)] = True
  delimiter_ids = tokenizer.encode(delimiter)
  single = len(delimiter_ids) == 1 and tokenizer.token_texts()[delimiter_ids[0]] == delimiter
  # Host arrays: cached across calls, they must not be committed to whichever devices (or
  # mesh context) the first caller had; each jitted program places them with its own inputs.
  return StopRule(eos_V=eos, contains_V=np.pad(contains, (0, pad)), head_KxV=np.pad(head, ((0, 0), (0, pad))),
                  tail_KxV=np.pad(tail, ((0, 0), (0, pad))),
                  delimiter_id=delimiter_ids[0] if single else -1)
