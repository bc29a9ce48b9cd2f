"""How a verifier's output at a read position becomes P(step is correct).

  value        sigmoid of the scalar head (this project's PRM / ORM, Skywork PRM)
  classes      softmax of the classification head, class 1 (Qwen2.5-Math-PRM)
  token_pair   softmax over the LM logits of a "good" and a "bad" token, the good one
               (Math-Shepherd, RLHFlow PRMs)

A `Reader` is static (hashable, token ids resolved from the verifier's tokenizer), so
jitted scoring and search specialise on it.
"""
import dataclasses

import jax
import jax.numpy as jnp

HEADS = ("value", "classes", "token_pair")


@dataclasses.dataclass(frozen=True)
class Reader:
  head: str = "value"
  good_id: int = -1  # token_pair only.
  bad_id: int = -1

  def __post_init__(self):
    if self.head not in HEADS:
      raise ValueError(f"verifier head {self.head!r} must be one of {HEADS}")
    if self.head == "token_pair" and min(self.good_id, self.bad_id) < 0:
      raise ValueError(f"token_pair head needs both token ids, got good={self.good_id} bad={self.bad_id}")

  def check_model(self, cfg) -> None:
    """Raises if the model has no output this head reads."""
    need = {"value": ("scalar_head", cfg.scalar_head), "classes": ("classifier_classes >= 2", cfg.classifier_classes >= 2),
            "token_pair": ("lm_head", cfg.lm_head)}[self.head]
    if not need[1]:
      raise ValueError(f"the verifier's {self.head!r} head needs a model with {need[0]}")
    if self.head == "token_pair" and max(self.good_id, self.bad_id) >= cfg.vocab_size:
      raise ValueError(f"token ids {self.good_id}, {self.bad_id} are outside the model's vocabulary ({cfg.vocab_size})")

  def probs(self, out) -> jax.Array:
    """float32[B, K] from a `ModelOutput` read at K positions (`read_BxK`) or at every position."""
    if self.head == "value":
      return jax.nn.sigmoid(out.values_BxT.astype(jnp.float32))
    if self.head == "classes":
      return jax.nn.softmax(out.class_logits_BxTxC.astype(jnp.float32), axis=-1)[..., 1]
    pair = out.logits_BxTxV[..., jnp.asarray([self.good_id, self.bad_id])].astype(jnp.float32)
    return jax.nn.softmax(pair, axis=-1)[..., 0]
