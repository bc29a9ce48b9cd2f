"""Lookahead scoring: rank a candidate by the PRM at the end of k greedy steps beyond it.

The rollout only scores: afterwards both caches are rewound to where the
candidate ended (`beams.rewind_cache`: every row back to its own saved index),
and the next round samples fresh steps from the candidate itself. Rewinding the
rolled-out caches, rather than keeping the pre-rollout ones, lets XLA update
one copy of each cache in place instead of holding two. A rollout
stops early at EOS or a truncated step; a rollout step with no content is not
scored. Tokens and FLOPs of the rollouts are counted like any other.
"""
import flax
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampler import STOP_NEWLINE
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.search.beams import rewind_cache
from ttc_jax.search.steps import Context, Models, take_step


@flax.struct.dataclass
class _RolloutState:
  step: jax.Array  # int32 []: rollout steps taken.
  ctx: Context
  live_B: jax.Array  # bool: row is still rolling out.
  score_B: jax.Array  # float32 PRM probability at the last scored rollout step.
  tokens_B: jax.Array  # int32 rollout tokens sampled.
  prm_tokens_B: jax.Array  # int32 rollout tokens fed to the PRM.
  policy_flops_B: jax.Array  # float32
  prm_flops_B: jax.Array  # float32
  overflow: jax.Array  # int32 []: rollout steps the verifier's block could not hold (host feed).


@flax.struct.dataclass
class RolloutResult:
  score_B: jax.Array  # float32: ranking score (the input score where nothing was rolled out).
  tokens_B: jax.Array  # int32
  prm_tokens_B: jax.Array  # int32
  policy_flops_B: jax.Array  # float32
  prm_flops_B: jax.Array  # float32
  overflow: jax.Array  # int32 []


def rollout_scores(models: Models, ctx: Context, live_B: jax.Array, score_B: jax.Array, *, steps: int,
                   max_step_tokens: int) -> tuple[RolloutResult, Context]:
  """PRM score after up to `steps` greedy steps from each live row.

  Returns the scores and counts, and `ctx` as it was before the rollout.
  """
  greedy = SamplingConfig(temperature=0.0, max_new_tokens=max_step_tokens, stop_at_newline=True)
  zeros_i = jnp.zeros_like(live_B, jnp.int32)
  zeros_f = jnp.zeros_like(score_B)

  def cond(s: _RolloutState):
    return (s.step < steps) & jnp.any(s.live_B)

  def body(s: _RolloutState):
    # Greedy: the key is unused, any fixed one will do.
    step, new_ctx = take_step(models, s.ctx, s.live_B, jax.random.key(0), greedy)
    scored = step.prm_fed_B > 0
    return _RolloutState(step=s.step + 1, ctx=new_ctx, live_B=s.live_B & (step.stop_reason_B == STOP_NEWLINE),
                         score_B=jnp.where(scored, step.prob_B, s.score_B), tokens_B=s.tokens_B + step.lengths_B,
                         prm_tokens_B=s.prm_tokens_B + step.prm_fed_B,
                         policy_flops_B=s.policy_flops_B + step.policy_flops_B,
                         prm_flops_B=s.prm_flops_B + step.prm_flops_B,
                         overflow=s.overflow + jnp.sum(step.overflow_B).astype(jnp.int32))

  init = _RolloutState(step=jnp.zeros((), jnp.int32), ctx=ctx, live_B=live_B, score_B=score_B, tokens_B=zeros_i,
                       prm_tokens_B=zeros_i, policy_flops_B=zeros_f, prm_flops_B=zeros_f,
                       overflow=jnp.zeros((), jnp.int32))
  final = jax.lax.while_loop(cond, body, init)
  result = RolloutResult(score_B=final.score_B, tokens_B=final.tokens_B, prm_tokens_B=final.prm_tokens_B,
                         policy_flops_B=final.policy_flops_B, prm_flops_B=final.prm_flops_B,
                        overflow=final.overflow)
  rewound = ctx.replace(policy_cache=rewind_cache(final.ctx.policy_cache, ctx.policy_cache.index_B),
                        prm_cache=rewind_cache(final.ctx.prm_cache, ctx.prm_cache.index_B))
  return result, rewound
