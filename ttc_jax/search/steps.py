"""One step of every candidate: sample it with the policy, score it with the PRM, append it.

Steps are sampled by the sampler's own one-token `lax.while_loop`
(`decode.decode` with `stop_at_newline`), so search and plain sampling draw
tokens the same way. Each row's policy index moves on by the tokens it sampled.
The verifier keeps its own cache and per-row slot indexes: a round writes one
block per row at that row's index (`search.verifier_feed` says what the block
holds) and the row's index moves on by the tokens fed (`fed_B`, the block's
valid head); the rest of the block, invalid, is written over by the next round.
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp

from ttc_jax.decode.sampler import decode
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.search import prm as prm_lib
from ttc_jax.search import verifier_feed
from ttc_jax.search.budget import run_flops
from ttc_jax.search.verifier_feed import FeedTables, VerifierSpec
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
  verifier: VerifierSpec = flax.struct.field(pytree_node=False, default=VerifierSpec())
  feed_tables: FeedTables | None = None  # Device feed: the policy vocabulary's strip tables.
  problem_keys_B: jax.Array | None = None  # Host feed: int32 key of each row's problem text.


@flax.struct.dataclass
class Context:
  """Where every candidate is: both caches and what the next step starts from."""
  policy_logits_BxV: jax.Array  # float32 next-token logits after the candidate's last token.
  policy_pos_B: jax.Array  # int32 RoPE position of the next policy token.
  policy_cache: Any  # KVCache: per layer [B, K, S, H].
  prm_pos_B: jax.Array  # int32 RoPE position of the next verifier token.
  prm_cache: Any  # KVCache of the verifier: its own slots S' and index.
  prm_steps_B: jax.Array  # int32 steps fed to the verifier so far (a format may lay out step 0 apart).


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
  overflow_B: jax.Array  # bool: the re-tokenised step did not fit the verifier's block (host feed); not scored.


def take_step(models: Models, ctx: Context, active_B: jax.Array, rng: jax.Array,
              cfg: SamplingConfig) -> tuple[Step, Context]:
  """Samples one step (up to cfg.max_new_tokens) for active rows and scores it incrementally."""
  out = decode(models.policy, models.policy_params, ctx.policy_logits_BxV, ctx.policy_pos_B, ctx.policy_cache, rng,
               cfg=cfg, stop=models.stop, pad_id=models.pad_id, return_cache=True,
               done_B=~active_B)
  spec, vcache = models.verifier, ctx.prm_cache
  overflow_B = jnp.zeros_like(active_B)
  if spec.mode == "ttc":  # Static: this project's PRM reads the policy's tokens as sampled.
    prob_B, new_vcache, fed_B = prm_lib.score_step(
        models.prm, models.prm_params, vcache, ctx.prm_pos_B, out.tokens_BxN, out.lengths_B, out.stop_reason_B,
        active_B, stop=models.stop)
  else:
    if spec.mode == "device":
      tokens_BxK, fed_B, read_B = verifier_feed.device_block(
          spec, models.feed_tables, out.tokens_BxN, out.lengths_B, out.stop_reason_B, ctx.prm_steps_B == 0, active_B)
    else:
      tokens_BxK, fed_B, read_B, overflow_B = verifier_feed.host_block(
          spec, models.problem_keys_B, ctx.prm_steps_B, out.tokens_BxN, out.lengths_B, out.stop_reason_B, active_B)
    prob_B, new_vcache = prm_lib.score_block(models.prm, models.prm_params, spec.reader, vcache, ctx.prm_pos_B,
                                             tokens_BxK, fed_B, read_B)
  step = Step(tokens_BxW=out.tokens_BxN, lengths_B=out.lengths_B, stop_reason_B=out.stop_reason_B, prob_B=prob_B,
              prm_fed_B=fed_B, policy_flops_B=run_flops(models.policy.cfg, out.lengths_B, ctx.policy_pos_B),
              prm_flops_B=run_flops(models.prm.cfg, fed_B, ctx.prm_pos_B), overflow_B=overflow_B)
  ctx = Context(policy_logits_BxV=out.logits_BxV, policy_pos_B=ctx.policy_pos_B + out.lengths_B,
                policy_cache=out.cache, prm_pos_B=ctx.prm_pos_B + fed_B,
                prm_cache=new_vcache,
                prm_steps_B=ctx.prm_steps_B + (fed_B > 0).astype(jnp.int32))
  return step, ctx


def append_tokens(buffer_BxT: jax.Array, lengths_B: jax.Array, new_BxW: jax.Array, new_lengths_B: jax.Array):
  """Writes row b's first new_lengths_B[b] new tokens at buffer_BxT[b, lengths_B[b]:] (the caller keeps room)."""
  t_T = jnp.arange(buffer_BxT.shape[1])
  j_BxT = t_T[None] - lengths_B[:, None]
  write_BxT = (j_BxT >= 0) & (j_BxT < new_lengths_B[:, None])
  values = jnp.take_along_axis(new_BxW, jnp.clip(j_BxT, 0, new_BxW.shape[1] - 1), axis=1)
  return jnp.where(write_BxT, values, buffer_BxT)
