"""Tiny Hugging Face-format checkpoints with random weights, per family, for tests and smoke runs.

Written with our own safetensors writer (no torch): config.json as the family's
transformers config would write it, tensors named and shaped as in HF.
"""
import json
import os

import ml_dtypes
import numpy as np

from ttc_jax.models.hf import safetensors_io

_BASE = dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=8, intermediate_size=64, max_position_embeddings=128, rms_norm_eps=1e-6)

# Family -> config.json, older format unless noted.
CONFIGS = {
    "llama": dict(_BASE, model_type="llama", rope_theta=500000.0, tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "qwen2": dict(_BASE, model_type="qwen2", rope_theta=1000000.0, tie_word_embeddings=True,
                  use_sliding_window=False, sliding_window=4096),
    "qwen3": dict(_BASE, model_type="qwen3", rope_theta=1000000.0, tie_word_embeddings=False, attention_bias=False),
    "mistral": dict(_BASE, model_type="mistral", rope_theta=10000.0, sliding_window=16),
    "gemma2": dict(_BASE, model_type="gemma2", hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=8,
                   attn_logit_softcapping=50.0, final_logit_softcapping=30.0, sliding_window=16),
    # transformers 5 layout: nested rope_parameters, rope_theta null, explicit layer_types.
    "gemma3_text": dict(_BASE, model_type="gemma3_text", num_hidden_layers=3, query_pre_attn_scalar=8,
                        sliding_window=16, rope_theta=None,
                        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0,
                                                            "rope_theta": 1000000.0},
                                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}),
}


def hf_tensors(hf: dict, rng: np.random.Generator, dtype=np.float32, prefix: str = "model.",
               root: str = "") -> dict[str, np.ndarray]:
  """Random tensors with the names and shapes a HF checkpoint of config `hf` has."""
  c = hf.get("text_config", hf)
  t = c["model_type"]
  d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
  n, k = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
  h = c.get("head_dim") or d // n
  gemma = t.startswith("gemma")
  tied = c.get("tie_word_embeddings", gemma)
  out = {prefix + "embed_tokens.weight": (v, d), prefix + "norm.weight": (d,)}
  for i in range(c["num_hidden_layers"]):
    p = f"{prefix}layers.{i}."
    out.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                p + "self_attn.q_proj.weight": (n * h, d), p + "self_attn.k_proj.weight": (k * h, d),
                p + "self_attn.v_proj.weight": (k * h, d), p + "self_attn.o_proj.weight": (d, n * h),
                p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d), p + "mlp.down_proj.weight": (d, f)})
    if t == "qwen2":
      out.update({p + "self_attn.q_proj.bias": (n * h,), p + "self_attn.k_proj.bias": (k * h,),
                  p + "self_attn.v_proj.bias": (k * h,)})
    if t in ("qwen3", "gemma3_text"):
      out.update({p + "self_attn.q_norm.weight": (h,), p + "self_attn.k_norm.weight": (h,)})
    if gemma:
      out.update({p + "pre_feedforward_layernorm.weight": (d,), p + "post_feedforward_layernorm.weight": (d,)})
  if not tied:
    out[root + "lm_head.weight"] = (v, d)
  return {name: rng.standard_normal(shape).astype(dtype) for name, shape in out.items()}


def write_hf_model(out_dir: str, family: str, *, seed: int = 0, dtype: str = "float32", max_shard_bytes: int = 1 << 40,
                   config_overrides: dict | None = None) -> dict[str, np.ndarray]:
  """Writes config.json + safetensors for `family`; returns the tensors written."""
  hf = dict(CONFIGS[family], **(config_overrides or {}), torch_dtype=dtype)
  np_dtype = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}[dtype]
  tensors = hf_tensors(hf, np.random.default_rng(seed), np_dtype)
  os.makedirs(out_dir, exist_ok=True)
  safetensors_io.save_checkpoint(out_dir, tensors, max_shard_bytes)
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump(hf, f, indent=2)
  return tensors
