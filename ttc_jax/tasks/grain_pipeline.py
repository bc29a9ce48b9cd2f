"""grain training input: shuffled, sharded, batched token ids with a checkpointable state.

  it = make_train_iterator(data_source(builder, "train"), load_tokenizer(),
                           seq_len=128, batch_size=64, seed=0,
                           shard_index=jax.process_index(),
                           shard_count=jax.process_count())
  batch = next(it)   # {"tokens": int32[B, T], "loss_mask": int32[B, T]}
  state = it.get_state()   # or grain.checkpoint.CheckpointSave(it) under Orbax

Pipeline: source -> host shard -> seeded shuffle -> repeat -> encode -> batch. Every
stage is a deterministic function of (seed, position), so the iterator state is just a
position and restoring it replays the exact same batches.
"""

from __future__ import annotations

import dataclasses

import grain
from absl import flags

from ttc_jax.tasks import examples
from ttc_jax.tasks.tokenizer import Tokenizer, load_tokenizer


@dataclasses.dataclass(frozen=True)
class EncodeExample(grain.transforms.Map):
  """Stored example (prompt/solution bytes) -> {"tokens": int32[T], "loss_mask": int32[T]}.

  Holds the model path rather than the tokenizer so the transform pickles cheaply into
  grain worker processes; each process loads (and caches) the tokenizer once.
  """

  model_path: str
  seq_len: int

  def map(self, example):
    tokens_T, loss_mask_T = examples.encode_example(
        load_tokenizer(self.model_path), _text(example["prompt"]),
        _text(example["solution"]), self.seq_len)
    return {"tokens": tokens_T, "loss_mask": loss_mask_T}


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def make_train_dataset(
    source,
    tokenizer: Tokenizer,
    *,
    seq_len: int,
    batch_size: int,
    seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
    num_epochs: int | None = None,
) -> grain.MapDataset:
  """The training pipeline as a grain MapDataset of per-host batches.

  Args:
    source: random-access source of stored examples (`tfds_builder.data_source`).
    tokenizer: the task tokenizer (only its model path travels into the pipeline).
    seq_len: T, length every example is padded to (longer ones raise).
    batch_size: global batch size, split evenly across the `shard_count` hosts.
    seed: shuffle seed; each epoch is reshuffled from it.
    shard_index, shard_count: this host's slice of the data, usually
      jax.process_index() and jax.process_count().
    num_epochs: None repeats forever; the last partial batch is dropped either way, so
      every batch has the same shape (no recompiles).

  Returns:
    MapDataset of {"tokens": int32[B, T], "loss_mask": int32[B, T]}, B = per-host batch.
  """
  if batch_size % shard_count:
    raise ValueError(f"batch_size={batch_size} must be divisible by "
                     f"shard_count={shard_count} (the number of hosts)")
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard_index={shard_index} must be in [0, shard_count={shard_count})")
  per_host_batch = batch_size // shard_count
  # Shard before shuffling: hosts read disjoint examples, and a host's order depends only
  # on its own shard, the seed and the epoch.
  ds = grain.MapDataset.source(source)[shard_index::shard_count]
  if len(ds) < per_host_batch:
    raise ValueError(f"shard {shard_index}/{shard_count} has {len(ds)} examples, fewer "
                     f"than one per-host batch ({per_host_batch})")
  ds = ds.seed(seed).shuffle().repeat(num_epochs)
  ds = ds.map(EncodeExample(model_path=tokenizer.model_path, seq_len=seq_len))
  return ds.batch(per_host_batch, drop_remainder=True)


def make_train_iterator(
    source,
    tokenizer: Tokenizer,
    *,
    seq_len: int,
    batch_size: int,
    seed: int,
    shard_index: int = 0,
    shard_count: int = 1,
    num_epochs: int | None = None,
    workers: int = 0,
) -> grain.DatasetIterator:
  """Iterator over `make_train_dataset(...)` (same arguments; `workers` as in `batch_iterator`).

  Checkpointable: `get_state()`/`set_state()`, or with Orbax through
  `grain.checkpoint.CheckpointSave(it)` / `CheckpointRestore(it)` in `ocp.args.Composite`.
  """
  ds = make_train_dataset(
      source, tokenizer, seq_len=seq_len, batch_size=batch_size, seed=seed,
      shard_index=shard_index, shard_count=shard_count, num_epochs=num_epochs)
  return batch_iterator(ds, workers)


def batch_iterator(ds: grain.MapDataset, workers: int = 0, buffer_per_worker: int = 2) -> grain.DatasetIterator:
  """The checkpointable iterator a training loop reads batches from (`train.input_workers`).

  workers=0 reads in the training process, so each batch is made while the step
  waits for it. workers>0 makes batches in that many grain worker processes, each
  `buffer_per_worker` batches ahead, so tokenisation and batching overlap the
  device step. Worker i makes batches i, i + workers, ... and they are read back
  in turn: the same batches in the same order as workers=0, and `get_state()`
  holds each worker's position, so a resumed run continues where it stopped.
  """
  if workers < 0:
    raise ValueError(f"input workers={workers} must be >= 0 (0: read in the training process)")
  it = ds.to_iter_dataset()
  if workers:
    # grain's workers read absl flags; a process that is not an absl app (tests, notebooks) has none parsed.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=buffer_per_worker))
  return iter(it)
