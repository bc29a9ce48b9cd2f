"""Revision training examples: next-token loss on the final (correct) attempt only.

One example per trajectory, via the shared `encode_example`:

  tokens_T    = [bos] + encode(revision_prompt(question, previous)) + encode(target) + [eos] + [pad] ...
  loss_mask_T =  0      0 ...                                           1 ...            1       0 ...

The previous (incorrect) attempts are context, never targets: the model must not
learn to produce them.
"""
from typing import Sequence

import numpy as np
from absl import logging

from ttc_jax.revise.format import revision_prompt
from ttc_jax.tasks.examples import ExampleTooLongError, encode_example


def trajectory_prompt(trajectory: dict) -> str:
  return revision_prompt(trajectory["question"], trajectory["previous"])


def trajectory_text(trajectory: dict) -> str:
  """The example as text: prompt then target, the ids `revision_examples` trains on less bos and eos."""
  return trajectory_prompt(trajectory) + trajectory["target"]


def trajectory_length(tokenizer, trajectory: dict) -> int:
  """Tokens of the full example (bos + prompt + target + eos)."""
  return len(encode_example(tokenizer, trajectory_prompt(trajectory), trajectory["target"])[0])


def revision_examples(trajectories: Sequence[dict], tokenizer, seq_len: int
                      ) -> tuple[list[dict[str, np.ndarray]], dict]:
  """({"tokens", "loss_mask"} int32[seq_len] per trajectory that fits, stats).

  Longer trajectories are skipped, not truncated (a cut context would show the
  model attempts it never sees whole at inference), and counted by k in the stats:
  {"examples", "skipped", "skipped_by_k", "max_length", "mean_length", "target_tokens"}.
  """
  examples, lengths, skipped_by_k = [], [], {}
  for t in trajectories:
    prompt = trajectory_prompt(t)
    try:
      tokens, mask = encode_example(tokenizer, prompt, t["target"], seq_len)
    except ExampleTooLongError:
      skipped_by_k[str(t["k"])] = skipped_by_k.get(str(t["k"]), 0) + 1
      lengths.append(trajectory_length(tokenizer, t))
      continue
    lengths.append(int((tokens != tokenizer.pad_id).sum()))
    examples.append({"tokens": tokens, "loss_mask": mask})
  skipped = sum(skipped_by_k.values())
  if skipped:
    logging.warning("revision examples: skipped %d of %d trajectories longer than seq_len=%d (by k: %s)", skipped,
                    len(trajectories), seq_len, skipped_by_k)
  stats = {"examples": len(examples), "skipped": skipped, "skipped_by_k": skipped_by_k,
           "max_length": max(lengths, default=0), "mean_length": float(np.mean(lengths)) if lengths else 0.0,
           "target_tokens": int(sum(e["loss_mask"].sum() for e in examples))}
  return examples, stats
