"""Parameter counts and FLOPs per token, for budgets and the FLOPs-matched exchange."""
import jax
import numpy as np

from ttc_jax.models.config import ModelConfig


def count_params(cfg: ModelConfig, include_embedding: bool = True) -> int:
  """Analytic parameter count (equals the initialised tree's size; tested)."""
  d, h = cfg.d_model, cfg.head_size
  per_layer = (d * cfg.n_heads * h  # q
               + 2 * d * cfg.n_kv_heads * h  # k, v
               + cfg.n_heads * h * d  # o
               + 3 * d * cfg.d_ff  # gate, up, down
               + 2 * d)  # two norms
  total = cfg.n_layers * per_layer + d  # + final norm
  if cfg.lm_head and not cfg.tie_embeddings:
    total += cfg.vocab_size * d
  if cfg.scalar_head:
    total += d + 1
  if include_embedding:
    total += cfg.vocab_size * d
  return total


def tree_param_count(params) -> int:
  """Number of scalars in a parameter pytree (boxed or unboxed)."""
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def forward_flops_per_token(cfg: ModelConfig, context_len: int) -> float:
  """Forward-pass FLOPs for one token attending to `context_len` earlier tokens.

  2 FLOPs per multiply-add over every weight matrix the token passes through
  (the input embedding is a lookup, the output projection is a matmul), plus
  the attention score and weighted-sum products, 2 * 2 * n_heads * head_size
  per layer per context position.
  """
  matmul_params = count_params(cfg, include_embedding=False)
  matmul_params -= cfg.n_layers * 2 * cfg.d_model + cfg.d_model  # norms are not matmuls
  if cfg.lm_head and cfg.tie_embeddings:
    matmul_params += cfg.vocab_size * cfg.d_model
  attention = 4 * cfg.n_layers * cfg.n_heads * cfg.head_size * context_len
  return float(2 * matmul_params + attention)


def span_forward_flops(cfg: ModelConfig, count, start):
  """Forward FLOPs of `count` consecutive tokens, the first with `start` real tokens before it.

  Exact in closed form, since `forward_flops_per_token` is affine in the context length:
  a * n + b * sum_{i<n} (start + i + 1), a = f(0), b = f(1) - f(0). Takes Python numbers or
  numpy / jax arrays (elementwise).
  """
  a = forward_flops_per_token(cfg, 0)
  b = forward_flops_per_token(cfg, 1) - a
  return a * count + b * (count * (start + 1) + count * (count - 1) / 2)


def train_flops_per_token(cfg: ModelConfig, context_len: int) -> float:
  """Training FLOPs per token: forward + backward = 3x forward."""
  return 3.0 * forward_flops_per_token(cfg, context_len)
