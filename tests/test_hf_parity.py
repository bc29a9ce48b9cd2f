"""Every family against transformers: logits within 1e-5 (fp32) and greedy tokens equal.

Goldens come from tests/tools/make_hf_goldens.py (tiny random models, large q/k
weights, windows shorter than the sequence), so this runs without torch; when
torch and transformers are installed the same checks also run live.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import export
from ttc_jax.decode.sampler import sample
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.models import Transformer
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.testing.hf_goldens import FAMILIES, GOLDEN_DIR, NEW_TOKENS, PROMPT_LEN
from ttc_jax.tokenization.steps import StopRule

# fp32 accumulation order differs from torch's, and by CPU: on the machine the goldens were checked on
# the largest difference was 1.5e-5 (Mistral, 5 of 3,840 logits above 1e-5; the others under 1.3e-5);
# on an AVX-512 Xeon (2026-12-02) Llama 3 reaches 3.1e-5 (1 logit of 3,840) with the same code (the last
# commit that passed CI fails a 2e-5 bound there). A wrong switch moves logits by more than 1e-2.
LOGIT_ATOL = 4e-5

_FAMILY_SWITCHES = {  # What each family must turn on: a loader that drops a switch fails here too.
    "llama3": dict(rope_scaling="llama3"), "qwen2": dict(qkv_bias=True), "qwen3": dict(qk_norm=True),
    "mistral": dict(sliding_window=6), "gemma2": dict(post_norms=True, attn_softcap=5.0, final_softcap=3.0),
    "gemma3": dict(qk_norm=True, local_rope_theta=10000.0, rope_scaling="linear")}


def _load(family, devices=1):
  mesh = make_mesh(MeshConfig(data=1, fsdp=devices // 2 or 1, tensor=2 if devices > 1 else 1), jax.devices()[:devices])
  cfg, params, _ = export.load_params("hf:" + os.path.join(GOLDEN_DIR, family), mesh)
  return cfg, params


def _golden(family):
  return np.load(os.path.join(GOLDEN_DIR, family, "golden.npz"))


def _greedy(cfg, params, prompts):
  model = Transformer(cfg)
  rule = StopRule.from_ids(cfg.vocab_size)  # Never stops early: transformers ran exactly NEW_TOKENS.
  out = sample(model, params, jnp.asarray(prompts), jnp.ones(prompts.shape, bool), jax.random.key(0), num_samples=1,
               cfg=SamplingConfig(temperature=0.0, max_new_tokens=NEW_TOKENS), stop=rule, pad_id=0)
  return np.asarray(out.tokens_BxN)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_logits_and_cached_greedy_equal_transformers(family):
  cfg, params = _load(family)
  for field, value in _FAMILY_SWITCHES[family].items():
    assert getattr(cfg, field) == value, (family, field)
  g = _golden(family)
  logits = Transformer(cfg).apply(params, jnp.asarray(g["tokens"])).logits_BxTxV
  np.testing.assert_allclose(np.asarray(logits), g["logits"], atol=LOGIT_ATOL, rtol=1e-5)
  # KV-cached greedy decoding (prefill + while_loop) equals transformers' generate.
  np.testing.assert_array_equal(_greedy(cfg, params, g["tokens"][:, :PROMPT_LEN]), g["greedy"])


@pytest.mark.parametrize("family", ["gemma3", "mistral"])
def test_sharded_load_gives_the_same_logits(family):
  cfg, params = _load(family, devices=8)
  g = _golden(family)
  logits = Transformer(cfg).apply(params, jnp.asarray(g["tokens"])).logits_BxTxV
  np.testing.assert_allclose(np.asarray(logits), g["logits"], atol=LOGIT_ATOL, rtol=1e-5)


def test_prefill_reads_only_the_last_position():
  cfg, params = _load("qwen2")
  tokens = jnp.asarray(_golden("qwen2")["tokens"])
  out = Transformer(cfg).apply(params, tokens, read_BxK=jnp.array([[19], [4]]))
  assert out.logits_BxTxV.shape == (2, 1, cfg.vocab_size)
  np.testing.assert_allclose(out.logits_BxTxV[:, 0], _golden("qwen2")["logits"][[0, 1], [19, 4]], atol=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_live_transformers_matches_golden(family):
  """The stored goldens are what the installed transformers computes today."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(GOLDEN_DIR, family), dtype=torch.float32,
                                                            attn_implementation="eager").eval()
  g = _golden(family)
  with torch.no_grad():
    logits = model(torch.tensor(g["tokens"], dtype=torch.long)).logits.numpy()
  np.testing.assert_allclose(logits, g["logits"], atol=1e-5, rtol=1e-5)
