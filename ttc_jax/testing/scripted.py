"""Scripted stand-ins for the policy and the PRM: fixed rules instead of networks, for tests.

They have the `Transformer` apply signature and keep a real `KVCache`: every
fed token is stored in the cache (k[0, row, slot, 0, 0]) and the rules read the
row's context back from it, so a wrong cache gather or rewind shows up as a
wrong token or score, exactly as it would with a network.

A step is three tokens: a fixed `lead` token, a *content* token (id >=
`first_content`) and a newline, or EOS when the content id is >= `finish_from`
(the "answer line"). The content is chosen when the lead token is fed, i.e. in
the sampler's per-row decode step: the first token after the prompt comes from
the shared prefill and is the same for every candidate.
"""
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ttc_jax.models import ModelConfig, ModelOutput
from ttc_jax.models.kv_cache import KVCache, next_index, write_layer, write_rows
from ttc_jax.models.transformer import read_positions

COPY = -1  # Table entry: repeat the row's last content token (a step that depends on the cache).
_NEG = -1e9


def scripted_config(vocab_size: int = 64, scalar_head: bool = False) -> ModelConfig:
  """A 1-layer, 1-kv-head config whose cache stores one number per slot (head size 2)."""
  return ModelConfig(vocab_size=vocab_size, d_model=4, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=4, max_len=256,
                     lm_head=not scalar_head, scalar_head=scalar_head)


def _store(cache: KVCache, tokens_BxT: jax.Array, valid_BxT: jax.Array):
  """Writes the fed tokens into the cache; returns (new cache, context tokens [B, S], visible [B, T, S])."""
  start_B = cache.index_B
  b, t = tokens_BxT.shape
  _, k_heads, _, h = cache.k_BxKxSxH[0].shape
  update_BxTxKxH = jnp.broadcast_to(tokens_BxT[:, :, None, None], (b, t, k_heads, h))
  k = tuple(write_layer(buf, update_BxTxKxH, start_B) for buf in cache.k_BxKxSxH)
  valid = write_rows(cache.valid_BxS, valid_BxT, start_B)
  new = cache.replace(k_BxKxSxH=k, valid_BxS=valid, index_B=next_index(start_B, valid_BxT))  # Positions unused.
  slots_S = jnp.arange(cache.max_len)
  visible_BxTxS = (slots_S[None, None] <= (start_B[:, None] + jnp.arange(t)[None])[:, :, None]) & valid[:, None]
  context_BxS = jnp.round(k[0][:, 0, :, 0]).astype(jnp.int32)
  if cache.prefix is not None:  # A shared prompt comes before every row's own slots.
    rows = b // cache.prefix.num_problems
    prefix_BxS = jnp.repeat(jnp.round(cache.prefix.k_PxKxSxH[0][:, 0, :, 0]).astype(jnp.int32), rows, axis=0)
    prefix_visible_BxTxS = jnp.broadcast_to(jnp.repeat(cache.prefix.valid_PxS, rows, axis=0)[:, None],
                                            (b, t, prefix_BxS.shape[1]))
    context_BxS = jnp.concatenate([prefix_BxS, context_BxS], axis=1)
    visible_BxTxS = jnp.concatenate([prefix_visible_BxTxS, visible_BxTxS], axis=2)
  return new, context_BxS, visible_BxTxS


def _last_content(context_BxS, visible_BxTxS, first_content):
  """int32[B, T]: the latest visible content token for each query (0 if none), and the count of them."""
  is_content_BxTxS = visible_BxTxS & (context_BxS[:, None] >= first_content)
  slots_S = jnp.arange(context_BxS.shape[1])
  last_slot_BxT = jnp.max(jnp.where(is_content_BxTxS, slots_S, -1), axis=-1)
  last_BxT = jnp.where(last_slot_BxT >= 0, jnp.take_along_axis(context_BxS, jnp.maximum(last_slot_BxT, 0), axis=1), 0)
  return last_BxT, jnp.sum(is_content_BxTxS, axis=-1)


@dataclasses.dataclass(frozen=True)
class ScriptedPolicy:
  """Row b's step s has the content token table[b % len(table)][s] (the last entry repeats).

  The table is the "parameters": `apply({"table": int32[rows, steps]}, ...)`, so
  one compiled search serves every table of a shape. After a content token the
  policy writes a newline, or EOS if the token is >= finish_from; after
  anything else but the lead token, the lead token. s counts the content tokens
  in the row's cached context, so a row that inherits a parent's cache
  continues the parent's step count (and COPY its content).
  """
  cfg: ModelConfig
  eos_id: int
  newline_id: int
  lead_id: int
  first_content: int
  finish_from: int

  def apply(self, params, tokens_BxT, positions_BxT, valid_BxT, cache: KVCache, read_BxK=None) -> ModelOutput:
    del positions_BxT
    b, t = tokens_BxT.shape
    cache, context_BxS, visible_BxTxS = _store(cache, tokens_BxT, valid_BxT)
    last_BxT, count_BxT = _last_content(context_BxS, visible_BxTxS, self.first_content)
    table = jnp.asarray(params["table"], jnp.int32)
    entry_BxT = table[(jnp.arange(b) % table.shape[0])[:, None], jnp.minimum(count_BxT, table.shape[1] - 1)]
    content_BxT = jnp.where(entry_BxT == COPY, last_BxT, entry_BxT)
    end_BxT = jnp.where(tokens_BxT >= self.finish_from, self.eos_id, self.newline_id)
    next_BxT = jnp.where(tokens_BxT >= self.first_content, end_BxT,
                         jnp.where(tokens_BxT == self.lead_id, content_BxT, self.lead_id))
    logits = jnp.where(jnp.arange(self.cfg.vocab_size) == next_BxT[..., None], 0.0, _NEG)
    return ModelOutput(logits_BxTxV=read_positions(logits.astype(jnp.float32), read_BxK), values_BxT=None, cache=cache)


@dataclasses.dataclass(frozen=True)
class ScriptedPRM:
  """Value (a logit) of every position: values[x - first_content] for the latest content token x in context.

  `values` is the "parameters": `apply({"values": float32[n]}, ...)`. With
  `cumulative`, the sum of that over every content token in context instead (a
  score that depends on the whole cached prefix). No content: 0.
  """
  cfg: ModelConfig
  first_content: int
  cumulative: bool = False

  def apply(self, params, tokens_BxT, positions_BxT, valid_BxT, cache: KVCache, read_BxK=None) -> ModelOutput:
    del positions_BxT
    cache, context_BxS, visible_BxTxS = _store(cache, tokens_BxT, valid_BxT)
    values = jnp.asarray(params["values"], jnp.float32)
    value_of = lambda tok: jnp.where(tok >= self.first_content,
                                     values[jnp.clip(tok - self.first_content, 0, values.shape[0] - 1)], 0.0)
    if self.cumulative:
      out_BxT = jnp.sum(jnp.where(visible_BxTxS, value_of(context_BxS)[:, None], 0.0), axis=-1)
    else:
      out_BxT = value_of(_last_content(context_BxS, visible_BxTxS, self.first_content)[0])
    return ModelOutput(logits_BxTxV=None, values_BxT=read_positions(out_BxT, read_BxK), cache=cache)


@dataclasses.dataclass(frozen=True)
class LogitBias:
  """A real network whose next-token logits get a fixed bias on some ids.

  Tests use it to make a random tiny policy end steps (newline) and solutions
  (EOS) within a few tokens; the cache and everything else is the network's.
  Hashable, so jit caches keyed on the model work.
  """
  model: Any
  bias: tuple[tuple[int, float], ...]  # (token id, added logit)

  @property
  def cfg(self) -> ModelConfig:
    return self.model.cfg

  def apply(self, params, *args, **kwargs):
    out = self.model.apply(params, *args, **kwargs)
    ids, values = zip(*self.bias)
    return out.replace(logits_BxTxV=out.logits_BxTxV.at[..., list(ids)].add(jnp.asarray(values)))


@dataclasses.dataclass(frozen=True)
class ForcedTokens:
  """Writes row b's script: after a prompt of `prompt_len` tokens, token j of the solution is
  script[b][j] (the last entry repeats). Keeps a real cache like the others.

  Step-rule tests force exact id sequences with it ("\\n" "\\n", ".\\n\\n", ...) and read
  where the sampler's device rule stopped each row.
  """
  cfg: ModelConfig
  prompt_len: int
  script: tuple[tuple[int, ...], ...]

  def apply(self, params, tokens_BxT, positions_BxT, valid_BxT, cache: KVCache | None = None,
            read_BxK=None) -> ModelOutput:
    del params
    if cache is not None:  # The cacheless reference sampler (`testing.reference`) passes none.
      cache, _, _ = _store(cache, tokens_BxT, valid_BxT)
    width = max(len(row) for row in self.script)
    table = jnp.asarray([row + (row[-1],) * (width - len(row)) for row in self.script], jnp.int32)
    b = tokens_BxT.shape[0]
    j_BxT = jnp.clip(positions_BxT + 1 - self.prompt_len, 0, width - 1)
    next_BxT = table[(jnp.arange(b) % table.shape[0])[:, None], j_BxT]
    logits = jnp.where(jnp.arange(self.cfg.vocab_size) == next_BxT[..., None], 0.0, _NEG)
    return ModelOutput(logits_BxTxV=read_positions(logits.astype(jnp.float32), read_BxK), values_BxT=None, cache=cache)
