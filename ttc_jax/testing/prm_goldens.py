"""Tiny off-the-shelf-PRM stand-ins behind tests/data/prm_goldens (made by tests/tools/make_prm_goldens.py).

One directory per verifier format: a random model with the published head (Qwen2.5-Math-PRM's
two-layer classifier, Skywork's v_head.summary, or an LM whose "+" / "-" logits are read), a
byte-level tokenizer with the format's special tokens (`<extra_0>`, Llama 3's headers, ...) and
chat template, and golden.json: the reference ids, read positions and step scores computed with
transformers + torch the way each model card does. Shared by the generator and the tests.
"""
import json
import pathlib

from ttc_jax.testing.chat_fixtures import LLAMA3_SPECIALS, LLAMA3_TEMPLATE, QWEN_SPECIALS, QWEN_TEMPLATE
from ttc_jax.testing.hf_tokenizers import byte_bpe_dir
from ttc_jax.testing.tiny import REPO_ROOT

GOLDEN_DIR = pathlib.Path(REPO_ROOT) / "tests" / "data" / "prm_goldens"

# "\n\n" and ".\n\n" are tokens (as in Llama 3 / Qwen); "ки" is one token, " -" too (Math-Shepherd's "-").
MERGES = [("Ċ", "Ċ"), (".", "ĊĊ"), ("t", "h"), ("th", "e"), ("Ġ", "the"), ("Ð", "º"), ("Ð", "¸"), ("Ðº", "Ð¸"),
          ("Ġ", "-")]

_MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
              intermediate_size=64, max_position_embeddings=256, rms_norm_eps=1e-6)

# format -> (config.json of the backbone, tokenizer specials, tokenizer options).
SPECS = {
    "qwen_prm": (dict(_MODEL, model_type="qwen2", rope_theta=1000000.0, tie_word_embeddings=False,
                      architectures=["Qwen2ForProcessRewardModel"]),
                 QWEN_SPECIALS + ["<extra_0>"], dict(eos="<|im_end|>", pad="<|endoftext|>", chat_template=QWEN_TEMPLATE)),
    "math_shepherd": (dict(_MODEL, model_type="mistral", rope_theta=10000.0, sliding_window=None,
                           tie_word_embeddings=False, architectures=["MistralForCausalLM"]),
                      ["<unk>", "<s>", "</s>"], dict(bos="<s>", eos="</s>")),
    "rlhflow": (dict(_MODEL, model_type="llama", rope_theta=500000.0, tie_word_embeddings=False,
                     rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 32}, architectures=["LlamaForCausalLM"]),
                LLAMA3_SPECIALS, dict(bos="<|begin_of_text|>", eos="<|eot_id|>", chat_template=LLAMA3_TEMPLATE)),
    # Skywork's Qwen tokenizer names a bos_token that its post-processor does not add.
    "skywork": (dict(_MODEL, model_type="qwen2", rope_theta=1000000.0, tie_word_embeddings=False,
                     architectures=["Qwen2ForPrmModel"]),
                QWEN_SPECIALS, dict(eos="<|im_end|>", pad="<|endoftext|>")),
}
SKYWORK_BOS = "<|endoftext|>"

# (problem, steps) pairs scored by every format: steps as the policy's host split gives them. The second
# starts with "the", which the vocabulary merges with a space before it ("Ġthe"): joined to the question
# (rlhflow's first turn) the step's first token changes.
EXAMPLES = [
    ("What is 2 + 3?", ["First add 2 and 3.", "That gives 5.", "The answer is \\boxed{5}."]),
    ("Solve x - 4 = 10 for x.", ["the sum x = 10 + 4 = 14.", "Check: 14 - 4 = 10.", "So x = 14"]),
]


def vocab_size() -> int:
  return 256 + len(MERGES) + max(len(s) for _, s, _ in SPECS.values())


def write_tokenizer(fmt: str, directory) -> pathlib.Path:
  """The format's tiny tokenizer directory (same ids on every run)."""
  _, specials, options = SPECS[fmt]
  directory = byte_bpe_dir(directory, merges=MERGES, specials=specials, **options)
  if fmt == "skywork":
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["bos_token"] = SKYWORK_BOS
    config_path.write_text(json.dumps(config, indent=2))
  return directory


def hf_config(fmt: str) -> dict:
  return dict(SPECS[fmt][0], vocab_size=vocab_size())


# fp32 on both sides, different accumulation orders. Largest differences measured (large random weights):
# 8.2e-6 skywork, 5.0e-6 qwen_prm, 1.2e-6 math_shepherd, 6e-7 rlhflow. A wrong head, position or token
# moves a score by more than 1e-2.
SCORE_ATOL = 2e-5


def golden_cases(fmt: str) -> list[dict]:
  """The stored cases: problem, steps, reference ids, read positions and scores."""
  return json.loads((GOLDEN_DIR / fmt / "golden.json").read_text())["cases"]
