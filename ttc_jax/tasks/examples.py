"""The one function that turns (prompt, solution) text into training token ids.

Both data paths call `encode_example` (grain directly, seqio through tf.numpy_function),
so the ids a model is trained on cannot differ between them.

Layout of one example of length T:

  tokens_T    = [bos] + encode(prompt) + encode(solution) + [eos] + [pad] * ...
  loss_mask_T =  0      0 ...              1 ...              1       0 ...

([bos] + encode(prompt) is `tokenizer.prompt_ids(prompt)`: no bos where the tokenizer has none.)

loss_mask[t] = 1 marks the tokens the model must predict (from position t - 1): the
solution and the final eos. The prompt and solution are encoded separately, exactly as a
sampler sees them (it conditions on encode(prompt) and generates the rest); the prompt
ends with "\\n", a standalone token, so this equals encoding the concatenation.
"""

from __future__ import annotations

import numpy as np

from ttc_jax.tokenization.base import Tokenizer

# Fits every problem of the default TaskConfig: no example can exceed 121 tokens (five
# steps, every operand 2 digits, every value 3 digits); the longest in 200k samples is
# 117, the mean ~73 (`python -m ttc_jax.tasks.task_report`).
DEFAULT_SEQ_LEN = 128


class ExampleTooLongError(ValueError):
  """An example does not fit `seq_len`.

  Raised rather than truncated: cutting the end would drop the answer line and train
  the model on solutions that never finish, and silently dropping would change how many
  examples an epoch has. Raise seq_len or shrink the TaskConfig.
  """


def encode_example(
    tokenizer: Tokenizer, prompt: str, solution: str, seq_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Token ids and loss mask of one example.

  Args:
    tokenizer: the task tokenizer (bos/eos/pad ids come from it).
    prompt: conditioning text, e.g. `synthetic.prompt_text(problem)`.
    solution: target text (step lines and the answer line).
    seq_len: pad to this length with pad_id (mask 0); None returns the unpadded example.

  Returns:
    (tokens_T, loss_mask_T), both int32 of length T = seq_len, or the example's own
    length if seq_len is None.

  Raises:
    ExampleTooLongError: if the example is longer than seq_len.
  """
  prompt_ids = tokenizer.prompt_ids(prompt)
  solution_ids = tokenizer.encode(solution)
  tokens = prompt_ids + solution_ids + [tokenizer.eos_id]
  loss_mask = [0] * len(prompt_ids) + [1] * (len(solution_ids) + 1)
  if seq_len is not None:
    if len(tokens) > seq_len:
      raise ExampleTooLongError(
          f"example has {len(tokens)} tokens > seq_len={seq_len} "
          f"(prompt {len(prompt_ids)}, solution {len(solution_ids)}): {prompt!r}")
    pad = seq_len - len(tokens)
    tokens += [tokenizer.pad_id] * pad
    loss_mask += [0] * pad
  return np.asarray(tokens, np.int32), np.asarray(loss_mask, np.int32)
