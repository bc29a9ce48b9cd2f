"""Slow, obviously-correct references for tests: recompute the full forward pass per token."""
import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.decode.sampler import prompt_positions
from ttc_jax.decode.sampling import SamplingConfig, choose_tokens


def naive_sample(model, params, prompts_BxP, valid_BxP, rng, *, num_samples: int, cfg: SamplingConfig, eos_id: int,
                 newline_id: int, pad_id: int) -> np.ndarray:
  """Same contract and key schedule as `decode.sample`, without a KV cache."""
  tokens = jnp.repeat(jnp.asarray(prompts_BxP), num_samples, axis=0)
  valid = jnp.repeat(jnp.asarray(valid_BxP), num_samples, axis=0)
  rows = tokens.shape[0]
  out = np.full((rows, cfg.max_new_tokens), pad_id, np.int32)
  done = np.zeros(rows, bool)
  for step in range(cfg.max_new_tokens):
    logits = model.apply(params, tokens, prompt_positions(valid), valid).logits_BxTxV[:, -1]
    token = np.asarray(choose_tokens(logits, jax.random.fold_in(rng, step), cfg))
    token = np.where(done, pad_id, token)
    out[:, step] = token
    done |= (token == eos_id) | ((token == newline_id) & cfg.stop_at_newline)
    tokens = jnp.concatenate([tokens, jnp.asarray(token)[:, None]], axis=1)
    valid = jnp.concatenate([valid, jnp.asarray(~done | (token != pad_id))[:, None]], axis=1)
    if done.all():
      break
  return out
