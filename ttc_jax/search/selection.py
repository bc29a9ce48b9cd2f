"""Which candidates survive a round, and how many slots each one fills (pure, per group).

The rule, for a group of C candidates with K survivors (K = C / M):

1. Rank the group's candidates by score, highest first; ties go to the lower
   slot (stable), so the choice is deterministic. The top K survive, finished
   and unfinished alike (a finished candidate competes with its final score).
2. A finished survivor (ended with EOS or truncated) is carried unchanged in
   exactly one slot; it is never expanded again.
3. The C - F remaining slots (F = finished survivors) are shared by the U = K - F
   unfinished survivors in rank order: each gets (C - F) // U slots and the best
   (C - F) % U get one more. Without finished survivors that is M each; each
   finished survivor frees M - 1 slots that go to the best unfinished survivors.
4. If every survivor is finished (U = 0), the group is *frozen*: its candidates
   stay exactly as they are (no gather, nothing sampled) for the rest of the search.

New slots list the survivors in rank order, each survivor's copies contiguous:
slot 0 is always the best survivor.
"""
import jax
import jax.numpy as jnp


def rank(scores_GxC: jax.Array) -> jax.Array:
  """int32[G, C]: slots from best to worst score; NaN ranks last, ties by slot."""
  scores = jnp.where(jnp.isnan(scores_GxC), -jnp.inf, scores_GxC)
  return jnp.argsort(-scores, axis=-1, stable=True).astype(jnp.int32)


def select_parents(scores_GxC: jax.Array, finished_GxC: jax.Array, survivors: int) -> tuple[jax.Array, jax.Array]:
  """Parents of the next round's slots (module docstring: the rule).

  Args:
    scores_GxC: float32 ranking scores (PRM probability of each candidate).
    finished_GxC: bool, candidate ended (EOS or a truncated step).
    survivors: K, candidates kept per group (C must be a multiple of K).

  Returns:
    (parents_GxC int32: slot of the current group that each new slot copies,
     frozen_G bool: group has no unfinished survivor; its parents are the identity).
  """
  c = scores_GxC.shape[1]
  survivors_GxK = rank(scores_GxC)[:, :survivors]
  finished_GxK = jnp.take_along_axis(finished_GxC, survivors_GxK, axis=1)
  num_finished_G = jnp.sum(finished_GxK, axis=1)
  num_open_G = survivors - num_finished_G
  frozen_G = num_open_G == 0
  open_slots_G = c - num_finished_G
  per_open_G = open_slots_G // jnp.maximum(num_open_G, 1)
  extra_G = open_slots_G % jnp.maximum(num_open_G, 1)
  open_rank_GxK = jnp.cumsum(~finished_GxK, axis=1) - 1  # Rank among the unfinished survivors.
  counts_GxK = jnp.where(finished_GxK, 1, per_open_G[:, None] + (open_rank_GxK < extra_G[:, None]))
  parents_GxC = jax.vmap(lambda s, n: jnp.repeat(s, n, total_repeat_length=c))(survivors_GxK, counts_GxK)
  identity_GxC = jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), parents_GxC.shape)
  return jnp.where(frozen_G[:, None], identity_GxC, parents_GxC).astype(jnp.int32), frozen_G
