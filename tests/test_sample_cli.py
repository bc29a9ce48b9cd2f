"""`python -m ttc_jax.sample` on an hf: directory: chat-templated ids, the sampler, steps from the model's tokens."""
import json

import jax
import pytest

from ttc_jax import export, sample
from ttc_jax.decode.generate import generate_from_ids
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.testing.hf_tokenizers import byte_bpe_dir
from ttc_jax.testing.tiny_hf import write_hf_model
from ttc_jax.tokenization.steps import PARAGRAPH_STEPS

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("qwen")
  tok = byte_bpe_dir(d, merges=[("Ċ", "Ċ")], specials=["<|im_start|>", "<|im_end|>"], eos="<|im_end|>",
                     chat_template=CHATML)
  vocab = 256 + 1 + 2
  write_hf_model(str(d), "qwen2", config_overrides={"vocab_size": vocab + 5})  # Padded past the tokenizer.
  return str(tok)


def test_chat_sample_prints_what_the_library_samples(model_dir, capsys):
  assert sample.main(["--model", f"hf:{model_dir}", "--prompt", "2+2?", "--prompt", "Say hi", "--chat",
                      "--system", "Be brief.", "--max_new_tokens", "12", "--json"]) == 0
  rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [(r["prompt"], r["sample"]) for r in rows] == [(0, 0), (1, 0)]

  loaded = export.load_model(f"hf:{model_dir}", make_mesh(MeshConfig(), jax.devices()[:1]))
  tok = loaded.tokenizer
  ids = [tok.encode_chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}])
         for q in ("2+2?", "Say hi")]
  assert ids[0][0] == tok.encode("<|im_start|>")[0] and ids[0][-1] == tok.encode("\n")[0]  # The template's ids.
  want = generate_from_ids(loaded.model, loaded.params, tok, ids, jax.random.key(0), num_samples=1,
                           cfg=SamplingConfig(temperature=0.0, max_new_tokens=12), batch_size=2,
                           step_format=PARAGRAPH_STEPS)
  for row, gens in zip(rows, want):
    assert row["text"] == gens[0].text and row["num_tokens"] == gens[0].num_tokens
    assert row["steps"] == PARAGRAPH_STEPS.split(tok, gens[0].token_ids)
    assert row["stop_reason"] in ("eos", "length")


def test_bad_mesh_is_named():
  with pytest.raises(SystemExit, match="--mesh='2,x'"):
    sample.main(["--model", "hf:/nowhere", "--prompt", "x", "--mesh", "2,x"])
