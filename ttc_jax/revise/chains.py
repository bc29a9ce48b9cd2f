"""Revision chains at inference: P parallel chains x L sequential attempts per question.

Attempt t of a chain is sampled from `revision_prompt(question, last <= 4 attempts
of that chain)`; attempt 0 sees no previous attempt. Each step is ONE `generate`
call over all questions x chains (rows grouped `batch_size` at a time, sampled on
device); the host loops only over the L steps, building the next contexts. Step t
uses key fold_in(rng, t), so results depend only on the inputs.

Budget N = P x L generations per question (the paper's sequential:parallel knob).
"""
from typing import Sequence

import jax

from ttc_jax.decode.generate import encode_prompt, generate
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.revise.format import MAX_CONTEXT, revision_prompt


def chain_budget(parallel: int, revisions: int) -> int:
  """Generations per question."""
  return parallel * revisions


def run_chains(model, params, tokenizer, questions: Sequence[str], rng: jax.Array, *, parallel: int, revisions: int,
               cfg: SamplingConfig, batch_size: int, max_context: int = MAX_CONTEXT) -> list[dict]:
  """Samples revision chains; returns one record per question:

    {"chains": [[text] * revisions] * parallel,      attempt texts as generated (oldest first)
     "num_tokens": [[int] * revisions] * parallel,   new tokens sampled per attempt (stop token included)
     "stop_reasons": [[int] * revisions] * parallel, decode.STOP_* per attempt
     "generations": parallel * revisions,
     "tokens_sampled": sum of num_tokens,
     "prompt_tokens": tokens of every context the model was conditioned on (bos included)}

  `batch_size` is rows per sampler call; chain rows are question-major.
  """
  if parallel <= 0 or revisions <= 0:
    raise ValueError(f"parallel={parallel} and revisions={revisions} must be positive")
  n_rows = len(questions) * parallel
  attempts = [[] for _ in range(n_rows)]  # Row r = question r // parallel, chain r % parallel.
  tokens = [[] for _ in range(n_rows)]
  reasons = [[] for _ in range(n_rows)]
  prompt_tokens = [0] * len(questions)
  for step in range(revisions):
    prompts = [revision_prompt(questions[r // parallel], attempts[r], max_context) for r in range(n_rows)]
    for r, p in enumerate(prompts):
      prompt_tokens[r // parallel] += len(encode_prompt(tokenizer, p))
    gens = generate(model, params, tokenizer, prompts, jax.random.fold_in(rng, step), num_samples=1, cfg=cfg,
                    batch_size=batch_size)
    for r, (g,) in enumerate(gens):
      attempts[r].append(g.text)
      tokens[r].append(g.num_tokens)
      reasons[r].append(g.stop_reason)
  out = []
  for q in range(len(questions)):
    rows = range(q * parallel, (q + 1) * parallel)
    out.append({"chains": [attempts[r] for r in rows], "num_tokens": [tokens[r] for r in rows],
                "stop_reasons": [reasons[r] for r in rows], "generations": chain_budget(parallel, revisions),
                "tokens_sampled": sum(sum(tokens[r]) for r in rows), "prompt_tokens": prompt_tokens[q]})
  return out
