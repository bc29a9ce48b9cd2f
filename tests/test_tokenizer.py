"""The shipped SentencePiece tokenizer: ids, newline, digits, round trips, determinism."""
import string

import pytest

from ttc_jax.tasks import synthetic, tokenizer


@pytest.fixture(scope="module")
def tok():
  return tokenizer.load_tokenizer()


@pytest.fixture(scope="module")
def problems():
  cfg = synthetic.TaskConfig(max_steps=6, seed=11)
  return synthetic.generate_splits(cfg, {"train": 2000, "test": 200})


def test_special_ids(tok):
  assert (tok.pad_id, tok.eos_id, tok.bos_id, tok.unk_id) == (0, 1, 2, 3)
  assert tok.vocab_size == tokenizer.VOCAB_SIZE
  assert [tok.id_to_piece(i) for i in range(4)] == ["<pad>", "</s>", "<s>", "<unk>"]


def test_newline_is_one_dedicated_token(tok):
  assert tok.encode("\n") == [tok.newline_id]
  assert tok.id_to_piece(tok.newline_id) == "\n"
  ids = tok.encode("1 + 2 = 3\nThe answer is 3.")
  assert ids.count(tok.newline_id) == 1
  assert tok.encode("\n\n") == [tok.newline_id] * 2


def test_digits_are_split(tok):
  ids = tok.encode("9051")
  assert [tok.id_to_piece(i) for i in ids] == ["9", "0", "5", "1"]
  for d in string.digits:
    assert len(tok.encode(d)) == 1


def test_round_trip_task_texts(tok, problems):
  for split in problems.values():
    for p in split:
      for text in (p.question, p.solution, synthetic.prompt_text(p) + p.solution):
        ids = tok.encode(text)
        assert tokenizer.UNK_ID not in ids
        assert tok.decode(ids) == text


def test_prompt_then_solution_equals_whole(tok, problems):
  # The sampler conditions on encode(prompt) and generates the rest; training encodes
  # the two separately. Both must equal encoding the concatenation.
  for p in problems["test"]:
    prompt = synthetic.prompt_text(p)
    assert tok.encode(prompt) + tok.encode(p.solution) == tok.encode(prompt + p.solution)


def test_round_trip_any_printable_ascii(tok):
  text = "Attempt 2 (revised): x_1 = {a, b}; 50% off! #tag @home ~`|\\^\n  two  spaces\n"
  assert tok.decode(tok.encode(text)) == text
  every_printable = "".join(chr(c) for c in range(32, 127))
  assert tokenizer.UNK_ID not in tok.encode(every_printable)
  assert tok.decode(tok.encode(every_printable)) == every_printable


def test_decode_stops_at_eos_and_drops_pad(tok):
  ids = tok.encode("The answer is 4.")
  assert tok.decode([tok.bos_id] + ids + [tok.eos_id] + tok.encode("junk") + [0, 0]) == \
      "The answer is 4."
  assert tok.decode(ids + [tok.pad_id] * 3) == "The answer is 4."


def test_build_is_deterministic_and_matches_shipped(tmp_path):
  a = tokenizer.build(tmp_path / "a" / "arith")
  b = tokenizer.build(tmp_path / "b" / "arith")
  assert a.read_bytes() == b.read_bytes()
  assert (tmp_path / "a" / "arith.vocab").read_bytes() == \
      (tmp_path / "b" / "arith.vocab").read_bytes()
  shipped = tokenizer.shipped_model_path()
  # If this fails, rebuild: python -m ttc_jax.tasks.tokenizer --out=data/tokenizer/arith
  assert a.read_bytes() == shipped.read_bytes()
  assert (tmp_path / "a" / "arith.vocab").read_bytes() == \
      shipped.with_suffix(".vocab").read_bytes()


def test_load_paths(tmp_path, monkeypatch):
  default = tokenizer.load_tokenizer()
  assert default.model_path.endswith("data/tokenizer/arith.model")
  copy = tmp_path / "copy.model"
  copy.write_bytes(tokenizer.shipped_model_path().read_bytes())
  monkeypatch.setenv("TTC_JAX_TOKENIZER", str(copy))
  assert tokenizer.shipped_model_path() == copy
  assert tokenizer.load_tokenizer().model_path == str(copy)
  monkeypatch.delenv("TTC_JAX_TOKENIZER")
  assert tokenizer.load_tokenizer(copy).encode("12\n") == default.encode("12\n")
