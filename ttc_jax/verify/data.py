"""Verifier training examples from samples / MC-label records, and their grain iterator.

One example per sampled solution (a dict of numpy arrays, length T = seq_len):

  tokens        int32[T]    `encode_scored_solution` layout, right-padded with pad_id
  value_mask    int32[T]    1 where the value head has a target
  value_target  float32[T]  the target there (0 elsewhere)

PRM: a target at every step end, the step's label: its MC label (fraction of rollouts
from that prefix reaching the correct answer) or another source's (`verify.label_sources`;
a None label is no target at that step). ORM: one target at the last step end,
1.0 if the solution is correct. Revision ORM: the ORM's target for every attempt of
the revision model's chains, the prompt being the revision context the attempt was
sampled from (its chain's previous attempts, the last `max_context`). Right padding
is harmless: attention is causal, so no target position sees a pad.
"""
from typing import Callable, Sequence

import grain
import numpy as np
from absl import logging

from ttc_jax.revise.format import MAX_CONTEXT, scored_attempts
from ttc_jax.tasks import grain_pipeline
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat
from ttc_jax.verify.scored_text import encode_scored_solution, record_prompt

# A record -> its solutions as (prompt, sample) pairs; a sample has "steps" and its targets' fields.
Solutions = Callable[[dict], list[tuple[str, dict]]]


def _example(tokens: list[int], positions: Sequence[int], targets: Sequence[float], seq_len: int,
             pad_id: int) -> dict[str, np.ndarray]:
  tokens_T = np.full((seq_len,), pad_id, np.int32)
  tokens_T[:len(tokens)] = tokens
  mask_T = np.zeros((seq_len,), np.int32)
  target_T = np.zeros((seq_len,), np.float32)
  mask_T[list(positions)] = 1
  target_T[list(positions)] = targets
  return {"tokens": tokens_T, "value_mask": mask_T, "value_target": target_T}


def _samples(record: dict) -> list[tuple[str, dict]]:
  """The sampled solutions of a samples / labels record, each after the policy's prompt."""
  prompt = record_prompt(record)
  return [(prompt, sample) for sample in record["samples"]]


def _chain_attempts(record: dict) -> list[tuple[str, dict]]:
  """Every attempt of a chains record (`eval_revisions.read_chain_records`) after its revision context."""
  out = []
  max_context = record.get("max_context", MAX_CONTEXT)
  for chain, correct in zip(record["chains"], record["attempt_correct"], strict=True):
    attempts = scored_attempts(record["question"], chain, max_context)
    out += [(prompt, {"steps": steps, "correct": ok}) for (prompt, steps), ok in zip(attempts, correct, strict=True)]
  return out


def _build(records: Sequence[dict], tokenizer, seq_len: int,
           targets_of: Callable[[dict, list[int]], tuple[list[int], list[float]]], kind: str,
           solutions: Solutions = _samples,
           step_format: StepFormat = LINE_STEPS) -> tuple[list[dict[str, np.ndarray]], int]:
  examples, skipped = [], 0
  for record in records:
    for prompt, sample in solutions(record):
      if not sample["steps"]:
        continue  # No step, no score to learn (scoring gives such solutions 0).
      tokens, ends = encode_scored_solution(tokenizer, prompt, sample["steps"], step_format)
      positions, targets = targets_of(sample, ends)
      if not positions:
        continue  # Steps, but none labelled: nothing to learn.
      if len(tokens) > seq_len:
        # Skipped, not truncated: a cut solution would teach scores for prefixes the
        # scorer never sees at full length. Counted so the job reports it.
        skipped += 1
        continue
      examples.append(_example(tokens, positions, targets, seq_len, tokenizer.pad_id))
  if skipped:
    logging.warning("%s examples: skipped %d of %d solutions longer than seq_len=%d", kind, skipped,
                    skipped + len(examples), seq_len)
  return examples, skipped


def _prm_targets(sample: dict, ends: list[int]):
  labels = sample["step_labels"]
  if len(labels) != len(ends):
    raise ValueError(f"sample has {len(ends)} steps but {len(labels)} step_labels: {sample['steps']}")
  kept = [(end, float(x)) for end, x in zip(ends, labels) if x is not None]
  return [end for end, _ in kept], [x for _, x in kept]


def _orm_targets(sample: dict, ends: list[int]):
  return ends[-1:], [float(sample["correct"])]


def prm_examples(label_records: Sequence[dict], tokenizer, seq_len: int,
                 step_format: StepFormat = LINE_STEPS) -> tuple[list[dict], int]:
  """PRM examples (the step labels at their step ends, each step followed by `step_format`'s
  delimiter: the samples' task's); returns (examples, number skipped as too long)."""
  return _build(label_records, tokenizer, seq_len, _prm_targets, "PRM", step_format=step_format)


def orm_examples(records: Sequence[dict], tokenizer, seq_len: int,
                 step_format: StepFormat = LINE_STEPS) -> tuple[list[dict], int]:
  """ORM examples (correctness at the last step end) from samples or label records; returns (examples, skipped)."""
  return _build(records, tokenizer, seq_len, _orm_targets, "ORM", step_format=step_format)


def revision_orm_examples(chain_records: Sequence[dict], tokenizer, seq_len: int) -> tuple[list[dict], int]:
  """Revision ORM examples: one per attempt of every chain, correctness at its last step end, after
  the context eval_revisions scores it in (never a later attempt); returns (examples, skipped).
  Steps are lines, as the revision prompt writes attempts (`revise.format`)."""
  return _build(chain_records, tokenizer, seq_len, _orm_targets, "revision ORM", _chain_attempts)


EXAMPLE_BUILDERS = {"prm": prm_examples, "orm": orm_examples, "revision_orm": revision_orm_examples}


def split_heldout(records: Sequence[dict], fraction: float) -> tuple[list[dict], list[dict]]:
  """(train, held-out) by problem: the last ceil(fraction * n) problems are held out.

  By problem, not by sample, so held-out solutions are to questions never trained on.
  """
  n_out = int(np.ceil(fraction * len(records))) if fraction > 0 else 0
  if n_out >= len(records) and n_out:
    raise ValueError(f"holding out {n_out} of {len(records)} problems leaves none to train on")
  cut = len(records) - n_out
  return list(records[:cut]), list(records[cut:])


def make_iterator(examples: Sequence[dict], *, batch_size: int, seed: int, shard_index: int = 0,
                  shard_count: int = 1, workers: int = 0) -> grain.DatasetIterator:
  """Shuffled, repeated batches of this host's slice of `examples` (checkpointable grain iterator).

  `workers`: grain worker processes making batches ahead (`grain_pipeline.batch_iterator`).

  batch_size is global (all hosts). Yields {"tokens", "value_mask", "value_target"} of shape [B/hosts, T].
  """
  if batch_size % shard_count:
    raise ValueError(f"batch_size={batch_size} must be divisible by the {shard_count} hosts")
  ds = grain.MapDataset.source(list(examples))[shard_index::shard_count]
  if not len(ds):
    raise ValueError(f"host {shard_index} of {shard_count} has no verifier examples")
  # Repeat before batching: a batch may span epochs, so few examples still fill it.
  ds = ds.seed(seed).shuffle().repeat().batch(batch_size // shard_count, drop_remainder=True)
  return grain_pipeline.batch_iterator(ds, workers)
