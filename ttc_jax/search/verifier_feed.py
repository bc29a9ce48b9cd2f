"""How a search feeds each new step to its verifier: on the device, or re-tokenised on the host.

The verifier keeps its own KV cache, slot index and slot budget (`VerifierSpec.slots`), so
its prompt and per-step blocks need not line up with the policy's. A round feeds every
row one block of `block` slots and reads one score in it. Three modes:

  ttc     this project's PRM: the policy's step tokens as sampled (`search.prm.score_step`).
  device  an off-the-shelf format whose verifier shares the policy's vocabulary and has
          constant wrapper ids (`formats.Wrapper`): the block is
            before + the step's tokens, its delimiter (or EOS) removed + after
          with the delimiter removed through per-vocabulary tables (`FeedTables`): the
          token that completes "\\n\\n" becomes the ids of its text without it (".\\n\\n" -> "."),
          a lone delimiter token is dropped, and a delimiter split over two tokens drops the
          second and trims the first. A format whose step 0 is joined to the question by text
          (rlhflow: "question step") has the step's first token re-read with that text before
          it ("To" -> " To"), as BPE encodes the joined string.
  host    otherwise (another vocabulary, or a layout that is not constant around the step,
          Math-Shepherd's): once per round one `jax.pure_callback` gets every row's new step,
          decodes it with the policy's tokenizer, and encodes the format's segment with the
          verifier's tokenizer (`formats.VerifierFormat.feed_step_ids`), batched over all problems
          and candidates. A step longer than the block is reported (`overflow_B`), never cut.

Both off-the-shelf modes read the step text the way `StepFormat.split` does, so on steps whose
policy tokens are the verifier tokenizer's own encoding they feed the same ids (tested).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.decode.sampler import STOP_EOS, STOP_LENGTH, STOP_NEWLINE
from ttc_jax.tokenization.steps import StepFormat
from ttc_jax.verify.formats import TtcFormat, VerifierFormat, Wrapper
from ttc_jax.verify.heads import Reader

MODES = ("ttc", "device", "host")
_MAX_PIECE = 4  # Most ids a step's last token becomes once its delimiter is removed.


@flax.struct.dataclass
class FeedTables:
  """Per policy-vocabulary id, what it becomes when it ends a step (traced, like `StopRule`)."""
  strip_VxM: jax.Array  # int32: ids of the token's text without the delimiter at its end, -1 padded.
  strip_head_VxM: jax.Array  # int32: the same without the delimiter's first half (the head of a split delimiter).
  contains_V: jax.Array  # bool: the token holds the whole delimiter (else a stop is a split delimiter).
  join_VxM: jax.Array  # int32: ids of the wrapper's join text + the token's text (-1 padded; identity without a join).


@dataclasses.dataclass(frozen=True)
class VerifierSpec:
  """Static: how the search feeds and reads its verifier (hashable: jit specialises on it)."""
  mode: str = "ttc"
  reader: Reader = Reader("value")
  wrapper: Wrapper | None = None
  block: int = 0  # Slots per step block; 0: the policy's max_step_tokens (ttc).
  solution_slots: int = 0  # Slots after the prompt before the search stops; 0: max_solution_tokens (ttc).
  host: Any = None  # `HostFeed` (host mode).

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"verifier feed mode {self.mode!r} must be one of {MODES}")


def _pieces(text: str, ids_of, fallback: int | None = None) -> list[int]:
  """The ids of `text`, -1 padded; more than _MAX_PIECE: the `fallback` token, or an error without one."""
  ids = ids_of(text) if text else []
  if len(ids) > _MAX_PIECE:
    if fallback is None:
      raise ValueError(f"{text!r} is {len(ids)} tokens once its delimiter is removed; at most {_MAX_PIECE} fit")
    ids = [fallback]  # The token as sampled: inexact only for this token, after the join text.
  return ids + [-1] * (_MAX_PIECE - len(ids))


@functools.lru_cache(maxsize=8)
def feed_tables(policy_tok, vocab_size: int, step_format: StepFormat, join: str = "") -> FeedTables:
  """The tables for a policy vocabulary (padded to the model's `vocab_size`); `join`: `Wrapper.join`.

  Cached: a join encodes every token's text once (about a second for a 150k vocabulary).
  """
  d = step_format.delimiter
  half = d[:len(d) - 1] if len(d) > 1 else ""  # What a split delimiter leaves on its first token ("\n" of "\n\n").
  texts = policy_tok.token_texts()
  encode = policy_tok.encode
  # Default: a token stays itself (ids without text, e.g. specials, or past the tokenizer in a padded vocabulary).
  strip = np.full((vocab_size, _MAX_PIECE), -1, np.int32)
  strip[:, 0] = np.arange(vocab_size)
  head, joined = strip.copy(), strip.copy()
  contains = np.zeros(vocab_size, bool)
  for i, t in enumerate(texts):
    contains[i] = bool(t) and d in t
    if t and t.endswith(d):
      strip[i] = _pieces(t.removesuffix(d), encode)
    if t and half and t.endswith(half):
      head[i] = _pieces(t.removesuffix(half), encode)
    if t and join:
      joined[i] = _pieces(join + t, encode, fallback=i)
  # Host arrays (as the stop rule's): cached, they must not be committed to the first caller's mesh.
  return FeedTables(strip_VxM=strip, strip_head_VxM=head, contains_V=contains, join_VxM=joined)


def _replace_one(seq_BxN, len_B, at_B, pieces_BxM, apply_B):
  """seq with the token at at_B replaced by the valid (>= 0, packed left) pieces where apply_B.

  Returns (int32[B, N + M], new lengths); rows not applied are unchanged (padded).
  """
  n, m = seq_BxN.shape[1], pieces_BxM.shape[1]
  count_B = jnp.where(apply_B, jnp.sum(pieces_BxM >= 0, axis=1), 1).astype(jnp.int32)
  j = jnp.arange(n + m)[None]
  at = at_B[:, None]
  out = jnp.where(j < at, take_all(seq_BxN, j),
                  jnp.where(j < at + count_B[:, None],
                            jnp.where(apply_B[:, None], take_all(pieces_BxM, j - at), take_all(seq_BxN, j)),
                            take_all(seq_BxN, j - count_B[:, None] + 1)))
  return out, jnp.where(apply_B, len_B - 1 + count_B, len_B).astype(jnp.int32)


def device_block(spec: VerifierSpec, tables: FeedTables, step_BxW, step_len_B, stop_reason_B, first_B,
                 feed_B) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(tokens_BxK, fed_B, read_B): each row's wrapped step, its length (0: not fed) and read index.

  K = spec.block. first_B marks rows whose step is their first (they take `first_before`, and the
  wrapper's `join` text is put before the step's first token).
  """
  wrap = spec.wrapper
  take = lambda x, i: take_all(x, i[:, None])[:, 0]
  last_B, prev_B = take(step_BxW, step_len_B - 1), take(step_BxW, step_len_B - 2)
  newline_B = stop_reason_B == STOP_NEWLINE
  split_B = newline_B & ~tables.contains_V[last_B] & (step_len_B >= 2)
  # Drop EOS, or the second token of a split delimiter; then replace the token that now ends the step
  # by its text without (the rest of) the delimiter.
  len_B = step_len_B - ((stop_reason_B == STOP_EOS) | split_B).astype(jnp.int32)
  pieces_BxM = jnp.where(split_B[:, None], tables.strip_head_VxM[prev_B], tables.strip_VxM[last_B])
  content, content_len_B = _replace_one(step_BxW, len_B, len_B - 1, pieces_BxM, newline_B & (len_B > 0))
  if wrap.join:  # Static: the text that joins step 0 to the question (rlhflow: a space), merged into its first token.
    content, content_len_B = _replace_one(content, content_len_B, jnp.zeros_like(content_len_B),
                                          tables.join_VxM[content[:, 0]], first_B & (content_len_B > 0))
  active_B = feed_B & (stop_reason_B != 0) & (content_len_B > 0)

  before_B = jnp.where(first_B, len(wrap.first_before), len(wrap.before)).astype(jnp.int32)
  j_K = jnp.arange(spec.block)[None]
  const = lambda ids: jnp.asarray(list(ids) + [0], jnp.int32)
  first_ids, before_ids, after_ids = const(wrap.first_before), const(wrap.before), const(wrap.after)
  lead_BxK = jnp.where(first_B[:, None], first_ids[jnp.clip(j_K, 0, len(first_ids) - 1)],
                       before_ids[jnp.clip(j_K, 0, len(before_ids) - 1)])
  c_BxK = j_K - before_B[:, None]  # Index into the content.
  a_BxK = c_BxK - content_len_B[:, None]  # Index into `after`.
  tail_BxK = after_ids[jnp.clip(a_BxK, 0, len(after_ids) - 1)]
  tokens_BxK = jnp.where(c_BxK < 0, lead_BxK, jnp.where(a_BxK < 0, take_all(content, c_BxK), tail_BxK))
  total_B = before_B + content_len_B + len(wrap.after)
  fed_B = jnp.where(active_B, total_B, 0).astype(jnp.int32)
  read_B = (total_B + wrap.read_from_end).astype(jnp.int32)
  return jnp.where(j_K < fed_B[:, None], tokens_BxK, 0), fed_B, read_B


def take_all(x_BxN, i_BxK):
  return jnp.take_along_axis(x_BxN, jnp.clip(i_BxK, 0, x_BxN.shape[1] - 1), axis=1)


# ------------------------------------------------------------------------------------------------ host

_PROBLEMS: dict[int, str] = {}  # Problem key -> text, registered by run_search for the callback to read.
_KEYS = itertools.count(1)
_LOCK = threading.Lock()


def register_problems(texts) -> list[int]:
  """Keys (int32) the host callback resolves to these problem texts; release with `release_problems`."""
  with _LOCK:
    keys = [next(_KEYS) % (1 << 31) for _ in texts]
    _PROBLEMS.update(zip(keys, texts))
  return keys


def release_problems(keys) -> None:
  with _LOCK:
    for k in keys:
      _PROBLEMS.pop(int(k), None)


@dataclasses.dataclass(frozen=True, eq=False)
class HostFeed:
  """Re-tokenises steps on the host (hashable by identity: one per (format, tokenizers, delimiter))."""
  fmt: VerifierFormat
  verifier_tok: Any
  policy_tok: Any
  delimiter: str
  block: int

  def step_text(self, ids, stop_reason: int) -> str:
    """The step as `StepFormat.split` cuts it: decoded up to EOS, the delimiter removed from its end."""
    text = self.policy_tok.decode(ids)
    return text.removesuffix(self.delimiter) if stop_reason in (STOP_NEWLINE, STOP_EOS, STOP_LENGTH) else text

  def __call__(self, keys_B, index_B, step_BxW, step_len_B, stop_reason_B, feed_B):
    b = step_BxW.shape[0]
    tokens = np.zeros((b, self.block), np.int32)
    fed = np.zeros((b,), np.int32)
    read = np.zeros((b,), np.int32)
    overflow = np.zeros((b,), bool)
    for r in range(b):
      if not feed_B[r] or not stop_reason_B[r]:
        continue
      text = self.step_text(step_BxW[r, :step_len_B[r]].tolist(), int(stop_reason_B[r]))
      if not text:
        continue  # An empty step is not scored (as in every other mode).
      ids, at = self.fmt.feed_step_ids(self.verifier_tok, _PROBLEMS[int(keys_B[r])], int(index_B[r]), text)
      if len(ids) > self.block:
        overflow[r] = True
        continue
      tokens[r, :len(ids)] = ids
      fed[r] = len(ids)
      read[r] = len(ids) + at if at < 0 else at
    return tokens, fed, read, overflow


@functools.lru_cache(maxsize=32)
def _host_feed(fmt, verifier_tok, policy_tok, delimiter: str, block: int) -> HostFeed:
  # One object per setting: the jitted search is cached on the spec that holds it (one compile per setting).
  return HostFeed(fmt=fmt, verifier_tok=verifier_tok, policy_tok=policy_tok, delimiter=delimiter, block=block)


def host_block(spec: VerifierSpec, keys_B, index_B, step_BxW, step_len_B, stop_reason_B, feed_B):
  """(tokens_BxK, fed_B, read_B, overflow_B) from the host, once per call for the whole batch."""
  b = step_BxW.shape[0]
  shapes = (jax.ShapeDtypeStruct((b, spec.block), jnp.int32), jax.ShapeDtypeStruct((b,), jnp.int32),
            jax.ShapeDtypeStruct((b,), jnp.int32), jax.ShapeDtypeStruct((b,), jnp.bool_))
  return jax.pure_callback(spec.host, shapes, keys_B, index_B, step_BxW, step_len_B, stop_reason_B, feed_B,
                           vmap_method="sequential")


# ------------------------------------------------------------------------------------------------ choice


def same_vocabulary(a, b) -> bool:
  return a is b or (a.vocab_size == b.vocab_size and a.token_texts() == b.token_texts()
                    and a.encode("\n\n+-x <|") == b.encode("\n\n+-x <|"))


def verifier_spec(fmt: VerifierFormat, verifier_tok, policy_tok, step_format: StepFormat, *, max_step_tokens: int,
                  max_solution_tokens: int, max_rounds: int, feed: str = "auto",
                  host_tokens_per_step: int = 0) -> VerifierSpec:
  """Chooses the mode (`feed`: "auto", "device" or "host") and sizes the verifier's block and slots.

  Device: a block is at most the step's tokens + the wrapper + 2 * _MAX_PIECE (delimiter and join
  pieces); the verifier needs at most max_solution_tokens + max_rounds * that extra slots, so the
  policy's budget, not the verifier's, ends a search. Host: a block holds `host_tokens_per_step` ids
  (default 2 x max_step_tokens + 32), and the verifier gets max_rounds blocks.
  """
  reader = fmt.reader(verifier_tok)
  if isinstance(fmt, TtcFormat):
    if feed == "host":
      raise ValueError("the ttc format is fed the policy's tokens; feed='host' is for off-the-shelf formats")
    return VerifierSpec(mode="ttc", reader=reader)
  wrapper = fmt.wrapper(verifier_tok)
  can_device = wrapper is not None and same_vocabulary(verifier_tok, policy_tok)
  if feed == "device" and not can_device:
    why = "its layout is not constant around a step" if wrapper is None else "the vocabularies differ"
    raise ValueError(f"verifier format {fmt.name!r} cannot be fed the policy's tokens on the device: {why}")
  if feed not in ("auto", "device", "host"):
    raise ValueError(f"verifier feed {feed!r} must be 'auto', 'device' or 'host'")
  if can_device and feed != "host":
    extra = wrapper.max_len + 2 * _MAX_PIECE  # Wrapper, delimiter pieces, join pieces.
    return VerifierSpec(mode="device", reader=reader, wrapper=wrapper, block=max_step_tokens + extra,
                        solution_slots=max_solution_tokens + max_rounds * extra)
  block = host_tokens_per_step or 2 * max_step_tokens + 32
  host = _host_feed(fmt, verifier_tok, policy_tok, step_format.delimiter, block)
  return VerifierSpec(mode="host", reader=reader, block=block, solution_slots=max_rounds * block, host=host)
