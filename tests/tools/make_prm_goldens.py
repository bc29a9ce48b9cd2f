"""Writes tests/data/prm_goldens/<format>/: a tiny random off-the-shelf-style PRM and its reference scores.

  .venv/bin/python tests/tools/make_prm_goldens.py   # needs torch + transformers (CPU is fine)

Each directory holds config.json + model.safetensors (the backbone from transformers, the head
built as the published model code builds it), the tokenizer files, and golden.json: for every
example of `prm_goldens.EXAMPLES`, the ids and read positions the model card's code builds
(`reference_inputs`) and the step scores it computes (`reference_scores`), in float32.
tests/test_verifier_formats.py checks ttc_jax against them without torch, and, when torch is
installed, re-runs these reference functions live.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from ttc_jax.testing import prm_goldens  # noqa: E402
from ttc_jax.verify.formats import LLAMA3_USER, QWEN_SYSTEM  # noqa: E402


def _randomise(module, torch, seed: int) -> None:
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      if name.endswith("norm.weight"):
        p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
      elif "q_proj" in name or "k_proj" in name:
        p.copy_(0.6 * torch.randn(p.shape, generator=gen))  # Large q/k: position errors show in the scores.
      else:
        p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def build_model(fmt: str, model_dir: str | None = None):
  """The torch model of a format: fresh (random) or loaded from `model_dir`."""
  import safetensors.torch
  import torch
  import transformers

  config = transformers.AutoConfig.for_model(**{k: v for k, v in prm_goldens.hf_config(fmt).items()
                                                if k != "architectures"})
  config._attn_implementation = "eager"
  h = config.hidden_size

  class Prm(torch.nn.Module):
    """transformers' backbone + the format's head, with the published tensor names."""

    def __init__(self):
      super().__init__()
      if fmt == "qwen_prm":  # Qwen2ForProcessRewardModel: model.* + score = Linear, ReLU, Linear(h, 2).
        self.model = transformers.AutoModel.from_config(config)
        self.score = torch.nn.Sequential(torch.nn.Linear(h, h), torch.nn.ReLU(), torch.nn.Linear(h, 2))
      else:
        self.lm = transformers.AutoModelForCausalLM.from_config(config)
      if fmt == "skywork":  # Skywork's ValueHead: v_head.summary = Linear(h, 1) on the last hidden state.
        self.v_head = torch.nn.Module()
        self.v_head.summary = torch.nn.Linear(h, 1)

    def tensors(self) -> dict:
      out = {}
      for name, p in self.state_dict().items():
        out[name[len("lm."):] if name.startswith("lm.") else name] = p.contiguous()
      return out

    def load(self, tensors: dict) -> None:
      prefixed = {("lm." + k if fmt != "qwen_prm" and not k.startswith("v_head.") else k): v
                  for k, v in tensors.items()}
      self.load_state_dict(prefixed, strict=True)

  model = Prm().float().eval()
  if model_dir is None:
    torch.manual_seed(0)
    _randomise(model, torch, seed=len(fmt))
  else:
    model.load(safetensors.torch.load_file(os.path.join(model_dir, "model.safetensors")))
  return model


def reference_inputs(fmt: str, tokenizer, problem: str, steps: list[str]) -> tuple[list[int], list[int]]:
  """Ids and read positions as each model card / reference repository builds them."""
  if fmt == "qwen_prm":  # Qwen2.5-Math-PRM model card.
    messages = [{"role": "system", "content": QWEN_SYSTEM}, {"role": "user", "content": problem},
                {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"}]
    ids = tokenizer.encode(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False))
    sep = tokenizer.encode("<extra_0>")[0]
    return ids, [i for i, t in enumerate(ids) if t == sep]
  if fmt == "math_shepherd":  # math-shepherd-mistral-7b-prm model card.
    output = "\n".join(step + " ки" for step in steps)
    ids = tokenizer.encode(f"{problem} {output}")
    tag = tokenizer.encode("ки")[-1]
    return ids, [i for i, t in enumerate(ids) if t == tag]
  if fmt == "rlhflow":  # RLHFlow/RLHF-Reward-Modeling math PRM evaluation (and search-and-learn).
    conversation = []
    for k, step in enumerate(steps):
      conversation.append({"role": "user", "content": problem + " " + step if k == 0 else step})
      conversation.append({"role": "assistant", "content": "+"})
    # A fixed date: the Llama 3.2-style test template would write today's (Llama 3.1's defaults to this one).
    ids = tokenizer.apply_chat_template(conversation, tokenize=True, add_generation_prompt=False,
                                        date_string="26 Jul 2024")
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)  # transformers 5: a BatchEncoding.
    plus = tokenizer.encode("+", add_special_tokens=False)[-1]
    header = tokenizer.encode(LLAMA3_USER.replace("user", "assistant"), add_special_tokens=False)
    # The token before each assistant turn's "+" (the card reads position -3 of the last turn).
    reads = [i - 1 for i in range(len(header), len(ids)) if ids[i] == plus and ids[i - len(header):i] == header]
    return ids, reads
  if fmt == "skywork":  # skywork-o1-prm-inference prepare_input, step_token "\n".
    ids = tokenizer.encode(tokenizer.bos_token + problem + "\n")
    sep = tokenizer.encode("\n")[-1]
    reads = []
    for step in steps:
      ids += tokenizer.encode(step) + [sep]
      reads.append(len(ids) - 1)
    return ids, reads
  raise ValueError(fmt)


def reference_scores(fmt: str, model, tokenizer, ids: list[int], reads: list[int]) -> list[float]:
  import torch

  x = torch.tensor([ids], dtype=torch.long)
  with torch.no_grad():
    if fmt == "qwen_prm":
      hidden = model.model(x).last_hidden_state
      probs = torch.softmax(model.score(hidden), dim=-1)[0, :, 1]  # make_step_rewards: class 1.
    elif fmt == "skywork":
      hidden = model.lm.model(x).last_hidden_state
      probs = torch.sigmoid(model.v_head.summary(hidden))[0, :, 0]
    else:
      if fmt == "math_shepherd":
        pair = tokenizer.encode("+ -")[1:]  # After the BOS: [good, bad], as the card writes it.
      else:
        pair = [tokenizer.encode("+", add_special_tokens=False)[-1], tokenizer.encode("-", add_special_tokens=False)[-1]]
      logits = model.lm(x).logits[0][:, pair]
      probs = torch.softmax(logits, dim=-1)[:, 0]
  return [float(probs[i]) for i in reads]


def main() -> None:
  import safetensors.torch
  import torch
  import transformers

  for fmt in prm_goldens.SPECS:
    out_dir = prm_goldens.GOLDEN_DIR / fmt
    prm_goldens.write_tokenizer(fmt, out_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out_dir))
    model = build_model(fmt)
    safetensors.torch.save_file(model.tensors(), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(prm_goldens.hf_config(fmt), indent=2))
    cases = []
    for problem, steps in prm_goldens.EXAMPLES:
      ids, reads = reference_inputs(fmt, tokenizer, problem, steps)
      assert len(reads) == len(steps), (fmt, reads)
      cases.append({"problem": problem, "steps": steps, "ids": ids, "reads": reads,
                    "scores": reference_scores(fmt, model, tokenizer, ids, reads)})
    (out_dir / "golden.json").write_text(json.dumps(
        {"cases": cases, "versions": {"transformers": transformers.__version__, "torch": torch.__version__}}, indent=1))
    print(f"{fmt}: wrote {out_dir}: {[c['scores'] for c in cases]}")


if __name__ == "__main__":
  main()
