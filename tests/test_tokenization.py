"""Tokenizer backends behind one interface: dispatch, HF ids equal `tokenizers`/transformers, special ids."""
import shutil

import pytest

from ttc_jax.tasks.tokenizer import shipped_model_path
from ttc_jax.tokenization import HFTokenizer, SentencePieceTokenizer, Tokenizer, load_tokenizer

CORPUS = [
    "Step 1: 12 + 7 = 19.\n\nStep 2: 19 * 2 = 38.\n\nThe answer is $\\boxed{38}$.",
    "héllo wörld — naïve café, 日本語のテキスト, emoji 🙂🚀, Ελληνικά.\n",
    "a\n\n\nb\r\n\tc  d   \n \n",
    "x.\n\ny:\n\n- z\n",
    "",
    " leading space, trailing space ",
]


def test_dispatch(tmp_path):
  assert isinstance(load_tokenizer(shipped_model_path()), SentencePieceTokenizer)
  only_model = tmp_path / "sp"
  only_model.mkdir()
  shutil.copy(shipped_model_path(), only_model / "tokenizer.model")
  assert isinstance(load_tokenizer(only_model), SentencePieceTokenizer)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match=r"empty: tokenizer missing.*tokenizer\.json.*tokenizer\.model"):
    load_tokenizer(empty)


def test_sentencepiece_interface():
  tok = load_tokenizer(shipped_model_path())
  assert isinstance(tok, Tokenizer)
  assert tok.eos_ids == {1} and tok.bos_id == 2 and tok.pad_id == 0
  assert tok.prompt_ids("1 + 2\n") == [2] + tok.encode("1 + 2\n")
  texts = tok.token_texts()
  assert len(texts) == tok.vocab_size and texts[tok.newline_id] == "\n" and texts[:4] == ("",) * 4
  assert [i for i, t in enumerate(texts) if "\n" in t] == [tok.newline_id]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A byte-level BPE trained at test time with the `tokenizers` trainer (GPT-2-style pre-splitting)."""
  tokenizers = pytest.importorskip("tokenizers")
  from tokenizers import decoders, models, pre_tokenizers, trainers
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_end|>"],
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
  tok.train_from_iterator(CORPUS * 20, trainer)
  out = tmp_path_factory.mktemp("trained")
  tok.save(str(out / "tokenizer.json"))
  (out / "tokenizer_config.json").write_text('{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", '
                                             '"tokenizer_class": "PreTrainedTokenizerFast"}')
  (out / "config.json").write_text('{"eos_token_id": [0, 1]}')
  return out, tok


def test_trained_bpe_ids_equal_tokenizers(trained):
  directory, raw = trained
  tok = load_tokenizer(directory)
  assert isinstance(tok, HFTokenizer) and isinstance(tok, Tokenizer)
  for text in CORPUS:
    assert tok.encode(text) == raw.encode(text, add_special_tokens=False).ids
    assert tok.decode(tok.encode(text)) == text
    assert tok.prompt_ids(text) == tok.encode(text)  # No BOS: the post-processor adds nothing.
  assert tok.bos_id is None
  assert tok.eos_id == 1 and tok.eos_ids == {0, 1} and tok.pad_id == 0
  assert tok.vocab_size == raw.get_vocab_size() and len(tok.token_texts()) == tok.vocab_size
  assert tok.decode(tok.encode("ab") + [1] + tok.encode("cd")) == "ab"  # Cut at the first EOS.


def test_trained_bpe_ids_equal_transformers(trained):
  transformers = pytest.importorskip("transformers")
  directory, _ = trained
  theirs = transformers.AutoTokenizer.from_pretrained(directory)
  ours = load_tokenizer(directory)
  for text in CORPUS:
    assert ours.encode(text) == theirs.encode(text, add_special_tokens=False)
    assert ours.prompt_ids(text) == theirs.encode(text)


def test_eos_from_generation_config_and_pad_fallback(tmp_path):
  from ttc_jax.testing.chat_fixtures import llama3_dir
  tok = load_tokenizer(llama3_dir(tmp_path))
  ids = {t: tok._tok.token_to_id(t) for t in ("<|begin_of_text|>", "<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")}
  assert tok.eos_ids == {ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]}
  assert tok.eos_id == ids["<|eot_id|>"] and tok.pad_id == tok.eos_id
  assert tok.bos_id == ids["<|begin_of_text|>"]
  assert tok.prompt_ids("the end") == [tok.bos_id] + tok.encode("the end")
  assert tok.decode(tok.prompt_ids("the end") + [ids["<|eom_id|>"]]) == "the end"


def test_missing_eos_is_an_error(tmp_path):
  from ttc_jax.testing.hf_tokenizers import byte_bpe_dir
  with pytest.raises(ValueError, match="no end-of-sequence id"):
    load_tokenizer(byte_bpe_dir(tmp_path))


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
  from ttc_jax.testing.chat_fixtures import smollm2_dir
  return smollm2_dir(tmp_path_factory.mktemp("smollm2"))


def test_smollm2_ids_equal_transformers(smollm2):
  import tokenizers
  import transformers
  theirs = transformers.AutoTokenizer.from_pretrained(smollm2)
  raw = tokenizers.Tokenizer.from_file(str(smollm2 / "tokenizer.json"))
  ours = load_tokenizer(smollm2)
  for text in CORPUS:
    assert ours.encode(text) == theirs.encode(text, add_special_tokens=False)
    assert ours.encode(text) == raw.encode(text, add_special_tokens=False).ids
    assert ours.prompt_ids(text) == theirs.encode(text)
    assert ours.decode(ours.encode(text)) == text
  assert ours.bos_id is None and ours.eos_id == theirs.eos_token_id and theirs.eos_token_id in ours.eos_ids
  assert ours.encode("a\n\nb") == ours.encode("a") + [198, 198] + ours.encode("b")  # GPT-2 style: two "\n".
