"""One step of every candidate: sample it with the policy, score it with the PRM, append it.

Steps are sampled by the sampler's own one-token `lax.while_loop`
(`decode.decode` with `stop_at_newline`), so search and plain sampling draw
tokens the same way. The policy and PRM caches share one slot index: a round
writes its steps at the same slots in both, and the PRM block (W slots) only
ever extends past the policy's write into slots that are invalid for every row.
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampler import decode
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.search import prm as prm_lib
from ttc_jax.search.budget import run_flops
from ttc_jax.tokenization.steps import StopRule


@flax.struct.dataclass
class Models:
  """The two networks, their parameters and the stop rule (static modules, traced arrays)."""
  policy: Any = flax.struct.field(pytree_node=False)
  policy_params: Any
  prm: Any = flax.struct.field(pytree_node=False)
  prm_params: Any
  stop: StopRule  # EOS and step end of the policy's vocabulary (tables are traced).
  pad_id: int = flax.struct.field(pytree_node=False)


@flax.struct.dataclass
class Context:
  """Where every candidate is: both caches and what the next step starts from."""
  policy_logits_BxV: jax.Array  # float32 next-token logits after the candidate's last token.
  policy_pos_B: jax.Array  # int32 RoPE position of the next policy token.
  policy_cache: Any  # KVCache [L, B, S, K, H].
  prm_pos_B: jax.Array  # int32 RoPE position of the next PRM token.
  prm_cache: Any  # KVCache of the PRM, same S, index kept equal to the policy's.


@flax.struct.dataclass
class Step:
  """What one step did to every row."""
  tokens_BxW: jax.Array  # int32 sampled tokens, stop token included, pad after.
  lengths_B: jax.Array  # int32 tokens sampled (0 for rows that were not active).
  stop_reason_B: jax.Array  # int32 decode.STOP_*.
  prob_B: jax.Array  # float32 PRM probability at the step's end (meaningless where prm_fed_B == 0).
  prm_fed_B: jax.Array  # int32 tokens fed to the PRM (0: not scored).
  policy_flops_B: jax.Array  # float32
  prm_flops_B: jax.Array  # float32


def take_step(models: Models, ctx: Context, active_B: jax.Array, rng: jax.Array,
              cfg: SamplingConfig) -> tuple[Step, Context]:
  """Samples one step (up to cfg.max_new_tokens) for active rows and scores it incrementally."""
  start = ctx.policy_cache.index
  out = decode(models.policy, models.policy_params, ctx.policy_logits_BxV, ctx.policy_pos_B, ctx.policy_cache, rng,
               cfg=cfg, stop=models.stop, pad_id=models.pad_id, return_cache=True,
               done_B=~active_B)
  prob_B, prm_cache, fed_B = prm_lib.score_step(
      models.prm, models.prm_params, ctx.prm_cache.replace(index=start), ctx.prm_pos_B, out.tokens_BxN, out.lengths_B,
      out.stop_reason_B, active_B, stop=models.stop)
  step = Step(tokens_BxW=out.tokens_BxN, lengths_B=out.lengths_B, stop_reason_B=out.stop_reason_B, prob_B=prob_B,
              prm_fed_B=fed_B, policy_flops_B=run_flops(models.policy.cfg, out.lengths_B, ctx.policy_pos_B),
              prm_flops_B=run_flops(models.prm.cfg, fed_B, ctx.prm_pos_B))
  ctx = Context(policy_logits_BxV=out.logits_BxV, policy_pos_B=ctx.policy_pos_B + out.lengths_B,
                policy_cache=out.cache, prm_pos_B=ctx.prm_pos_B + fed_B,
                prm_cache=prm_cache.replace(index=out.cache.index))
  return step, ctx


def append_tokens(buffer_BxT: jax.Array, lengths_B: jax.Array, new_BxW: jax.Array, new_lengths_B: jax.Array):
  """Writes row b's first new_lengths_B[b] new tokens at buffer_BxT[b, lengths_B[b]:] (the caller keeps room)."""
  t_T = jnp.arange(buffer_BxT.shape[1])
  j_BxT = t_T[None] - lengths_B[:, None]
  write_BxT = (j_BxT >= 0) & (j_BxT < new_lengths_B[:, None])
  values = jnp.take_along_axis(new_BxW, jnp.clip(j_BxT, 0, new_BxW.shape[1] - 1), axis=1)
  return jnp.where(write_BxT, values, buffer_BxT)
