"""The tiny per-family models behind tests/data/hf_goldens (made by tests/tools/make_hf_goldens.py).

Shared by the generator (which runs transformers) and the parity tests (which do not).
"""
import os

import numpy as np

from ttc_jax.testing.tiny import REPO_ROOT

GOLDEN_DIR = os.path.join(REPO_ROOT, "tests", "data", "hf_goldens")
SEQ_LEN, PROMPT_LEN, NEW_TOKENS = 20, 12, 8
_WINDOW = 6  # Shorter than the sequence, so windows change the outputs.

_BASE = dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             head_dim=8, intermediate_size=64, max_position_embeddings=128, rms_norm_eps=1e-6,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)

# config.json of each family, as transformers writes it (model_type selects the class).
FAMILIES = {
    "llama3": dict(_BASE, model_type="llama", rope_theta=500000.0, tie_word_embeddings=False,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    "qwen2": dict(_BASE, model_type="qwen2", rope_theta=1000000.0, tie_word_embeddings=True),
    "qwen3": dict(_BASE, model_type="qwen3", rope_theta=1000000.0, tie_word_embeddings=False),
    "mistral": dict(_BASE, model_type="mistral", rope_theta=10000.0, sliding_window=_WINDOW),
    "gemma2": dict(_BASE, model_type="gemma2", hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16,
                   attn_logit_softcapping=5.0, final_logit_softcapping=3.0, sliding_window=_WINDOW),
    "gemma3": dict(_BASE, model_type="gemma3_text", num_hidden_layers=6, query_pre_attn_scalar=16,
                   sliding_window=_WINDOW, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                   rope_scaling={"rope_type": "linear", "factor": 8.0}, sliding_window_pattern=6),
}


def golden_tokens(vocab_size: int) -> np.ndarray:
  """int32[2, SEQ_LEN] fixed input ids (no special ids, so no family treats them specially)."""
  return np.random.default_rng(1234).integers(3, vocab_size, size=(2, SEQ_LEN)).astype(np.int32)
