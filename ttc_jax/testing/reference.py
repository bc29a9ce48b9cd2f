"""Slow, obviously-correct references for tests: recompute the full forward pass per token."""
import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.decode.sampler import prompt_positions
from ttc_jax.decode.sampling import SamplingConfig, choose_tokens


def naive_sample(model, params, prompts_BxP, valid_BxP, rng, *, num_samples: int, cfg: SamplingConfig, stop,
                 pad_id: int) -> np.ndarray:
  """Same contract and key schedule as `decode.sample`, without a KV cache.

  The stop rule is re-read on the host from `stop`'s tables (numpy lookups, no gather helpers).
  """
  eos_V, contains_V = np.asarray(stop.eos_V), np.asarray(stop.contains_V)
  head_KxV, tail_KxV = np.asarray(stop.head_KxV), np.asarray(stop.tail_KxV)
  lookup = lambda table, ids: np.array([bool(table[..., i].any()) if 0 <= i < table.shape[-1] else False
                                        for i in ids], bool)
  tokens = jnp.repeat(jnp.asarray(prompts_BxP), num_samples, axis=0)
  valid = jnp.repeat(jnp.asarray(valid_BxP), num_samples, axis=0)
  rows = tokens.shape[0]
  out = np.full((rows, cfg.max_new_tokens), pad_id, np.int32)
  done = np.zeros(rows, bool)
  prev = np.full(rows, -1)
  for step in range(cfg.max_new_tokens):
    logits = model.apply(params, tokens, prompt_positions(valid), valid).logits_BxTxV[:, -1]
    token = np.asarray(choose_tokens(logits, jax.random.fold_in(rng, step), cfg))
    token = np.where(done, pad_id, token)
    out[:, step] = token
    pair = np.array([p >= 0 and 0 <= t < eos_V.shape[0] and bool((head_KxV[:, p] & tail_KxV[:, t]).any())
                     for p, t in zip(prev, token)], bool)
    ends_step = lookup(contains_V, token) | pair
    prev = np.where(done, prev, token)
    done |= lookup(eos_V, token) | (ends_step & cfg.stop_at_newline)
    tokens = jnp.concatenate([tokens, jnp.asarray(token)[:, None]], axis=1)
    valid = jnp.concatenate([valid, jnp.asarray(~done | (token != pad_id))[:, None]], axis=1)
    if done.all():
      break
  return out
