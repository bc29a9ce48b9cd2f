"""Model hyperparameters as a frozen dataclass (configs stop at the entry point).

One `Transformer` serves every supported family; the switches below are what
Llama 3, Qwen2 / Qwen2.5 / Qwen3, Mistral and Gemma 2 / 3 differ in (see
`ttc_jax/models/hf/families.py` for how a config.json sets them). Every switch
defaults to this project's own architecture (Llama-like, RoPE, SwiGLU).
"""
import dataclasses

import jax.numpy as jnp
import numpy as np

from ttc_jax.models import attention

ACTIVATIONS = ("silu", "gelu_tanh")
ROPE_SCALINGS = ("none", "linear", "llama3")
LAYER_TYPES = ("full", "sliding")
VALUE_HEAD_NAMES = ("score", "v_head.summary")
# decode_attention.IMPLS; spelled here because that module imports Pallas, which the config should not.
DECODE_ATTENTION_IMPLS = ("auto", "xla", "pallas")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Decoder-only transformer shape and numerics.

  `n_kv_heads < n_heads` gives grouped-query attention; `scalar_head` adds the
  per-token scalar used by reward models (PRM / ORM; Skywork's value head);
  `classifier_classes` adds a two-layer classification head (Qwen2.5-Math-PRM:
  Linear D->D, ReLU, Linear D->classes); `lm_head=False` drops the vocabulary
  projection for models that only need a head.
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
  # How calls without a KV cache attend (training, scoring): "auto" | "xla" | "cudnn" | "chunked"
  # (ttc_jax/models/attention.py). Changes the computation's memory and speed, not the model.
  attention_impl: str = "auto"
  # How decode steps (cached calls of one new token per row) read the cache: "auto" | "xla" | "pallas"
  # (ttc_jax/models/decode_attention.py; pallas reads only each row's filled slots). auto is pallas on
  # GPUs (measured faster on the H200), xla elsewhere. Changes the computation's speed, not the model.
  decode_attention_impl: str = "auto"
  dtype: str = "float32"  # Compute dtype; "bfloat16" on accelerators.
  param_dtype: str = "float32"  # Master weights stay float32.
  lm_head: bool = True
  scalar_head: bool = False
  classifier_classes: int = 0  # > 0: the per-token classification head (Qwen2.5-Math-PRM: 2).
  # HF tensor prefix of the scalar head: "score" (this project's export) or "v_head.summary" (Skywork PRMs).
  value_head_hf: str = "score"
  # --- Architecture switches of the open families (defaults: this project's model). ---
  qkv_bias: bool = False  # Qwen2 / 2.5: biases on the q, k and v projections.
  qk_norm: bool = False  # Qwen3, Gemma 3: RMSNorm over head_dim on q and k, before RoPE.
  norm_plus_one: bool = False  # Gemma: RMSNorm scales by (1 + w), so w starts at 0.
  post_norms: bool = False  # Gemma 2 / 3: a norm after attention and after the MLP as well.
  activation: str = "silu"  # Gated MLP activation: "silu" (SwiGLU) or "gelu_tanh" (GeGLU).
  embed_scale: bool = False  # Gemma: embeddings times sqrt(d_model), rounded to the compute dtype.
  query_pre_attn_scalar: float = 0.0  # Attention scale is its ** -0.5; 0: head size (the usual).
  attn_softcap: float = 0.0  # Gemma 2: scores -> tanh(s / c) * c before masking; 0: off.
  final_softcap: float = 0.0  # Gemma 2: logits -> tanh(l / c) * c; 0: off.
  rope_scaling: str = "none"  # "none" | "linear" (positions / factor) | "llama3" (Llama 3.1+).
  rope_factor: float = 1.0  # linear / llama3 factor.
  rope_low_freq_factor: float = 1.0  # llama3 only.
  rope_high_freq_factor: float = 4.0  # llama3 only.
  rope_original_max_len: int = 8192  # llama3 only: original_max_position_embeddings.
  sliding_window: int = 0  # Tokens a sliding layer sees (itself included); 0: no sliding layers.
  # Per layer "full" or "sliding"; () means every layer sliding when sliding_window > 0
  # (Mistral), else every layer full. Gemma 2 alternates, Gemma 3 is 5 sliding : 1 full.
  layer_types: tuple[str, ...] = ()
  local_rope_theta: float = 0.0  # Gemma 3: sliding layers use this theta, unscaled; 0: same RoPE as full layers.
  valid_vocab_size: int = 0  # Ids >= this (embedding padding rows, Qwen) are never predicted; 0: all.

  def __post_init__(self):
    # JSON (model_config.json, config.json) gives lists; the config stays hashable (jit caches key on it).
    object.__setattr__(self, "layer_types", tuple(self.layer_types))
    errors = []
    if self.n_heads % self.n_kv_heads:
      errors.append(f"model.n_heads={self.n_heads} must be a multiple of model.n_kv_heads={self.n_kv_heads}")
    if self.head_dim is None and self.d_model % self.n_heads:
      errors.append(f"model.d_model={self.d_model} must be divisible by model.n_heads={self.n_heads} (or set model.head_dim)")
    if self.remat not in ("none", "full", "dots"):
      errors.append(f"model.remat={self.remat!r} must be one of 'none', 'full', 'dots'")
    if self.attention_impl not in attention.IMPLS:
      errors.append(f"model.attention_impl={self.attention_impl!r} must be one of {attention.IMPLS}")
    elif self.attention_impl == "cudnn" and self.dtype in ("float32", "bfloat16", "float16"):
      why = attention.cudnn_unsupported(dtype=self.dtype, head_size=self.head_size, softcap=self.attn_softcap,
                                        sliding=bool(self.sliding_window))
      if why:
        errors.append(f"model.attention_impl='cudnn' cannot run {why}; use 'auto' (falls back) or 'chunked'")
    if self.decode_attention_impl not in DECODE_ATTENTION_IMPLS:
      errors.append(f"model.decode_attention_impl={self.decode_attention_impl!r} must be one of "
                    f"{DECODE_ATTENTION_IMPLS}")
    for field in ("dtype", "param_dtype"):
      if getattr(self, field) not in ("float32", "bfloat16", "float16"):
        errors.append(f"model.{field}={getattr(self, field)!r} must be float32, bfloat16 or float16")
    if not (self.lm_head or self.scalar_head or self.classifier_classes):
      errors.append("model.lm_head, model.scalar_head and model.classifier_classes are all off: the model would "
                    "output nothing")
    if self.classifier_classes < 0:
      errors.append(f"model.classifier_classes={self.classifier_classes} must be >= 0 (0: no classification head)")
    if self.value_head_hf not in VALUE_HEAD_NAMES:
      errors.append(f"model.value_head_hf={self.value_head_hf!r} must be one of {VALUE_HEAD_NAMES}")
    if self.head_size % 2:
      errors.append(f"head size {self.head_size} must be even for rotary embeddings")
    if self.activation not in ACTIVATIONS:
      errors.append(f"model.activation={self.activation!r} must be one of {ACTIVATIONS}")
    if self.rope_scaling not in ROPE_SCALINGS:
      errors.append(f"model.rope_scaling={self.rope_scaling!r} must be one of {ROPE_SCALINGS}")
    if self.rope_scaling != "none" and self.rope_factor <= 0:
      errors.append(f"model.rope_factor={self.rope_factor} must be positive with rope_scaling={self.rope_scaling!r}")
    if self.rope_scaling == "llama3" and not (0 < self.rope_low_freq_factor < self.rope_high_freq_factor):
      errors.append(f"model.rope_low_freq_factor={self.rope_low_freq_factor} and rope_high_freq_factor="
                    f"{self.rope_high_freq_factor} must satisfy 0 < low < high for llama3 RoPE scaling")
    for field in ("query_pre_attn_scalar", "attn_softcap", "final_softcap", "local_rope_theta"):
      if getattr(self, field) < 0:
        errors.append(f"model.{field}={getattr(self, field)} must be >= 0 (0 turns it off)")
    if self.sliding_window < 0:
      errors.append(f"model.sliding_window={self.sliding_window} must be >= 0 (0: no sliding layers)")
    if self.layer_types:
      if len(self.layer_types) != self.n_layers:
        errors.append(f"model.layer_types has {len(self.layer_types)} entries for model.n_layers={self.n_layers}")
      bad = sorted({t for t in self.layer_types if t not in LAYER_TYPES})
      if bad:
        errors.append(f"model.layer_types has {bad}: each entry must be one of {LAYER_TYPES}")
      if "sliding" in self.layer_types and not self.sliding_window:
        errors.append("model.layer_types names sliding layers but model.sliding_window is 0")
    if not 0 <= self.valid_vocab_size <= self.vocab_size:
      errors.append(f"model.valid_vocab_size={self.valid_vocab_size} must be in [0, vocab_size={self.vocab_size}]")
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

  @property
  def sliding_layers(self) -> tuple[bool, ...]:
    """Per layer: True where attention sees only the last `sliding_window` tokens."""
    if self.layer_types:
      return tuple(t == "sliding" for t in self.layer_types)
    return (self.sliding_window > 0,) * self.n_layers

  @property
  def attention_scale(self) -> float:
    return (self.query_pre_attn_scalar or self.head_size) ** -0.5


def rope_inv_freq(cfg: ModelConfig, sliding: bool) -> np.ndarray:
  """float32[head_size / 2] RoPE inverse frequencies of one layer, its scaling applied.

  Linear scaling divides positions by the factor, which is the same as dividing the
  frequencies. llama3 scaling (transformers' `_compute_llama3_parameters`) keeps high
  frequencies, divides low ones by the factor and interpolates smoothly between.
  """
  half = cfg.head_size // 2
  local = sliding and cfg.local_rope_theta > 0
  theta = cfg.local_rope_theta if local else cfg.rope_theta
  # float32 throughout, as transformers computes it: float64 here moved logits by ~1e-5.
  exponent = np.arange(0, 2 * half, 2, dtype=np.float32) / np.float32(2 * half)
  inv_freq = np.float32(1.0) / np.power(np.float32(theta), exponent, dtype=np.float32)
  scaling = "none" if local else cfg.rope_scaling
  if scaling == "linear":
    inv_freq = inv_freq / cfg.rope_factor
  elif scaling == "llama3":
    low_wavelen = cfg.rope_original_max_len / cfg.rope_low_freq_factor
    high_wavelen = cfg.rope_original_max_len / cfg.rope_high_freq_factor
    wavelen = np.float32(2 * np.pi) / inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / cfg.rope_factor, inv_freq)
    smooth = ((cfg.rope_original_max_len / wavelen - cfg.rope_low_freq_factor)
              / (cfg.rope_high_freq_factor - cfg.rope_low_freq_factor))
    smoothed = (1 - smooth) * scaled / cfg.rope_factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    inv_freq = np.where(medium, smoothed, scaled)
  return inv_freq.astype(np.float32)
