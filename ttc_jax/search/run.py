"""Prompts in, one record per problem out: the host side of search.

  records = run_search(policy, policy_params, prm, prm_params, tokenizer, grader, prompts, rng,
                       cfg=SearchConfig(method="beam", budget=16, beam_width=4), batch_size=8)

An off-the-shelf verifier takes `verifier_format` (`verify.formats`), its tokenizer and the
problems' question texts; `search.verifier_feed` decides whether steps reach it on the device
(the policy's tokens) or re-tokenised on the host.

Problems go to the device `batch_size` at a time (the last batch padded with
empty prompts, which cost no samples), one compiled program per (batch, prompt
bucket). Batch i uses key fold_in(rng, i). Every batch is dispatched before any
is read back, so the device never waits on the host. The host then decodes the
final candidates, extracts their answers with the `Grader` and picks the answer
by best-of-N weighted voting over the PRM score at each candidate's last step.

Record of one problem:
  {"prompt", "answer" (chosen, or None), "method", "rounds", "parents" (per round run),
   "candidates": [{"text", "steps", "step_scores", "score", "rank_score", "extracted",
                   "finished", "stop_reason", "num_tokens"[, "correct"]}, ...],
   "budget": {"generations", "policy_tokens", "rollout_tokens", "prm_tokens",
              "prompt_tokens", "policy_flops", "prm_flops", "flops"}[, "correct"]}
"""
import contextlib
import dataclasses
from typing import Sequence

import jax
import numpy as np

from ttc_jax.decode.generate import encode_prompt
from ttc_jax.decode.prompts import DEFAULT_BUCKETS, left_pad
from ttc_jax.search.aggregation import weighted_vote
from ttc_jax.search.config import SearchConfig
from ttc_jax.search import verifier_feed
from ttc_jax.search.loop import SearchOutput, jit_search
from ttc_jax.tokenization.steps import LINE_STEPS, StepFormat
from ttc_jax.verify.formats import TtcFormat, VerifierFormat


def encode_prompts(tokenizer, prompts: Sequence[str | Sequence[int]]) -> list[list[int]]:
  """Strings become `tokenizer.prompt_ids(prompt)` (as in training); token lists are used as given."""
  return [encode_prompt(tokenizer, p) if isinstance(p, str) else [int(t) for t in p] for p in prompts]


def _candidate(tokenizer, grader, step_format: StepFormat, out: SearchOutput, i: int, j: int,
               reference: str | None) -> dict:
  n_tok = int(out.lengths_PxN[i, j])
  ids = out.tokens_PxNxT[i, j, :n_tok].tolist()
  text = tokenizer.decode(ids)
  step_scores = out.step_scores_PxNxR[i, j]
  # The steps the PRM scored, cut where the policy's own tokens ended them.
  cand = {"text": text, "steps": step_format.split(tokenizer, ids),
          "step_scores": [float(x) for x in step_scores[~np.isnan(step_scores)]],
          "score": float(out.score_PxN[i, j]), "rank_score": float(out.rank_score_PxN[i, j]),
          "extracted": grader.extract_answer(text), "finished": bool(out.finished_PxN[i, j]),
          "stop_reason": int(out.stop_reason_PxN[i, j]), "num_tokens": n_tok}
  if reference is not None:
    cand["correct"] = bool(grader.is_correct(text, reference))
  return cand


def _record(tokenizer, grader, step_format: StepFormat, cfg: SearchConfig, out: SearchOutput, i: int, prompt,
            reference: str | None) -> dict:
  cands = [_candidate(tokenizer, grader, step_format, out, i, j, reference) for j in range(cfg.budget)]
  answer = weighted_vote([c["extracted"] for c in cands], [c["score"] for c in cands])
  b = out.budget
  budget = {"generations": int(b.generations_P[i]), "policy_tokens": int(b.policy_tokens_P[i]),
            "rollout_tokens": int(b.rollout_tokens_P[i]), "prm_tokens": int(b.prm_tokens_P[i]),
            "prompt_tokens": int(b.prompt_tokens_P[i]), "policy_flops": float(b.policy_flops_P[i]),
            "prm_flops": float(b.prm_flops_P[i])}
  budget["flops"] = budget["policy_flops"] + budget["prm_flops"]
  rounds = int(out.rounds)
  record = {"prompt": prompt, "answer": answer, "method": cfg.method, "rounds": rounds,
            "parents": out.parents_PxRxN[i, :rounds].tolist(), "candidates": cands, "budget": budget}
  if reference is not None:
    record["correct"] = answer is not None and any(c["correct"] for c in cands if c["extracted"] == answer)
  return record


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def _verifier_setup(fmt: VerifierFormat, verifier_tok, policy_tok, problems, step_format: StepFormat,
                    cfg: SearchConfig, feed: str) -> tuple[verifier_feed.VerifierSpec, list[list[int]] | None]:
  """The static feed spec and the verifier's prompt ids per problem (None: the policy's prompts)."""
  if isinstance(fmt, TtcFormat):
    return verifier_feed.verifier_spec(fmt, verifier_tok, policy_tok, step_format, max_step_tokens=cfg.max_step_tokens,
                                       max_solution_tokens=cfg.max_solution_tokens, max_rounds=cfg.max_rounds,
                                       feed=feed), None
  # Host blocks hold a re-tokenised step (assumed at most twice the policy's tokens) and its wrapper
  # (`feed_step_ids`: the question is in the verifier's prompt); multiples of 64 keep compilations few.
  first = max(len(fmt.feed_step_ids(verifier_tok, q, 0, "")[0]) for q in problems)
  later = len(fmt.feed_step_ids(verifier_tok, problems[0], 1, "")[0])
  spec = verifier_feed.verifier_spec(fmt, verifier_tok, policy_tok, step_format, max_step_tokens=cfg.max_step_tokens,
                                     max_solution_tokens=cfg.max_solution_tokens, max_rounds=cfg.max_rounds,
                                     feed=feed, host_tokens_per_step=_round_up(2 * cfg.max_step_tokens + first, 64))
  if spec.mode == "host":
    spec = dataclasses.replace(spec, solution_slots=_round_up(
        spec.block + 2 * cfg.max_solution_tokens + cfg.max_rounds * later, 64))
  return spec, [fmt.feed_prompt_ids(verifier_tok, q) for q in problems]


def run_search(policy, policy_params, prm, prm_params, tokenizer, grader, prompts: Sequence[str | Sequence[int]],
               rng: jax.Array, *, cfg: SearchConfig, batch_size: int, buckets: Sequence[int] = DEFAULT_BUCKETS,
               mesh=None, references: Sequence[str] | None = None,
               step_format: StepFormat = LINE_STEPS, verifier_format: VerifierFormat = TtcFormat(),
               verifier_tokenizer=None, problems: Sequence[str] | None = None,
               verifier_feed_mode: str = "auto", verifier_buckets: Sequence[int] = DEFAULT_BUCKETS) -> list[dict]:
  """Runs `cfg.method` on every prompt; returns one record per prompt (module docstring).

  Args:
    policy, prm: `Transformer`s (the PRM with the head `verifier_format` reads) or stand-ins with its apply signature.
    prompts: strings (encoded with `tokenizer.prompt_ids`) or token lists (used as given).
    batch_size: problems per device call (padded to a multiple of the mesh's data-parallel size).
    mesh: shard the problem axis over it (default: the mesh of an enclosing `jax.set_mesh`, if any;
      params keep the shardings they have).
    references: reference answers; adds "correct" to candidates and records.
    step_format: the step delimiter: where steps end on the device and in the records.
    verifier_format: the verifier's layout and head; the default is this project's PRM, fed the
      policy's prompt and tokens.
    verifier_tokenizer: the verifier's tokenizer (default: the policy's).
    problems: the question of each prompt, which off-the-shelf formats lay out themselves.
    verifier_feed_mode: "auto" (device when possible), "device" or "host" (`search.verifier_feed`).
    verifier_buckets: prompt length buckets of the verifier's own prompts (off-the-shelf formats).
  """
  from ttc_jax import parallel  # Only sharded runs need the mesh helpers.
  from ttc_jax.parallel import batches

  if references is not None and len(references) != len(prompts):
    raise ValueError(f"{len(prompts)} prompts but {len(references)} references")
  verifier_tok = verifier_tokenizer or tokenizer
  if not isinstance(verifier_format, TtcFormat) and (problems is None or len(problems) != len(prompts)):
    raise ValueError(f"verifier format {verifier_format.name!r} lays out the question itself: pass one problem "
                     f"text per prompt (got {None if problems is None else len(problems)} for {len(prompts)})")
  verifier_format.reader(verifier_tok).check_model(prm.cfg)
  spec, verifier_prompts = _verifier_setup(verifier_format, verifier_tok, tokenizer, problems, step_format, cfg,
                                           verifier_feed_mode)
  fn = jit_search(policy, prm, cfg, step_format.rule(tokenizer, policy.cfg.vocab_size), tokenizer.pad_id, spec)
  tables = (verifier_feed.feed_tables(tokenizer, policy.cfg.vocab_size, step_format, spec.wrapper.join)
            if spec.mode == "device" else None)
  keys = verifier_feed.register_problems(problems) if spec.mode == "host" else None
  encoded = encode_prompts(tokenizer, prompts)
  mesh = batches.current_mesh(mesh)
  rows = batches.padded_rows(batch_size, mesh)
  scope = parallel.activate(mesh) if mesh is not None else contextlib.nullcontext()
  pending = []
  try:
    with scope:
      for batch_index, start in enumerate(range(0, len(encoded), batch_size)):
        tokens, valid = left_pad(encoded[start:start + batch_size], tokenizer.pad_id, buckets, batch_size=rows)
        extra = {}
        if verifier_prompts is not None:
          extra["verifier_prompts_PxL"], extra["verifier_valid_PxL"] = left_pad(
              verifier_prompts[start:start + batch_size], verifier_tok.pad_id, verifier_buckets, batch_size=rows)
        if keys is not None:
          chunk = keys[start:start + batch_size]
          extra["problem_keys_P"] = np.asarray(chunk + [0] * (rows - len(chunk)), np.int32)
        tokens, valid, extra = batches.place_rows((tokens, valid, extra), mesh)
        out = fn(policy_params, prm_params, tokens, valid, jax.random.fold_in(rng, batch_index), feed_tables=tables,
                 **extra)
        pending.append((start, out))
      records = []
      for start, out in pending:
        out = batches.fetch(out)
        if int(out.verifier_overflow):
          raise ValueError(f"{int(out.verifier_overflow)} steps re-tokenised for the verifier did not fit its block "
                           f"of {spec.block} ids: raise search.max_step_tokens or shorten the steps")
        for i in range(min(batch_size, len(encoded) - start)):
          ref = None if references is None else references[start + i]
          records.append(_record(tokenizer, grader, step_format, cfg, out, i, prompts[start + i], ref))
  finally:
    if keys is not None:
      verifier_feed.release_problems(keys)
  return records


def search_spec(cfg: SearchConfig) -> dict:
  """The config as plain data, for results files.

  Leaves out `shared_prefix` and `best_of_n_rounds`: they say how the caches are laid out
  and how best-of-N is scheduled, not what is searched, so results written before they
  existed still match their spec.
  """
  spec = dataclasses.asdict(cfg)
  del spec["shared_prefix"], spec["best_of_n_rounds"]
  return spec
