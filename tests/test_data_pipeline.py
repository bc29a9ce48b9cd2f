"""Token layout, the ArrayRecord tfds builder and the grain training iterator."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ttc_jax.tasks import examples, grain_pipeline, synthetic, tfds_builder
from ttc_jax.tasks.tokenizer import load_tokenizer

SIZES = {"train": 48, "validation": 8, "test": 8}
TASK = synthetic.TaskConfig(seed=5)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def builder(data_dir):
  return tfds_builder.prepare_dataset(data_dir, TASK, SIZES)


@pytest.fixture(scope="module")
def tok():
  return load_tokenizer()


def _iterator(builder, tok, **kwargs):
  kwargs = {"seq_len": 128, "batch_size": 8, "seed": 0, **kwargs}
  return grain_pipeline.make_train_iterator(
      tfds_builder.data_source(builder, "train"), tok, **kwargs)


def _rows(batches):
  return [tuple(row) for b in batches for row in b["tokens"]]


# ---------------------------------------------------------------- encode_example


def test_encode_example_layout(tok):
  prompt, solution = "Question: Start with 2. Add 3. What is the result?\nSolution:\n", \
      "2 + 3 = 5\nThe answer is 5."
  tokens, mask = examples.encode_example(tok, prompt, solution)
  n_prompt, n_solution = len(tok.encode(prompt)), len(tok.encode(solution))
  assert tokens.dtype == mask.dtype == np.int32
  assert len(tokens) == len(mask) == 1 + n_prompt + n_solution + 1
  assert tokens[0] == tok.bos_id and tokens[-1] == tok.eos_id
  assert mask.tolist() == [0] * (1 + n_prompt) + [1] * (n_solution + 1)
  assert tok.decode(tokens[mask == 0]) == prompt
  assert tok.decode(tokens[mask == 1]) == solution  # decode stops at eos

  padded, padded_mask = examples.encode_example(tok, prompt, solution, seq_len=64)
  assert padded.shape == padded_mask.shape == (64,)
  assert (padded[:len(tokens)] == tokens).all() and (padded[len(tokens):] == tok.pad_id).all()
  assert (padded_mask[len(tokens):] == 0).all()


def test_encode_example_too_long_raises(tok):
  with pytest.raises(examples.ExampleTooLongError, match="seq_len=8"):
    examples.encode_example(tok, "Question: a long prompt\n", "1 + 1 = 2", seq_len=8)


def test_default_seq_len_fits_default_task(tok):
  problems = synthetic.generate_splits(synthetic.TaskConfig(), {"train": 3000})["train"]
  lengths = [len(examples.encode_example(tok, synthetic.prompt_text(p), p.solution)[0])
             for p in problems]
  assert max(lengths) <= examples.DEFAULT_SEQ_LEN


# ---------------------------------------------------------------- tfds builder


def test_builder_round_trips_problems(builder, data_dir):
  expected = synthetic.generate_splits(TASK, SIZES)
  assert builder.info.file_format.value == "array_record"
  for split, n in SIZES.items():
    source = tfds_builder.data_source(builder, split)
    assert len(source) == n
    assert tfds_builder.load_problems(source) == expected[split]  # in generation order
    assert source[0]["prompt"].decode() == synthetic.prompt_text(expected[split][0])
  assert tfds_builder.load_problems(tfds_builder.data_source(builder, "test"), limit=3) \
      == expected["test"][:3]
  # Readers that only know the name (not the TaskConfig) get the same data.
  import tensorflow_datasets as tfds
  by_name = tfds.builder(f"{tfds_builder.NAME}/{builder.builder_config.name}",
                         data_dir=data_dir)
  assert tfds_builder.load_problems(by_name.as_data_source("test")) == expected["test"]


def test_prepare_is_idempotent(builder, data_dir):
  files = sorted(p for p in builder.data_path.iterdir())
  mtimes = [os.stat(p).st_mtime_ns for p in files]
  again = tfds_builder.prepare_dataset(data_dir, TASK, SIZES)
  assert again.data_path == builder.data_path
  assert [os.stat(p).st_mtime_ns for p in files] == mtimes


def test_config_names_separate_datasets(tmp_path):
  default = tfds_builder.make_config(synthetic.TaskConfig(), tfds_builder.DEFAULT_SIZES)
  assert default.name == "default"
  # tfds only accepts the registered config object under a registered name.
  assert default is tfds_builder.TtcArith.BUILDER_CONFIGS[0]
  tfds_builder.TtcArith(data_dir=str(tmp_path), config=default, file_format="array_record")
  a = tfds_builder.make_config(TASK, SIZES)
  assert a.name == tfds_builder.make_config(TASK, dict(reversed(SIZES.items()))).name
  assert a.name != tfds_builder.make_config(TASK, {**SIZES, "train": 49}).name
  assert a.name != tfds_builder.make_config(synthetic.TaskConfig(seed=6), SIZES).name


@pytest.mark.parametrize("hide_tf", [True, False])
def test_prepare_and_read_without_tensorflow(tmp_path, hide_tf):
  # A fresh interpreter, with TensorFlow unfindable (as in the base install) or findable:
  # building, reading and batching must work, and nothing may import TF either way.
  code = textwrap.dedent(f"""
      import importlib.machinery as m, sys
      class HideTF(m.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
          if name.partition(".")[0] == "tensorflow":
            return None
          return super().find_spec(name, path, target)
      if {hide_tf}:
        sys.meta_path = [HideTF if f is m.PathFinder else f for f in sys.meta_path]
      from ttc_jax.tasks import grain_pipeline, synthetic, tfds_builder, tokenizer
      b = tfds_builder.prepare_dataset({str(tmp_path)!r}, synthetic.TaskConfig(seed=9),
                                       {{"train": 16, "test": 4}})
      it = grain_pipeline.make_train_iterator(
          tfds_builder.data_source(b, "train"), tokenizer.load_tokenizer(),
          seq_len=128, batch_size=4, seed=0)
      assert next(it)["tokens"].shape == (4, 128)
      assert len(tfds_builder.load_problems(tfds_builder.data_source(b, "test"))) == 4
      assert not any(k.partition(".")[0] == "tensorflow" for k in sys.modules)
      print("OK")
  """)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stderr[-3000:]


# ---------------------------------------------------------------- grain iterator


def test_batches_shapes_and_content(builder, tok):
  batch = next(_iterator(builder, tok))
  assert set(batch) == {"tokens", "loss_mask"}
  for v in batch.values():
    assert v.shape == (8, 128) and v.dtype == np.int32
  assert (batch["tokens"][:, 0] == tok.bos_id).all()
  prompts = {p.question for p in synthetic.generate_splits(TASK, SIZES)["train"]}
  for row, mask in zip(batch["tokens"], batch["loss_mask"]):
    question = tok.decode(row[mask == 0]).split("\n")[0].removeprefix("Question: ")
    assert question in prompts
    assert tok.decode(row[mask == 1]).endswith(".")


def test_deterministic_epochs_and_seed(builder, tok):
  a = [next(it) for it in [_iterator(builder, tok)] for _ in range(12)]
  b = [next(it) for it in [_iterator(builder, tok)] for _ in range(12)]
  assert _rows(a) == _rows(b)
  # One epoch = 48 examples = 6 batches, each example once; epoch 2 is reshuffled.
  epoch1, epoch2 = _rows(a[:6]), _rows(a[6:])
  assert len(set(epoch1)) == 48 and set(epoch1) == set(epoch2) and epoch1 != epoch2
  c = [next(it) for it in [_iterator(builder, tok, seed=1)] for _ in range(6)]
  assert _rows(c) != epoch1 and set(_rows(c)) == set(epoch1)


def test_num_epochs_drops_remainder(builder, tok):
  batches = list(_iterator(builder, tok, batch_size=10, num_epochs=1))
  assert len(batches) == 4 and all(b["tokens"].shape == (10, 128) for b in batches)


def test_host_shards_are_disjoint_and_cover(builder, tok):
  shards = [list(_iterator(builder, tok, batch_size=8, shard_index=i, shard_count=2,
                           num_epochs=1)) for i in range(2)]
  assert all(b["tokens"].shape == (4, 128) for s in shards for b in s)
  rows = [set(_rows(s)) for s in shards]
  assert not rows[0] & rows[1]
  full = set(_rows(list(_iterator(builder, tok, batch_size=8, num_epochs=1))))
  assert rows[0] | rows[1] == full


def test_bad_batch_size(builder, tok):
  with pytest.raises(ValueError, match="batch_size=9 must be divisible by shard_count=2"):
    _iterator(builder, tok, batch_size=9, shard_count=2)
  with pytest.raises(ValueError, match="shard_index"):
    _iterator(builder, tok, shard_index=2, shard_count=2)


def test_get_set_state_round_trip(builder, tok):
  it = _iterator(builder, tok)
  for _ in range(5):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(5)]
  fresh = _iterator(builder, tok)
  fresh.set_state(state)
  assert _rows([next(fresh) for _ in range(5)]) == _rows(expected)


def test_orbax_checkpoint_round_trip(builder, tok, tmp_path):
  import grain
  import orbax.checkpoint as ocp

  it = _iterator(builder, tok)
  for _ in range(5):
    next(it)
  with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
    mngr.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
    mngr.wait_until_finished()
  expected = [next(it) for _ in range(5)]

  fresh = _iterator(builder, tok)
  with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
    assert mngr.latest_step() == 5
    mngr.restore(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
  got = [next(fresh) for _ in range(5)]
  for g, e in zip(got, expected):
    np.testing.assert_array_equal(g["tokens"], e["tokens"])
    np.testing.assert_array_equal(g["loss_mask"], e["loss_mask"])
