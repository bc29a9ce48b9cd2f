"""Parameter counts and FLOPs per token, for budgets and the FLOPs-matched exchange."""
import jax
import numpy as np

from ttc_jax.models.config import ModelConfig


def _layer_matmul_params(cfg: ModelConfig) -> int:
  """Weights of one layer that a token multiplies with (SwiGLU and GeGLU alike: three matrices)."""
  d, h = cfg.d_model, cfg.head_size
  return (d * cfg.n_heads * h  # q
          + 2 * d * cfg.n_kv_heads * h  # k, v
          + cfg.n_heads * h * d  # o
          + 3 * d * cfg.d_ff)  # gate, up, down


def _layer_other_params(cfg: ModelConfig) -> int:
  """Norm scales and biases of one layer: parameters, but additions, not matmuls."""
  d, h = cfg.d_model, cfg.head_size
  n = 2 * d  # attention and MLP norms
  if cfg.post_norms:
    n += 2 * d
  if cfg.qk_norm:
    n += 2 * h
  if cfg.qkv_bias:
    n += (cfg.n_heads + 2 * cfg.n_kv_heads) * h
  return n


def count_params(cfg: ModelConfig, include_embedding: bool = True) -> int:
  """Analytic parameter count (equals the initialised tree's size for every family; tested)."""
  d = cfg.d_model
  total = cfg.n_layers * (_layer_matmul_params(cfg) + _layer_other_params(cfg)) + d  # + final norm
  if cfg.lm_head and not cfg.tie_embeddings:
    total += cfg.vocab_size * d
  if cfg.scalar_head:
    total += d + 1
  if cfg.classifier_classes:
    total += d * d + d + cfg.classifier_classes * (d + 1)
  if include_embedding:
    total += cfg.vocab_size * d
  return total


def tree_param_count(params) -> int:
  """Number of scalars in a parameter pytree (boxed or unboxed)."""
  return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))


def _matmul_params(cfg: ModelConfig) -> int:
  """Every weight a token multiplies with: the layers, the output projection and a scalar head."""
  total = cfg.n_layers * _layer_matmul_params(cfg)
  if cfg.lm_head:
    total += cfg.vocab_size * cfg.d_model  # tied or not, the output projection is a matmul
  if cfg.scalar_head:
    total += cfg.d_model
  if cfg.classifier_classes:
    total += cfg.d_model * (cfg.d_model + cfg.classifier_classes)
  return total


def _attention_flops_per_key(cfg: ModelConfig) -> int:
  """Score and weighted-sum products for one query and one key in one layer."""
  return 4 * cfg.n_heads * cfg.head_size


def forward_flops_per_token(cfg: ModelConfig, context_len: int) -> float:
  """Forward-pass FLOPs for one token attending to `context_len` tokens.

  2 FLOPs per multiply-add over every weight matrix the token passes through
  (the input embedding is a lookup, the output projection is a matmul), plus
  the attention score and weighted-sum products, 2 * 2 * n_heads * head_size
  per layer per key; a sliding layer sees at most `sliding_window` keys.
  """
  keys = sum(min(context_len, cfg.sliding_window) if s else context_len for s in cfg.sliding_layers)
  return float(2 * _matmul_params(cfg) + _attention_flops_per_key(cfg) * keys)


def _keys_up_to(x, window: int):
  """sum_{c=1}^{x} min(c, window): keys seen by tokens with context 1..x in a sliding layer."""
  import jax.numpy as jnp  # Elementwise for Python numbers, numpy and traced arrays alike.
  x = jnp.asarray(x, jnp.float32)
  inside = jnp.minimum(x, window)
  return inside * (inside + 1) / 2 + jnp.maximum(x - window, 0) * window


def span_forward_flops(cfg: ModelConfig, count, start):
  """Forward FLOPs of `count` consecutive tokens, the first with `start` real tokens before it.

  Exact in closed form. Full layers are affine in the context length: a * n + b * sum_{i<n}
  (start + i + 1), a = f(0), b = f(1) - f(0) over full layers. Sliding layers add
  sum min(context, window), a difference of `_keys_up_to`. Takes Python numbers or numpy /
  jax arrays (elementwise); a model with sliding layers returns a jax array.
  """
  sliding = sum(cfg.sliding_layers)
  a = 2.0 * _matmul_params(cfg)
  b = float(_attention_flops_per_key(cfg) * (cfg.n_layers - sliding))
  flops = a * count + b * (count * (start + 1) + count * (count - 1) / 2)
  if sliding:
    keys = _keys_up_to(start + count, cfg.sliding_window) - _keys_up_to(start, cfg.sliding_window)
    flops = flops + _attention_flops_per_key(cfg) * sliding * keys
  return flops


def train_flops_per_token(cfg: ModelConfig, context_len: int) -> float:
  """Training FLOPs per token: forward + backward = 3x forward."""
  return 3.0 * forward_flops_per_token(cfg, context_len)
