"""What a search spent, per problem, counted on the device.

FLOPs use `models.flops.forward_flops_per_token(cfg, context)`, which is affine
in the context length, so a run of n consecutive tokens starting at RoPE
position p (p real tokens before it) costs exactly
  a * n + b * sum_{i<n} (p + i + 1),   a = f(0), b = f(1) - f(0).
Context = the real tokens a token attends to, itself included. The fixed-shape
kernels also touch padding, invalid cache slots and idle rows; that waste is
not counted (it depends on the batch, not on the method). Both prefills (policy
and PRM) run once per problem and are shared by its N candidates.
"""
import flax
import jax
import jax.numpy as jnp

from ttc_jax.models.flops import span_forward_flops


@flax.struct.dataclass
class Budget:
  generations_P: jax.Array  # int32: the paper's generation count, N or N * (k + 1).
  policy_tokens_P: jax.Array  # int32: tokens sampled by the policy, lookahead rollouts included.
  rollout_tokens_P: jax.Array  # int32: the part of policy_tokens_P sampled in lookahead rollouts.
  prm_tokens_P: jax.Array  # int32: step tokens fed to the PRM (rollouts included; prompt excluded).
  prompt_tokens_P: jax.Array  # int32: real prompt tokens (each model encodes them once).
  policy_flops_P: jax.Array  # float32: policy forward FLOPs, prompt included.
  prm_flops_P: jax.Array  # float32: PRM forward FLOPs, prompt included.


def run_flops(cfg, count: jax.Array, start_position: jax.Array) -> jax.Array:
  """float32 forward FLOPs of `count` consecutive tokens, the first at RoPE position `start_position`."""
  return span_forward_flops(cfg, count.astype(jnp.float32), start_position.astype(jnp.float32))


def per_problem(x_B: jax.Array, num_beams: int) -> jax.Array:
  """Sums a per-row count over each problem's N rows: [P*N] -> [P]."""
  return jnp.sum(x_B.reshape(-1, num_beams), axis=1)


def initial_budget(policy_cfg, prm_cfg, prompt_tokens_P: jax.Array, generations: int,
                   verifier_prompt_tokens_P: jax.Array | None = None) -> Budget:
  """The prefills' cost; the verifier's prompt (its own layout) defaults to the policy's."""
  zeros = jnp.zeros_like(prompt_tokens_P, dtype=jnp.int32)
  start = jnp.zeros_like(prompt_tokens_P)
  verifier_prompt_tokens_P = prompt_tokens_P if verifier_prompt_tokens_P is None else verifier_prompt_tokens_P
  return Budget(generations_P=jnp.where(prompt_tokens_P > 0, generations, 0).astype(jnp.int32),
                policy_tokens_P=zeros, rollout_tokens_P=zeros, prm_tokens_P=zeros,
                prompt_tokens_P=prompt_tokens_P.astype(jnp.int32),
                policy_flops_P=run_flops(policy_cfg, prompt_tokens_P, start),
                prm_flops_P=run_flops(prm_cfg, verifier_prompt_tokens_P, start))
