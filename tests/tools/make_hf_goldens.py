"""Writes tests/data/hf_goldens/<family>/: a tiny random transformers model per family and its outputs.

  .venv/bin/python tests/tools/make_hf_goldens.py   # needs torch + transformers (CPU is fine)

Each directory holds config.json + model.safetensors (saved by transformers) and
golden.npz: `tokens` int32[2, 20] (unpadded), `logits` float32[2, 20, V] from the
full fp32 forward pass (eager attention), and `greedy` int32[2, 8]: transformers'
KV-cached greedy continuation of the first 12 tokens. tests/test_hf_parity.py checks
ttc_jax against them without torch.

Weights are drawn with a large std (q/k especially) and llama3 scaling uses a short
original_max_position_embeddings, since default init hides RoPE and scaling errors;
sliding windows (6) are shorter than the sequence (20), and Gemma 2's soft-caps are
small enough to bend the scores.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from ttc_jax.testing.hf_goldens import FAMILIES, GOLDEN_DIR, PROMPT_LEN, SEQ_LEN, NEW_TOKENS, golden_tokens  # noqa: E402


def _randomise(model, torch, seed: int, gemma: bool) -> None:
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith("norm.weight"):
        # Gemma's norms scale by (1 + w): w near 0; the others by w: near 1.
        p.copy_((0.0 if gemma else 1.0) + 0.3 * torch.randn(p.shape, generator=gen))
      elif "q_proj" in name or "k_proj" in name:
        p.copy_(0.6 * torch.randn(p.shape, generator=gen))  # Large q/k: RoPE errors show in the logits.
      else:
        p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def main() -> None:
  import torch
  import transformers

  for family, hf_config in FAMILIES.items():
    out_dir = os.path.join(GOLDEN_DIR, family)
    os.makedirs(out_dir, exist_ok=True)
    config = transformers.AutoConfig.for_model(**hf_config)
    config._attn_implementation = "eager"  # Soft-capping needs eager; the others match it.
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    _randomise(model, torch, seed=len(family), gemma=family.startswith("gemma"))
    tokens = golden_tokens(hf_config["vocab_size"])
    with torch.no_grad():
      logits = model(torch.tensor(tokens, dtype=torch.long)).logits.float().numpy()
      greedy = model.generate(torch.tensor(tokens[:, :PROMPT_LEN], dtype=torch.long), max_new_tokens=NEW_TOKENS,
                              min_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0)
    model.save_pretrained(out_dir, safe_serialization=True)
    np.savez_compressed(os.path.join(out_dir, "golden.npz"), tokens=tokens, logits=logits,
                        greedy=greedy[:, PROMPT_LEN:].numpy().astype(np.int32))
    with open(os.path.join(out_dir, "versions.json"), "w") as f:
      json.dump({"transformers": transformers.__version__, "torch": torch.__version__}, f)
    assert logits.shape == (2, SEQ_LEN, hf_config["vocab_size"])
    print(f"{family}: wrote {out_dir}")


if __name__ == "__main__":
  main()
