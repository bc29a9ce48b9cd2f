"""Best-of-N without rounds: every candidate's whole solution in one decode, every step scored in one chunked PRM pass.

Best-of-N (width 1, no lookahead) needs no synchronisation between candidates: nothing is
selected, so no candidate waits for the others. The round-based loop (`search.loop`) still
decodes one step of every candidate per round, and a round lasts as long as the batch's
longest step; with steps of 8 to 64 tokens a round costs about 64 decode iterations while
the mean step is 36. Here instead:
  1. one `decode` call samples each row's solution, cut into steps as the rounds cut them
     (`decode.sampler.StepLimits`): a row stops at EOS, at the end of its `max_rounds`-th
     step, at a step of `max_step_tokens` tokens without an end (STOP_LENGTH, a truncated
     step), or at the end of a step that leaves no room for another
     (length + max_step_tokens > max_solution_tokens);
  2. one PRM pass over every row's solution tokens (after the prefilled prompt, shared or not
     as `cfg.shared_prefix` says), in blocks of rows of like length, each fed max_step_tokens
     at a time up to its own longest solution, reads the PRM's probability at the end of each step.
The PRM sees what the round-based feed (`search.prm.score_step`) gives it: the same tokens at
the same RoPE positions (an EOS fed as the delimiter, empty steps not fed), only many steps a call,
so scores agree up to float summation order and the budget counts the same tokens and FLOPs.

What differs from the rounds:
  * random draws: the policy samples the same distribution, but from other keys, so under
    temperature > 0 the candidates are other samples (greedy decoding gives the same tokens);
  * room: each row stops when its own solution has no room for another step, where the
    rounds stop when some row a round would extend has none (its own cache index,
    `KVCache.index_B`); with room to spare the two stop alike.
Only this project's PRM (verifier mode "ttc") is scored this way; the off-the-shelf feeds
("device", "host": `search.verifier_feed`) build per-step blocks with wrapper tokens and keep
the round-based loop (`applies`).
"""
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampler import STOP_EOS, STOP_LENGTH, STOP_NEWLINE, StepLimits, decode, prefill
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.models import unstack_layers
from ttc_jax.models.kv_cache import share_prefix
from ttc_jax.search import budget as budget_lib
from ttc_jax.search.beams import repeat_beams, repeat_cache
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.prm import content_lengths, prefill_prm
from ttc_jax.search.steps import Models
from ttc_jax.search.verifier_feed import VerifierSpec


def applies(cfg: SearchConfig, spec: VerifierSpec) -> bool:
  """Whether `search.loop.search` runs this schedule: best-of-N, this project's PRM, rounds not asked for."""
  return cfg.width == 1 and cfg.lookahead == 0 and spec.mode == "ttc" and not cfg.best_of_n_rounds


def _steps(out, num_rounds: int):
  """Per row and step: (taken_BxR, start_BxR, length_BxR, stop_reason_BxR) from the decode's step ends."""
  ends_BxR = out.step_ends_BxR
  taken_BxR = ends_BxR > 0  # A step has at least one token.
  start_BxR = jnp.concatenate([jnp.zeros_like(ends_BxR[:, :1]), ends_BxR[:, :-1]], axis=1)
  length_BxR = jnp.where(taken_BxR, ends_BxR - start_BxR, 0)
  last_B = jnp.sum(taken_BxR, axis=1) - 1
  # Every step but a row's last ended at the delimiter; the last ended as the row did.
  reason_BxR = jnp.where(jnp.arange(num_rounds)[None] == last_B[:, None], out.stop_reason_B[:, None], STOP_NEWLINE)
  return taken_BxR, start_BxR, length_BxR, reason_BxR


def score_solutions(models: Models, block_cache, positions_B, tokens_BxT, lengths_B, taken_BxR, start_BxR, length_BxR,
                    reason_BxR, chunk: int, num_problems: int):
  """Feeds every row's solution to the PRM, `chunk` tokens a call; reads P(correct so far) at each step's end.

  Each step is fed as `prm.score_step` feeds it alone (EOS as the delimiter token, or left out
  without a one-token delimiter; empty steps skipped) and tokens keep their solution slots:
  the ones not fed are invalid and do not advance the RoPE position.
  `block_cache`: the PRM's cache after the prompt for a block of rows (`_chunked_values`).
  Returns (prob_BxR float32, meaningless where fed_BxR == 0; fed_BxR int32 tokens fed per step).
  """
  stop, t = models.stop, tokens_BxT.shape[1]
  eos_fed = stop.delimiter_id >= 0  # Static: EOS stands in as the delimiter token, else it is not fed.
  feed_len_BxR = length_BxR - ((reason_BxR == STOP_EOS) & (not eos_fed)).astype(jnp.int32)
  fed_BxR = jnp.where(taken_BxR & (content_lengths(length_BxR, reason_BxR) > 0), feed_len_BxR, 0)
  j_T = jnp.arange(t)
  # The step of each token: how many of the row's steps ended at or before it.
  ends_BxR = start_BxR + length_BxR
  step_BxT = jnp.sum(taken_BxR[:, None, :] & (ends_BxR[:, None, :] <= j_T[None, :, None]), axis=2)
  step_BxT = jnp.minimum(step_BxT, taken_BxR.shape[1] - 1)
  offset_BxT = j_T[None] - jnp.take_along_axis(start_BxR, step_BxT, axis=1)
  valid_BxT = (j_T[None] < lengths_B[:, None]) & (offset_BxT < jnp.take_along_axis(fed_BxR, step_BxT, axis=1))
  fed_tokens_BxT = jnp.where(stop.is_eos(tokens_BxT), stop.delimiter_id, tokens_BxT) if eos_fed else tokens_BxT
  count_BxT = jnp.cumsum(valid_BxT, axis=1).astype(jnp.int32)
  positions_BxT = positions_B[:, None] + count_BxT - valid_BxT.astype(jnp.int32)
  read_BxR = jnp.clip(start_BxR + fed_BxR - 1, 0, t - 1)
  values_BxT = _chunked_values(models, block_cache, fed_tokens_BxT, positions_BxT, valid_BxT, lengths_B, chunk,
                               num_problems)
  values_BxR = jnp.take_along_axis(values_BxT, read_BxR, axis=1)
  return jax.nn.sigmoid(values_BxR.astype(jnp.float32)), fed_BxR


# Candidate rows the PRM pass feeds a call (all of a problem's when fewer): blocks of rows of like
# length, so a block's chunks stop at its own longest solution rather than the batch's.
PRM_BLOCK_ROWS = 64


def prm_block_rows(num_problems: int, rows_per_problem: int) -> int:
  """Rows of each problem in one block of the PRM pass: the largest divisor of N with P x it <= PRM_BLOCK_ROWS.

  At least 1: with P > PRM_BLOCK_ROWS problems a block holds one row of each.
  """
  fits = [d for d in range(1, rows_per_problem + 1)
          if rows_per_problem % d == 0 and num_problems * d <= max(PRM_BLOCK_ROWS, num_problems)]
  return max(fits)


def _chunked_values(models: Models, block_cache, tokens_BxT, positions_BxT, valid_BxT, lengths_B, chunk: int,
                    num_problems: int):
  """The PRM's value at every solution token, fed in blocks of rows of like length, `chunk` tokens per call.

  One call over all T slots pays for every row's padding up to max_solution_tokens (on the H200
  at N = 256, 288-token solutions in 512 slots, that version took 1.81 s a problem against the
  rounds' 1.52 s: bench/results/decode_h200/steps/). Chunks stop after a block's longest row, and
  each problem's rows are sorted by length (longest first) before they are cut into blocks of
  `block_cache`'s N' rows per problem: with steps of 8 to 64 tokens the longest of 256 solutions
  is 1.4x the mean, and the blocks of short rows stop early. Each chunk is written at its rows'
  own cache indexes (`KVCache.index_B`), which skip the unfed tokens, so chunks meet seamlessly.
  `block_cache` is the PRM's cache after the prompt for N' rows per problem (problem-major), the
  same for every block: each block starts from it.
  """
  b, t = tokens_BxT.shape
  p = num_problems
  n, n_block = b // p, block_cache.index_B.shape[0] // p
  t_pad = -(-t // chunk) * chunk  # Static: whole chunks (padding is invalid; its cache writes are dropped).
  per_problem = lambda x, value: jnp.pad(x, ((0, 0), (0, t_pad - t)), constant_values=value).reshape(p, n, t_pad)
  tokens, positions, valid = per_problem(tokens_BxT, 0), per_problem(positions_BxT, 0), per_problem(valid_BxT, False)
  order_PxN = jnp.argsort(-lengths_B.reshape(p, n), axis=1)  # Longest first, within each problem.
  lengths_PxN = jnp.take_along_axis(lengths_B.reshape(p, n), order_PxN, axis=1)
  take = lambda x, c: jax.lax.dynamic_slice_in_dim(x, c * chunk, chunk, axis=1)

  def block(j, values_PxNxT):
    rows_PxM = jax.lax.dynamic_slice_in_dim(order_PxN, j * n_block, n_block, axis=1)
    pick = lambda x: jnp.take_along_axis(x, rows_PxM[:, :, None], axis=1).reshape(p * n_block, t_pad)
    tok, pos, val = pick(tokens), pick(positions), pick(valid)
    longest = jnp.max(jax.lax.dynamic_slice_in_dim(lengths_PxN, j * n_block, n_block, axis=1))

    def body(state):
      c, cache, block_values = state
      out = models.prm.apply(models.prm_params, take(tok, c), take(pos, c), take(val, c), cache)
      block_values = jax.lax.dynamic_update_slice_in_dim(block_values, out.values_BxT.astype(jnp.float32), c * chunk, 1)
      return c + 1, out.cache, block_values

    init = (jnp.zeros((), jnp.int32), block_cache, jnp.zeros((p * n_block, t_pad), jnp.float32))
    _, _, block_values = jax.lax.while_loop(lambda s: s[0] < (longest + chunk - 1) // chunk, body, init)
    scatter = jax.vmap(lambda v_NxT, rows_M, u_MxT: v_NxT.at[rows_M].set(u_MxT))
    return scatter(values_PxNxT, rows_PxM, block_values.reshape(p, n_block, t_pad))

  values_PxNxT = jax.lax.fori_loop(0, n // n_block, block, jnp.zeros((p, n, t_pad), jnp.float32))
  return values_PxNxT.reshape(b, t_pad)[:, :t]


def search(models: Models, prompts_PxL: jax.Array, valid_PxL: jax.Array, rng: jax.Array, *, cfg: SearchConfig,
           verifier_prompts_PxL: jax.Array, verifier_valid_PxL: jax.Array):
  """`search.loop.search` for best-of-N (`applies`): the same `SearchOutput`, one decode and one chunked PRM pass."""
  from ttc_jax.search.loop import SearchOutput  # The loop dispatches here: import it when called, not at load.
  p, prompt_len = prompts_PxL.shape
  n, r, t = cfg.budget, cfg.max_rounds, cfg.max_solution_tokens
  v_prompt_len = verifier_prompts_PxL.shape[1]
  models = models.replace(policy_params=unstack_layers(models.policy_params),
                          prm_params=unstack_layers(models.prm_params))
  # Prefills as the rounds do them: once per problem, shared by its N candidates.
  logits_PxV, pos_P, policy_cache = prefill(models.policy, models.policy_params, prompts_PxL, valid_PxL,
                                            prompt_len if cfg.shared_prefix else prompt_len + t)
  prm_cache, prm_pos_P = prefill_prm(models.prm, models.prm_params, verifier_prompts_PxL, verifier_valid_PxL,
                                     v_prompt_len if cfg.shared_prefix else v_prompt_len + t)
  n_block = prm_block_rows(p, n)  # The PRM pass holds one block of rows' caches at a time.
  if cfg.shared_prefix:
    policy_cache, prm_cache = share_prefix(policy_cache, n, t), share_prefix(prm_cache, n_block, t)
  else:
    policy_cache, prm_cache = repeat_cache(policy_cache, n), repeat_cache(prm_cache, n_block)
  prompt_tokens_P = jnp.sum(valid_PxL, axis=1).astype(jnp.int32)
  pos_B, prm_pos_B = repeat_beams(pos_P, n), repeat_beams(prm_pos_P, n)

  sampling = SamplingConfig(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=t, stop_at_newline=True)
  out = decode(models.policy, models.policy_params, repeat_beams(logits_PxV, n), pos_B, policy_cache, rng,
               cfg=sampling, stop=models.stop, pad_id=models.pad_id, done_B=repeat_beams(prompt_tokens_P == 0, n),
               steps=StepLimits(max_steps=r, max_step_tokens=cfg.max_step_tokens))
  taken_BxR, start_BxR, length_BxR, reason_BxR = _steps(out, r)
  prob_BxR, fed_BxR = score_solutions(models, prm_cache, prm_pos_B, out.tokens_BxN, out.lengths_B, taken_BxR,
                                      start_BxR, length_BxR, reason_BxR, chunk=cfg.max_step_tokens,
                                      num_problems=p)
  scored_BxR = fed_BxR > 0
  last_scored_B = jnp.max(jnp.where(scored_BxR, jnp.arange(r)[None], -1), axis=1)
  score_B = jnp.where(last_scored_B >= 0,
                      jnp.take_along_axis(prob_BxR, jnp.maximum(last_scored_B, 0)[:, None], axis=1)[:, 0], 0.0)

  fed_B = jnp.sum(fed_BxR, axis=1)
  total = lambda x_B: budget_lib.per_problem(x_B, num_beams=n)
  bud = budget_lib.initial_budget(models.policy.cfg, models.prm.cfg, prompt_tokens_P, cfg.generations,
                                  jnp.sum(verifier_valid_PxL, axis=1).astype(jnp.int32))
  # FLOPs are affine in the context, so one run of a row's tokens costs what its steps cost one by one.
  bud = bud.replace(policy_tokens_P=total(out.lengths_B), prm_tokens_P=total(fed_B),
                    policy_flops_P=bud.policy_flops_P + total(budget_lib.run_flops(models.policy.cfg, out.lengths_B,
                                                                                   pos_B)),
                    prm_flops_P=bud.prm_flops_P + total(budget_lib.run_flops(models.prm.cfg, fed_B, prm_pos_B)))
  rounds = jnp.max(jnp.sum(taken_BxR, axis=1)).astype(jnp.int32)  # The rounds the longest candidate needs.
  per_problem = lambda x: x.reshape((p, n) + x.shape[1:])
  finished_B = (out.stop_reason_B == STOP_EOS) | (out.stop_reason_B == STOP_LENGTH)
  # Width 1 keeps every candidate in its slot: the parents of each round run are the identity.
  parents_PxRxN = jnp.where((jnp.arange(r) < rounds)[None, :, None], jnp.arange(n, dtype=jnp.int32)[None, None],
                            -1)
  return SearchOutput(tokens_PxNxT=per_problem(out.tokens_BxN), lengths_PxN=per_problem(out.lengths_B),
                      finished_PxN=per_problem(finished_B), stop_reason_PxN=per_problem(out.stop_reason_B),
                      score_PxN=per_problem(score_B), rank_score_PxN=per_problem(score_B),
                      step_scores_PxNxR=per_problem(jnp.where(scored_BxR, prob_BxR, jnp.nan)),
                      parents_PxRxN=jnp.broadcast_to(parents_PxRxN, (p, r, n)).astype(jnp.int32), rounds=rounds,
                      budget=bud, verifier_overflow=jnp.zeros((), jnp.int32))
