"""seqio Task over the same tfds builder, for seqio/T5X-style pipelines.

  task = register_tasks(data_dir)            # registers "ttc_arith"
  ds = task.get_dataset(split="train", sequence_length=None, shuffle=False)
  # examples: {"tokens": int32[T], "loss_mask": int32[T]} (unpadded, T varies)

Source: a `seqio.FunctionDataSource` over the builder's ArrayRecord `as_data_source()`.
`seqio.TfdsDataSource` cannot be used: it reads through tfds `as_dataset()`, which tfds
4.9 does not implement for ArrayRecord ("use .as_data_source()").

Token ids: the preprocessor calls `examples.encode_example` (via tf.numpy_function), the
same function the grain path uses, so the two cannot drift; the declared vocabulary is
`seqio.SentencePieceVocabulary` of the same shipped model (tests check its TF tokenizer
agrees). This is the only module that imports TensorFlow or seqio.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from ttc_jax.tasks import examples, synthetic, tfds_builder
from ttc_jax.tasks.tokenizer import load_tokenizer, shipped_model_path

TASK_NAME = "ttc_arith"
_INT_FIELDS = ("num_steps", "max_operand")


def _dataset_fn(split: str, shuffle_files: bool, seed: int | None = None, *, builder):
  """tf.data over one split of the ArrayRecord builder, in stored order."""
  import tensorflow as tf
  del shuffle_files, seed  # One shard per split; Task.get_dataset(shuffle=True) shuffles.
  source = tfds_builder.data_source(builder, split)

  def generate():
    for i in range(len(source)):
      ex = source[i]
      yield {k: ex[k] for k in tfds_builder.TEXT_FIELDS + _INT_FIELDS}

  signature = {k: tf.TensorSpec([], tf.string) for k in tfds_builder.TEXT_FIELDS}
  signature.update({k: tf.TensorSpec([], tf.int32) for k in _INT_FIELDS})
  return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _encode_preprocessor(dataset, *, model_path: str):
  """{prompt, solution, ...} -> {"tokens": int32[T], "loss_mask": int32[T]}, unpadded."""
  import tensorflow as tf

  def encode(prompt, solution):
    return examples.encode_example(
        load_tokenizer(model_path), prompt.decode(), solution.decode())

  def fn(ex):
    tokens, loss_mask = tf.numpy_function(
        encode, [ex["prompt"], ex["solution"]], [tf.int32, tf.int32], stateful=False)
    tokens.set_shape([None])
    loss_mask.set_shape([None])
    return {"tokens": tokens, "loss_mask": loss_mask}

  return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def register_tasks(
    data_dir: str | os.PathLike,
    task: synthetic.TaskConfig = synthetic.TaskConfig(),
    sizes: Mapping[str, int] = tfds_builder.DEFAULT_SIZES,
    *,
    name: str = TASK_NAME,
    model_path: str | os.PathLike | None = None,
):
  """Prepares the dataset (if needed) and registers a seqio Task over it.

  Re-registering a name replaces the earlier Task, so tests and notebooks may call this
  repeatedly with different data_dirs.

  Args:
    data_dir: tfds data_dir (same as for `tfds_builder.prepare_dataset`).
    task, sizes: which dataset (see `tfds_builder.make_config`).
    name: seqio Task name.
    model_path: SentencePiece model; default the shipped `arith.model`.

  Returns:
    The registered `seqio.Task`; output features "tokens" and "loss_mask".
  """
  import seqio
  import tensorflow as tf

  model_path = str(model_path or shipped_model_path())
  builder = tfds_builder.prepare_dataset(data_dir, task, sizes)
  splits = list(builder.info.splits.keys())
  source = seqio.FunctionDataSource(
      dataset_fn=functools.partial(_dataset_fn, builder=builder),
      splits=splits,
      num_input_examples={s: builder.info.splits[s].num_examples for s in splits},
  )
  vocab = seqio.SentencePieceVocabulary(model_path)
  output_features = {
      # encode_example already adds bos/eos; seqio must not append another eos.
      "tokens": seqio.Feature(vocab, add_eos=False, dtype=tf.int32),
      "loss_mask": seqio.Feature(seqio.PassThroughVocabulary(2), add_eos=False,
                                 dtype=tf.int32),
  }
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  return seqio.TaskRegistry.add(
      name,
      source=source,
      preprocessors=[functools.partial(_encode_preprocessor, model_path=model_path)],
      output_features=output_features,
  )
