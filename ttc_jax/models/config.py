"""Model hyperparameters as a frozen dataclass (configs stop at the entry point)."""
import dataclasses

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Decoder-only transformer shape and numerics.

  `n_kv_heads < n_heads` gives grouped-query attention; `scalar_head` adds the
  per-token scalar used by reward models (PRM / ORM); `lm_head=False` drops the
  vocabulary projection for models that only need the scalar.
  """

  vocab_size: int = 128
  d_model: int = 128
  n_layers: int = 4
  n_heads: int = 4
  n_kv_heads: int = 4
  head_dim: int | None = None  # None: d_model // n_heads.
  d_ff: int = 512
  max_len: int = 256
  rope_theta: float = 10_000.0
  norm_eps: float = 1e-6
  tie_embeddings: bool = True
  remat: str = "none"  # "none" | "full" | "dots": what the backward pass recomputes.
  dtype: str = "float32"  # Compute dtype; "bfloat16" on accelerators.
  param_dtype: str = "float32"  # Master weights stay float32.
  lm_head: bool = True
  scalar_head: bool = False

  def __post_init__(self):
    errors = []
    if self.n_heads % self.n_kv_heads:
      errors.append(f"model.n_heads={self.n_heads} must be a multiple of model.n_kv_heads={self.n_kv_heads}")
    if self.head_dim is None and self.d_model % self.n_heads:
      errors.append(f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads} (or set model.head_dim)")
    if self.remat not in ("none", "full", "dots"):
      errors.append(f"model.remat={self.remat!r} must be one of 'none', 'full', 'dots'")
    for field in ("dtype", "param_dtype"):
      if getattr(self, field) not in ("float32", "bfloat16", "float16"):
        errors.append(f"model.{field}={getattr(self, field)!r} must be float32, bfloat16 or float16")
    if not (self.lm_head or self.scalar_head):
      errors.append("model.lm_head and model.scalar_head are both False: the model would output nothing")
    if self.head_size % 2:
      errors.append(f"head size {self.head_size} must be even for rotary embeddings")
    if errors:
      raise ValueError("Invalid model config: " + "; ".join(errors))

  @property
  def head_size(self) -> int:
    return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

  @property
  def compute_dtype(self):
    return jnp.dtype(self.dtype)

  @property
  def weight_dtype(self):
    return jnp.dtype(self.param_dtype)
