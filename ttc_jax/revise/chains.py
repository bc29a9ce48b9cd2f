"""Revision chains at inference: P parallel chains x L sequential attempts per question.

Attempt t of a chain is sampled from `revision_prompt(question, last <= 4 attempts
of that chain)`; attempt 0 sees no previous attempt. Each step is ONE `generate`
call over all questions x chains (rows grouped `batch_size` at a time, sampled on
device); the host loops only over the L steps, building the next contexts. Step t
uses key fold_in(rng, t), so results depend only on the inputs.

Budget N = P x L generations per question (the paper's sequential:parallel knob).

With `shared_prefix` a question's P chains read one stored copy of what their prompts
share: the whole prompt at step 0 (no previous attempt: P samples of one prompt), the
question after that (`decode.generate.generate_after_prefix`; each chain's previous
attempts are its own suffix). Calls then hold batch_size // P questions; when P divides
batch_size they hold the same rows with the same keys as without, so the chains are the
same up to float summation order.
"""
from typing import Sequence

import jax

from ttc_jax.decode.generate import Generation, encode_prompt, generate, generate_after_prefix
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.revise.format import MAX_CONTEXT, question_header, revision_prompt


def chain_budget(parallel: int, revisions: int) -> int:
  """Generations per question."""
  return parallel * revisions


def run_chains(model, params, tokenizer, questions: Sequence[str], rng: jax.Array, *, parallel: int, revisions: int,
               cfg: SamplingConfig, batch_size: int, max_context: int = MAX_CONTEXT,
               shared_prefix: bool = False) -> list[dict]:
  """Samples revision chains; returns one record per question:

    {"chains": [[text] * revisions] * parallel,      attempt texts as generated (oldest first)
     "num_tokens": [[int] * revisions] * parallel,   new tokens sampled per attempt (stop token included)
     "stop_reasons": [[int] * revisions] * parallel, decode.STOP_* per attempt
     "generations": parallel * revisions,
     "tokens_sampled": sum of num_tokens,
     "prompt_tokens": tokens of every context the model was conditioned on (bos included)}

  `batch_size` is rows per sampler call; chain rows are question-major. `shared_prefix`: a
  question's chains read one stored copy of its prompt's shared start (module docstring).
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
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    for r, ids in enumerate(encoded):
      prompt_tokens[r // parallel] += len(ids)
    step_rng = jax.random.fold_in(rng, step)
    gens = None
    if shared_prefix and parallel > 1:  # One chain a question shares nothing.
      gens = _shared_step(model, params, tokenizer, questions, prompts, encoded, step_rng, first=step == 0,
                          parallel=parallel, cfg=cfg, batch_size=batch_size)
    if gens is None:
      gens = generate(model, params, tokenizer, prompts, step_rng, num_samples=1, cfg=cfg, batch_size=batch_size)
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


def _shared_step(model, params, tokenizer, questions: Sequence[str], prompts: Sequence[str],
                 encoded: Sequence[Sequence[int]], rng: jax.Array, *, first: bool, parallel: int,
                 cfg: SamplingConfig, batch_size: int) -> list[list[Generation]] | None:
  """One step's generations (one per row, rows as in `prompts`) with each question's shared start
  stored once; None when the question and the rest of a prompt do not encode apart as they do
  together (a tokenizer that merges across the boundary, or adds a word-start marker to the
  rest): the step then takes the unshared path, which feeds each prompt as encoded whole."""
  per_call = max(1, batch_size // parallel)  # Questions a call: about batch_size rows, as without sharing.
  if first:  # No previous attempt: a question's prompts are all the same one.
    gens = generate(model, params, tokenizer, prompts[::parallel], rng, num_samples=parallel, cfg=cfg,
                    batch_size=per_call)
    return [[g] for row in gens for g in row]
  headers = [question_header(q) for q in questions]
  prefixes = [encode_prompt(tokenizer, h) for h in headers]
  rests = [tokenizer.encode(p[len(headers[r // parallel]):]) for r, p in enumerate(prompts)]
  if any(prefixes[r // parallel] + rest != list(encoded[r]) for r, rest in enumerate(rests)):
    return None
  gens = generate_after_prefix(model, params, tokenizer, prefixes,
                               [rests[q * parallel:(q + 1) * parallel] for q in range(len(questions))], rng,
                               cfg=cfg, batch_size=per_call)
  return [[g] for row in gens for g in row]
