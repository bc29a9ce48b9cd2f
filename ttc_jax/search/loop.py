"""Search against a PRM on the device: one `lax.while_loop` over rounds, one jitted program per shape.

A round, for every problem of the batch at once:
  1. apply the selection made at the end of the previous round: gather every
     per-candidate buffer and both KV caches by `parents` (identity before round 0);
  2. sample one step for every active candidate (not finished, group not frozen);
  3. feed that step to the candidate's PRM cache and read its score;
  4. (lookahead) roll out k greedy steps, rank by the PRM at their end, rewind;
  5. choose the next round's parents (`selection.select_parents`; with width
     M = 1 every candidate survives in its own slot, so parents stay the identity).
The loop stops (one cond_fn) after `max_rounds`, when every group is frozen
(no unfinished survivor anywhere), or when another step might not fit the
cache of a row the next round extends. The output is the candidates as they
stand after the last scoring, before any further selection: the N "final
candidates" the answer is voted over.

Shapes: P problems, N = cfg.budget candidates each, B = P * N rows
(problem-major), G groups per problem, T = max_solution_tokens,
W = max_step_tokens, R = max_rounds, S = prompt length + T + k * W cache slots.
The verifier has its own prompt (length L'), block width W' and slot budget T'
(`search.verifier_feed.VerifierSpec`; this project's PRM: its prompt is the
policy's, W' = W, T' = T): S' = L' + T' + k * W' slots.
With `cfg.shared_prefix` each problem's prompt is stored once ([P, K, L, H] per layer,
`models.kv_cache.SharedPrefix`) and the candidates' caches hold only the solution:
S = T + k * W and S' = T' + k * W' slots per row, the indexes counting from 0.

Every row has its own cache index (`KVCache.index_B`): a round moves a candidate's
policy index by its own step's tokens and its verifier index by the tokens fed to
it, so a row's slots hold its solution contiguously and nothing is padded to the
batch's longest step. A row's policy index is the prompt plus its solution length,
so T bounds each candidate's own tokens: a round runs while every row it extends
has room for one more full step (solution + W <= T, and the verifier's likewise);
finished rows and frozen groups do not hold the others back. The k * W slots after
T are the lookahead rollouts' (rewound each round).
"""
import functools

import flax
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampler import STOP_EOS, STOP_LENGTH, STOP_NONE, prefill
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.models import unstack_layers
from ttc_jax.models.kv_cache import share_prefix
from ttc_jax.search import best_of_n
from ttc_jax.search import budget as budget_lib
from ttc_jax.search.beams import gather_beams, gather_cache, repeat_beams, repeat_cache
from ttc_jax.search.budget import Budget
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.lookahead import rollout_scores
from ttc_jax.search.prm import prefill_prm
from ttc_jax.search.selection import select_parents
from ttc_jax.search.steps import Context, Models, append_tokens, take_step
from ttc_jax.search.verifier_feed import VerifierSpec
from ttc_jax.tokenization.steps import StopRule, WithStopRule


@flax.struct.dataclass
class Candidates:
  """Every candidate's solution so far; gathered with the beams each round."""
  tokens_BxT: jax.Array  # int32 new tokens (stop tokens kept), pad after lengths_B.
  lengths_B: jax.Array  # int32
  finished_B: jax.Array  # bool: ended with EOS or a truncated step; never expanded again.
  stop_reason_B: jax.Array  # int32 decode.STOP_* of the last step (STOP_NONE before any).
  score_B: jax.Array  # float32 PRM probability at the last scored step (0 before any).
  rank_score_B: jax.Array  # float32 what selection ranks by (score_B, or the lookahead rollout's end).
  step_scores_BxR: jax.Array  # float32 PRM probability of the step added in each round; NaN where none.


@flax.struct.dataclass
class SearchState:
  round: jax.Array  # int32 []: rounds run so far.
  parents_PxN: jax.Array  # int32: slots the next round copies (within the problem).
  frozen_PxG: jax.Array  # bool: group has no unfinished survivor; its candidates no longer change.
  trace_parents_PxRxN: jax.Array  # int32: parents applied at the start of each round, -1 for rounds not run.
  candidates: Candidates
  ctx: Context
  budget: Budget
  rng: jax.Array
  overflow: jax.Array  # int32 []: steps the verifier's block could not hold (host feed; not scored).


@flax.struct.dataclass
class SearchOutput:
  tokens_PxNxT: jax.Array  # int32 solution tokens of the final candidates (stop tokens kept, pad after).
  lengths_PxN: jax.Array  # int32
  finished_PxN: jax.Array  # bool: ended (EOS or truncated step).
  stop_reason_PxN: jax.Array  # int32 decode.STOP_* of the last step.
  score_PxN: jax.Array  # float32 PRM probability at the last step: the paper's solution score.
  rank_score_PxN: jax.Array  # float32 last ranking score (differs from score_PxN with lookahead).
  step_scores_PxNxR: jax.Array  # float32 PRM probability per round's step, NaN where none.
  parents_PxRxN: jax.Array  # int32 trace: parents applied at the start of each round (-1: not run).
  rounds: jax.Array  # int32 []: rounds run.
  budget: Budget  # [P] per-problem accounting.
  verifier_overflow: jax.Array  # int32 []: steps left unscored because they overflowed the verifier's block.


def _group_of_slot(cfg: SearchConfig, x_PxG: jax.Array) -> jax.Array:
  """[P, G] -> [P*N]: the value of each row's group (group g holds slots g*C .. g*C+C-1)."""
  return jnp.repeat(x_PxG, cfg.group_size, axis=1).reshape(-1)


def _next_parents(cfg: SearchConfig, cand: Candidates, frozen_PxG: jax.Array):
  p, g, c = frozen_PxG.shape[0], cfg.num_groups, cfg.group_size
  parents_GxC, newly_frozen_G = select_parents(cand.rank_score_B.reshape(p * g, c), cand.finished_B.reshape(p * g, c),
                                               cfg.survivors)
  frozen_PxG = frozen_PxG | newly_frozen_G.reshape(p, g)
  parents_PxGxC = parents_GxC.reshape(p, g, c) + (jnp.arange(g, dtype=jnp.int32) * c)[None, :, None]
  identity_PxN = jnp.broadcast_to(jnp.arange(cfg.budget, dtype=jnp.int32), (p, cfg.budget))
  if cfg.width == 1:  # Every candidate survives in one slot: keep them in place rather than sorted.
    return identity_PxN, frozen_PxG
  keep_PxN = _group_of_slot(cfg, frozen_PxG).reshape(p, -1)
  return jnp.where(keep_PxN, identity_PxN, parents_PxGxC.reshape(p, -1)), frozen_PxG


def search(models: Models, prompts_PxL: jax.Array, valid_PxL: jax.Array, rng: jax.Array, *,
           cfg: SearchConfig, verifier_prompts_PxL: jax.Array | None = None,
           verifier_valid_PxL: jax.Array | None = None) -> SearchOutput:
  """Runs `cfg.method` for P left-padded prompts ([bos] + prompt ids); see the module docstring.

  The verifier reads `verifier_prompts_PxL` (left-padded, its own layout and vocabulary;
  default: the policy's prompts). Problems whose prompt has no valid token (batch padding)
  are frozen from the start: they sample nothing and report a zero budget.
  Best-of-N with this project's PRM runs without rounds (`search.best_of_n`) unless
  `cfg.best_of_n_rounds`.
  """
  if verifier_prompts_PxL is None:
    verifier_prompts_PxL, verifier_valid_PxL = prompts_PxL, valid_PxL
  if best_of_n.applies(cfg, models.verifier):
    return best_of_n.search(models, prompts_PxL, valid_PxL, rng, cfg=cfg, verifier_prompts_PxL=verifier_prompts_PxL,
                            verifier_valid_PxL=verifier_valid_PxL)
  p, prompt_len = prompts_PxL.shape
  n, r, w, k = cfg.budget, cfg.max_rounds, cfg.max_step_tokens, cfg.lookahead
  step_cfg = SamplingConfig(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=w, stop_at_newline=True)
  if verifier_prompts_PxL is None:
    verifier_prompts_PxL, verifier_valid_PxL = prompts_PxL, valid_PxL
  spec: VerifierSpec = models.verifier
  v_block, v_slots = spec.block or w, spec.solution_slots or cfg.max_solution_tokens
  v_prompt_len = verifier_prompts_PxL.shape[1]
  # Where each cache's index starts the solution: 0 when the prompt is a shared prefix.
  policy_start, v_start = (0, 0) if cfg.shared_prefix else (prompt_len, v_prompt_len)
  policy_room = policy_start + cfg.max_solution_tokens  # The policy's index stays below this.
  v_room = v_start + v_slots  # The verifier's own budget: its index stays below this.
  cache_len, v_cache_len = policy_room + k * w, v_room + k * v_block

  # Each layer's weights split out of the scanned stack once, not in every decode step.
  models = models.replace(policy_params=unstack_layers(models.policy_params),
                          prm_params=unstack_layers(models.prm_params))
  # Both prefills run once per problem; the N candidates share them.
  logits_PxV, pos_P, policy_cache = prefill(models.policy, models.policy_params, prompts_PxL, valid_PxL,
                                            prompt_len if cfg.shared_prefix else cache_len)
  prm_cache, prm_pos_P = prefill_prm(models.prm, models.prm_params, verifier_prompts_PxL, verifier_valid_PxL,
                                     v_prompt_len if cfg.shared_prefix else v_cache_len)
  if cfg.shared_prefix:
    policy_cache, prm_cache = share_prefix(policy_cache, n, cache_len), share_prefix(prm_cache, n, v_cache_len)
  else:
    policy_cache, prm_cache = repeat_cache(policy_cache, n), repeat_cache(prm_cache, n)
  ctx = Context(policy_logits_BxV=repeat_beams(logits_PxV, n), policy_pos_B=repeat_beams(pos_P, n),
                policy_cache=policy_cache, prm_pos_B=repeat_beams(prm_pos_P, n),
                prm_cache=prm_cache, prm_steps_B=jnp.zeros((p * n,), jnp.int32))
  b = p * n
  cand = Candidates(tokens_BxT=jnp.full((b, cfg.max_solution_tokens), models.pad_id, jnp.int32),
                    lengths_B=jnp.zeros((b,), jnp.int32), finished_B=jnp.zeros((b,), bool),
                    stop_reason_B=jnp.full((b,), STOP_NONE, jnp.int32), score_B=jnp.zeros((b,), jnp.float32),
                    rank_score_B=jnp.zeros((b,), jnp.float32), step_scores_BxR=jnp.full((b, r), jnp.nan, jnp.float32))
  prompt_tokens_P = jnp.sum(valid_PxL, axis=1).astype(jnp.int32)
  init = SearchState(
      round=jnp.zeros((), jnp.int32),
      parents_PxN=jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (p, n)),
      frozen_PxG=jnp.broadcast_to((prompt_tokens_P == 0)[:, None], (p, cfg.num_groups)),
      trace_parents_PxRxN=jnp.full((p, r, n), -1, jnp.int32),
      candidates=cand, ctx=ctx,
      budget=budget_lib.initial_budget(models.policy.cfg, models.prm.cfg, prompt_tokens_P, cfg.generations,
                                       jnp.sum(verifier_valid_PxL, axis=1).astype(jnp.int32)),
      rng=rng, overflow=jnp.zeros((), jnp.int32))

  def cond(s: SearchState):
    # Room for one more step in every row the next round extends (finished rows take no slots).
    finished_B, policy_index_B, v_index_B = s.candidates.finished_B, s.ctx.policy_cache.index_B, s.ctx.prm_cache.index_B
    if cfg.width > 1:  # Static: the round starts by applying the selection; check the rows it makes.
      finished_B, policy_index_B, v_index_B = gather_beams((finished_B, policy_index_B, v_index_B), s.parents_PxN)
    grows_B = ~finished_B & ~_group_of_slot(cfg, s.frozen_PxG)
    room_B = (policy_index_B + w <= policy_room) & (v_index_B + v_block <= v_room)
    # One boolean reduction: with the problem axis sharded, only a pred crosses devices.
    return (s.round < r) & jnp.any(~s.frozen_PxG) & jnp.all(room_B | ~grows_B)

  def body(s: SearchState):
    cand, ctx = s.candidates, s.ctx
    if cfg.width > 1:  # Static: with width 1 (best-of-N) parents are always the identity; skip copying caches.
      cand = gather_beams(cand, s.parents_PxN)
      ctx = ctx.replace(policy_logits_BxV=gather_beams(ctx.policy_logits_BxV, s.parents_PxN),
                        policy_pos_B=gather_beams(ctx.policy_pos_B, s.parents_PxN),
                        policy_cache=gather_cache(ctx.policy_cache, s.parents_PxN),
                        prm_pos_B=gather_beams(ctx.prm_pos_B, s.parents_PxN),
                        prm_cache=gather_cache(ctx.prm_cache, s.parents_PxN),
                        prm_steps_B=gather_beams(ctx.prm_steps_B, s.parents_PxN))
    trace = s.trace_parents_PxRxN.at[:, s.round].set(s.parents_PxN)
    active_B = ~cand.finished_B & ~_group_of_slot(cfg, s.frozen_PxG)

    step, ctx = take_step(models, ctx, active_B, jax.random.fold_in(s.rng, s.round), step_cfg)
    scored_B = step.prm_fed_B > 0
    ended_B = active_B & ((step.stop_reason_B == STOP_EOS) | (step.stop_reason_B == STOP_LENGTH))
    step_score_B = jnp.where(scored_B, step.prob_B, jnp.nan)
    cand = Candidates(
        tokens_BxT=append_tokens(cand.tokens_BxT, cand.lengths_B, step.tokens_BxW, step.lengths_B),
        lengths_B=cand.lengths_B + step.lengths_B, finished_B=cand.finished_B | ended_B,
        stop_reason_B=jnp.where(active_B, step.stop_reason_B, cand.stop_reason_B),
        score_B=jnp.where(scored_B, step.prob_B, cand.score_B),
        rank_score_B=jnp.where(scored_B, step.prob_B, cand.rank_score_B),
        step_scores_BxR=jax.lax.dynamic_update_slice_in_dim(cand.step_scores_BxR, step_score_B[:, None], s.round, 1))
    policy_tokens_B, rollout_tokens_B, prm_tokens_B = step.lengths_B, jnp.zeros_like(step.lengths_B), step.prm_fed_B
    policy_flops_B, prm_flops_B = step.policy_flops_B, step.prm_flops_B
    overflow = s.overflow + jnp.sum(step.overflow_B).astype(jnp.int32)

    if k:  # Static: beam search compiles no rollout loop.
      rollout, ctx = rollout_scores(models, ctx, active_B & ~ended_B, cand.rank_score_B, steps=k, max_step_tokens=w)
      cand = cand.replace(rank_score_B=rollout.score_B)
      policy_tokens_B, rollout_tokens_B = policy_tokens_B + rollout.tokens_B, rollout.tokens_B
      prm_tokens_B = prm_tokens_B + rollout.prm_tokens_B
      policy_flops_B, prm_flops_B = policy_flops_B + rollout.policy_flops_B, prm_flops_B + rollout.prm_flops_B
      overflow = overflow + rollout.overflow

    total = functools.partial(budget_lib.per_problem, num_beams=n)
    bud = s.budget
    bud = bud.replace(policy_tokens_P=bud.policy_tokens_P + total(policy_tokens_B),
                      rollout_tokens_P=bud.rollout_tokens_P + total(rollout_tokens_B),
                      prm_tokens_P=bud.prm_tokens_P + total(prm_tokens_B),
                      policy_flops_P=bud.policy_flops_P + total(policy_flops_B),
                      prm_flops_P=bud.prm_flops_P + total(prm_flops_B))
    parents_PxN, frozen_PxG = _next_parents(cfg, cand, s.frozen_PxG)
    return SearchState(round=s.round + 1, parents_PxN=parents_PxN, frozen_PxG=frozen_PxG,
                       trace_parents_PxRxN=trace, candidates=cand, ctx=ctx, budget=bud, rng=s.rng, overflow=overflow)

  final = jax.lax.while_loop(cond, body, init)
  c = final.candidates
  per_problem = lambda x: x.reshape((p, n) + x.shape[1:])
  return SearchOutput(tokens_PxNxT=per_problem(c.tokens_BxT), lengths_PxN=per_problem(c.lengths_B),
                      finished_PxN=per_problem(c.finished_B), stop_reason_PxN=per_problem(c.stop_reason_B),
                      score_PxN=per_problem(c.score_B), rank_score_PxN=per_problem(c.rank_score_B),
                      step_scores_PxNxR=per_problem(c.step_scores_BxR), parents_PxRxN=final.trace_parents_PxRxN,
                      rounds=final.round, budget=final.budget, verifier_overflow=final.overflow)


@functools.lru_cache(maxsize=None)
def _jit_search(policy, prm, cfg: SearchConfig, pad_id: int, verifier: VerifierSpec):

  def run(policy_params, prm_params, prompts_PxL, valid_PxL, rng, stop, verifier_prompts_PxL=None,
          verifier_valid_PxL=None, problem_keys_P=None, feed_tables=None):
    keys_B = None if problem_keys_P is None else jnp.repeat(problem_keys_P, cfg.budget)
    models = Models(policy=policy, policy_params=policy_params, prm=prm, prm_params=prm_params, stop=stop,
                    pad_id=pad_id, verifier=verifier, feed_tables=feed_tables, problem_keys_B=keys_B)
    return search(models, prompts_PxL, valid_PxL, rng, cfg=cfg, verifier_prompts_PxL=verifier_prompts_PxL,
                  verifier_valid_PxL=verifier_valid_PxL)

  return jax.jit(run)


def jit_search(policy, prm, cfg: SearchConfig, stop: StopRule, pad_id: int, verifier: VerifierSpec = VerifierSpec()):
  """`search`, jitted: fn(policy_params, prm_params, prompts_PxL, valid_PxL, rng[, verifier_prompts_PxL=,
  verifier_valid_PxL=, problem_keys_P=, feed_tables=]) -> SearchOutput.

  One compilation per (models, config, verifier spec, batch size, prompt buckets, vocabulary size):
  `stop`'s tables are arguments of the program, so another rule of the same shape reuses it.
  An off-the-shelf verifier (`verifier_feed.verifier_spec`) takes its own left-padded prompts,
  the strip tables (device feed) or the problems' keys (host feed).

  Shard the problem axis by placing `prompts` / `valid` with
  `parallel.batch_sharding(mesh)` (P a multiple of the data-parallel size) and
  calling under `parallel.activate(mesh)`; every per-candidate buffer follows
  the problem axis, and beam gathers stay within a problem (hence a device).
  """
  return WithStopRule(_jit_search(policy, prm, cfg, pad_id, verifier), stop)
