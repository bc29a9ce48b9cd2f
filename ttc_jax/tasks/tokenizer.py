"""SentencePiece tokenizer of the synthetic task: wrapper, loader and deterministic builder.

Build the shipped model (byte-identical on every run):

  python -m ttc_jax.tasks.tokenizer --out=data/tokenizer/arith

Properties the rest of the code relies on:
  * fixed special ids: pad=0, eos=1, bos=2, unk=3;
  * "\\n" is one dedicated token (`newline_id`): it marks step boundaries for the PRM;
  * digits are single tokens (split_digits), so numbers are spelled digit by digit;
  * identity normalisation, no dummy prefix, no whitespace collapsing: decode(encode(s))
    == s for every task text and, through `required_chars`, for any printable-ASCII text
    (revision and few-shot prompts add words the task corpus lacks);
  * encode(a) + encode(b) == encode(a + b) when `a` ends with "\\n" (prompt, then
    solution), because a user-defined symbol is never merged across.
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
from collections.abc import Iterator, Sequence

import sentencepiece as spm

from ttc_jax.tasks import synthetic
from ttc_jax.tokenization import load as _load_lib
from ttc_jax.tokenization.base import Tokenizer as TokenizerProtocol
from ttc_jax.tokenization.sentencepiece import BOS_ID, EOS_ID, NEWLINE, PAD_ID, UNK_ID, SentencePieceTokenizer
VOCAB_SIZE = 192
# Corpus of the shipped model: fixed here (not TaskConfig()), so changing task defaults
# does not silently change the tokenizer.
_CORPUS_TASK = synthetic.TaskConfig(
    min_steps=1, max_steps=6, operand_maxes=(9, 99), operand_max_weights=(1.0, 1.0),
    op_sets=("+-*",), op_set_weights=(1.0,), max_value=999, seed=20240806)
_CORPUS_PROBLEMS = 3000
# Every printable ASCII character gets a piece, so unseen words spell out instead of <unk>.
_REQUIRED_CHARS = "".join(chr(c) for c in range(33, 127))
_SHIPPED_NAME = "arith.model"
# Environment override for installs that do not keep the repo's data/ next to the package.
_PATH_ENV = "TTC_JAX_TOKENIZER"


# The SentencePiece backend under its historical name (jobs and exports build it from a path).
Tokenizer = SentencePieceTokenizer


def shipped_model_path() -> pathlib.Path:
  """Path of data/tokenizer/arith.model: $TTC_JAX_TOKENIZER, else the repo checkout that
  holds this package (editable install), else the working directory."""
  if os.environ.get(_PATH_ENV):
    return pathlib.Path(os.environ[_PATH_ENV])
  rel = pathlib.Path("data", "tokenizer", _SHIPPED_NAME)
  candidates = [parent / rel for parent in pathlib.Path(__file__).resolve().parents]
  candidates.append(pathlib.Path.cwd() / rel)
  for path in candidates:
    if path.is_file():
      return path
  raise FileNotFoundError(
      f"no shipped tokenizer at {rel} above {pathlib.Path(__file__).parent} or in the working "
      f"directory; set ${_PATH_ENV} or build it with "
      "`python -m ttc_jax.tasks.tokenizer --out=data/tokenizer/arith`")


def load_tokenizer(path: str | os.PathLike | None = None) -> TokenizerProtocol:
  """Loads (and caches) a tokenizer; default: the shipped `arith.model`.

  `path`: a SentencePiece `.model` file, or a directory with tokenizer.json (Hugging
  Face) or tokenizer.model (SentencePiece); see `tokenization.load`.
  """
  return _load_lib.load_tokenizer(path or shipped_model_path())


def _corpus() -> Iterator[str]:
  """Training sentences: the lines of prompts and solutions (newlines are symbols)."""
  problems = synthetic.generate_splits(_CORPUS_TASK, {"train": _CORPUS_PROBLEMS})["train"]
  for p in problems:
    for line in (synthetic.prompt_text(p) + p.solution).split(NEWLINE):
      if line:
        yield line


def train_model_proto(vocab_size: int = VOCAB_SIZE) -> bytes:
  """Trains the task tokenizer and returns the serialized ModelProto (deterministic)."""
  out = io.BytesIO()
  # model_writer instead of model_prefix: the proto then records no output path, so the
  # bytes do not depend on where the model is written.
  spm.SentencePieceTrainer.train(
      sentence_iterator=_corpus(),
      model_writer=out,
      model_type="bpe",
      vocab_size=vocab_size,
      character_coverage=1.0,
      required_chars=_REQUIRED_CHARS,
      split_digits=True,
      user_defined_symbols=[NEWLINE],
      normalization_rule_name="identity",
      remove_extra_whitespaces=False,
      add_dummy_prefix=False,
      pad_id=PAD_ID, eos_id=EOS_ID, bos_id=BOS_ID, unk_id=UNK_ID,
      # Determinism: one thread, whole corpus in order, no sampling.
      num_threads=1,
      input_sentence_size=0,
      shuffle_input_sentence=False,
      minloglevel=2,
  )
  return out.getvalue()


def build(out_prefix: str | os.PathLike, vocab_size: int = VOCAB_SIZE) -> pathlib.Path:
  """Writes `{out_prefix}.model` and a human-readable `{out_prefix}.vocab`."""
  proto = train_model_proto(vocab_size)
  model_path = pathlib.Path(f"{out_prefix}.model")
  model_path.parent.mkdir(parents=True, exist_ok=True)
  model_path.write_bytes(proto)
  sp = spm.SentencePieceProcessor(model_proto=proto)
  # One "piece<TAB>score" per line like spm's own .vocab; the newline piece is written
  # escaped so the file keeps one line per id, and `+ 0.0` turns "-0" into "0".
  lines = [sp.id_to_piece(i).replace(NEWLINE, "\\n") + f"\t{sp.get_score(i) + 0.0:g}"
           for i in range(sp.get_piece_size())]
  pathlib.Path(f"{out_prefix}.vocab").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return model_path


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="data/tokenizer/arith", help="output prefix")
  parser.add_argument("--vocab_size", type=int, default=VOCAB_SIZE)
  args = parser.parse_args(argv)
  path = build(args.out, args.vocab_size)
  print(f"wrote {path} ({Tokenizer(path).vocab_size} pieces)")


if __name__ == "__main__":
  main()
