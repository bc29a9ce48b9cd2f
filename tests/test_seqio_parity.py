"""The seqio Task and the grain pipeline yield identical token ids for the same examples."""
import numpy as np
import pytest

seqio = pytest.importorskip("seqio")
tf = pytest.importorskip("tensorflow")

from ttc_jax.tasks import examples, grain_pipeline, seqio_tasks, synthetic, tfds_builder  # noqa: E402
from ttc_jax.tasks.tokenizer import load_tokenizer  # noqa: E402

SIZES = {"train": 40, "validation": 8, "test": 24}
TASK = synthetic.TaskConfig(seed=13)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  return data_dir, seqio_tasks.register_tasks(data_dir, TASK, SIZES, name="ttc_arith_parity")


def _unpad(tokens_T, loss_mask_T, eos_id):
  n = int(np.flatnonzero(tokens_T == eos_id)[0]) + 1
  assert (loss_mask_T[n:] == 0).all()
  return tuple(tokens_T[:n].tolist()), tuple(loss_mask_T[:n].tolist())


def test_seqio_equals_grain_per_example(task):
  data_dir, seqio_task = task
  tok = load_tokenizer()
  builder = tfds_builder.prepare_dataset(data_dir, TASK, SIZES)
  source = tfds_builder.data_source(builder, "test")
  encode = grain_pipeline.EncodeExample(model_path=tok.model_path,
                                        seq_len=examples.DEFAULT_SEQ_LEN)
  seqio_examples = list(seqio_task.get_dataset(
      split="test", sequence_length=None, shuffle=False).as_numpy_iterator())
  assert len(seqio_examples) == len(source) == SIZES["test"]
  for i, ex in enumerate(seqio_examples):
    grain_ex = encode.map(source[i])
    assert (tuple(ex["tokens"].tolist()), tuple(ex["loss_mask"].tolist())) == _unpad(
        grain_ex["tokens"], grain_ex["loss_mask"], tok.eos_id)


def test_seqio_equals_grain_training_epoch(task):
  # The actual training iterator (shuffled, batched, padded) over one epoch holds
  # exactly the seqio examples.
  data_dir, seqio_task = task
  tok = load_tokenizer()
  builder = tfds_builder.prepare_dataset(data_dir, TASK, SIZES)
  it = grain_pipeline.make_train_iterator(
      tfds_builder.data_source(builder, "train"), tok, seq_len=128, batch_size=8,
      seed=3, num_epochs=1)
  grain_rows = sorted(_unpad(t, m, tok.eos_id) for b in it
                      for t, m in zip(b["tokens"], b["loss_mask"]))
  seqio_rows = sorted((tuple(ex["tokens"].tolist()), tuple(ex["loss_mask"].tolist()))
                      for ex in seqio_task.get_dataset(
                          split="train", sequence_length=None, shuffle=False
                      ).as_numpy_iterator())
  assert len(grain_rows) == SIZES["train"] and grain_rows == seqio_rows


def test_seqio_vocabulary_matches_tokenizer(task):
  _, seqio_task = task
  vocab = seqio_task.output_features["tokens"].vocabulary
  tok = load_tokenizer()
  assert vocab.vocab_size == tok.vocab_size
  assert (vocab.pad_id, vocab.eos_id, vocab.bos_id, vocab.unk_id) == (0, 1, 2, 3)
  for p in synthetic.generate_splits(TASK, {"test": 50})["test"]:
    text = synthetic.prompt_text(p) + p.solution
    ids = tok.encode(text)
    assert vocab.encode_tf(tf.constant(text)).numpy().tolist() == ids  # TF tokenizer
    assert vocab.encode(text) == ids
    assert vocab.decode(ids) == text
