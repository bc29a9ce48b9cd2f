"""Token choice from logits: greedy, temperature and nucleus (top-p)."""
import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  """How tokens are drawn and when a row stops.

  temperature 0 is greedy. `stop_at_newline` ends a row at the end of a
  solution step (search generates one step at a time); otherwise rows run to
  EOS or `max_new_tokens`.
  """
  temperature: float = 1.0
  top_p: float = 1.0
  max_new_tokens: int = 128
  stop_at_newline: bool = False

  def __post_init__(self):
    if self.temperature < 0:
      raise ValueError(f"sampling.temperature={self.temperature} must be >= 0 (0 is greedy)")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"sampling.top_p={self.top_p} must be in (0, 1]")
    if self.max_new_tokens <= 0:
      raise ValueError(f"sampling.max_new_tokens={self.max_new_tokens} must be positive")


def top_p_filter(logits_BxV: jax.Array, top_p: float) -> jax.Array:
  """Masks tokens outside the smallest set whose probability reaches top_p (the top token always stays)."""
  sorted_logits = jnp.sort(logits_BxV, axis=-1)[:, ::-1]
  cum_probs = jnp.cumsum(jax.nn.softmax(sorted_logits, axis=-1), axis=-1)
  # Keep a token if the mass strictly before it is < top_p.
  keep_sorted = (cum_probs - jax.nn.softmax(sorted_logits, axis=-1)) < top_p
  threshold = jnp.min(jnp.where(keep_sorted, sorted_logits, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(logits_BxV >= threshold, logits_BxV, -jnp.inf)


def choose_tokens(logits_BxV: jax.Array, rng: jax.Array, cfg: SamplingConfig) -> jax.Array:
  """int32[B] next tokens."""
  if cfg.temperature == 0:
    return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
  logits_BxV = logits_BxV.astype(jnp.float32) / cfg.temperature
  if cfg.top_p < 1:
    logits_BxV = top_p_filter(logits_BxV, cfg.top_p)
  return jax.random.categorical(rng, logits_BxV, axis=-1).astype(jnp.int32)
