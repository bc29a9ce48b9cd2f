"""Search with the problem axis sharded over 8 fake CPU devices gives the unsharded result."""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import parallel
from ttc_jax.decode.prompts import left_pad
from ttc_jax.models import Transformer
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.loop import jit_search
from ttc_jax.testing.scripted import LogitBias, ScriptedPolicy, ScriptedPRM, scripted_config
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import StopRule

PAD, EOS, NL = 0, 1, 2
P = 8  # One problem per device.


@pytest.fixture(scope="module")
def mesh():
  assert jax.device_count() == 8
  return parallel.make_mesh(parallel.MeshConfig(data=8))


def _run(fn, params, tokens, valid, mesh=None, check_collectives=False):
  rng = jax.random.key(3)
  if mesh is None:
    return jax.device_get(fn(*params, tokens, valid, rng))
  tokens, valid = jax.device_put((tokens, valid), parallel.batch_sharding(mesh))
  params = jax.device_put(params, parallel.replicated(mesh))
  with parallel.activate(mesh):
    out = fn(*params, tokens, valid, rng)
    if check_collectives:
      # Beam gathers stay within a problem, hence a device: the only cross-device
      # traffic is the all-reduce of each while loop's stop flag.
      hlo = fn.lower(*params, tokens, valid, rng).compile().as_text()
      for op in ("all-gather", "all-to-all", "collective-permute", "reduce-scatter"):
        assert not re.search(rf"= \S+ {op}(-start)?\(", hlo), op
      assert all("pred[]" in line for line in hlo.split("\n") if re.search(r"= \S+ all-reduce(-start)?\(", line))
  # Every per-problem output really is split over the devices.
  assert out.tokens_PxNxT.sharding.shard_shape(out.tokens_PxNxT.shape)[0] == 1
  return jax.device_get(out)


def _assert_same(a, b):
  np.testing.assert_array_equal(a.tokens_PxNxT, b.tokens_PxNxT)
  np.testing.assert_array_equal(a.parents_PxRxN, b.parents_PxRxN)
  np.testing.assert_array_equal(a.budget.policy_tokens_P, b.budget.policy_tokens_P)
  np.testing.assert_array_equal(a.budget.prm_tokens_P, b.budget.prm_tokens_P)
  np.testing.assert_allclose(a.step_scores_PxNxR, b.step_scores_PxNxR, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(a.budget.policy_flops_P, b.budget.policy_flops_P, rtol=1e-6)
  assert int(a.rounds) == int(b.rounds)


@pytest.mark.parametrize("method", ["beam", "lookahead"])
def test_scripted_sharded_equals_unsharded(mesh, method):
  rng = np.random.RandomState(0)
  cfg = SearchConfig(method=method, budget=4, beam_width=2, lookahead=int(method == "lookahead"), max_rounds=4,
                     max_step_tokens=4, max_solution_tokens=16)
  params = ({"table": rng.randint(10, 36, size=(P * 4, 5)).astype(np.int32)},
            {"values": rng.randn(54).astype(np.float32)})
  policy = ScriptedPolicy(scripted_config(), EOS, NL, 3, 10, 30)
  prm = ScriptedPRM(scripted_config(scalar_head=True), 10, cumulative=True)
  tokens, valid = left_pad([[5, 6, 7][:1 + i % 3] for i in range(P)], PAD, buckets=(4,))
  fn = jit_search(policy, prm, cfg, StopRule.from_ids(policy.cfg.vocab_size, [EOS], NL), PAD)
  _assert_same(_run(fn, params, tokens, valid, mesh), _run(fn, params, tokens, valid))


@pytest.mark.parametrize("method,decode_impl", [("beam", "xla"), ("beam", "pallas"), ("lookahead", "pallas")])
def test_transformer_sharded_equals_unsharded(mesh, method, decode_impl):
  """Real caches: gathers of the policy and PRM caches stay right when rows live on 8 devices.

  With the Pallas decode kernel (interpret mode) the sharded search runs it per device in
  shard_map -- still no gather -- and must equal the unsharded XLA search: the policy's decode
  steps and lookahead rollouts go through the kernel (the PRM here is configured for XLA).
  """
  policy_cfg = tiny_model_config(vocab_size=48, n_layers=1, decode_attention_impl=decode_impl)
  policy, policy_xla = Transformer(policy_cfg), Transformer(tiny_model_config(vocab_size=48, n_layers=1))
  prm = Transformer(tiny_model_config(vocab_size=48, n_layers=1, lm_head=False, scalar_head=True))
  init = lambda m, seed: nn.unbox(jax.jit(m.init)(jax.random.key(seed), jnp.zeros((1, 4), jnp.int32)))
  params = (init(policy, 0), init(prm, 1))
  cfg = SearchConfig(method=method, budget=4, beam_width=2, lookahead=int(method == "lookahead"), max_rounds=3,
                     max_step_tokens=3, max_solution_tokens=9)
  stop = StopRule.from_ids(policy.cfg.vocab_size, [EOS], NL)
  fn, fn_xla = (jit_search(LogitBias(m, ((NL, 3.0), (EOS, 1.0))), prm, cfg, stop, PAD) for m in (policy, policy_xla))
  tokens, valid = left_pad([[5 + i, 6, 9][:1 + i % 3] for i in range(P)], PAD, buckets=(4,))
  sharded, single = _run(fn, params, tokens, valid, mesh, check_collectives=True), _run(fn_xla, params, tokens, valid)
  _assert_same(sharded, single)
  assert int(single.rounds) > 1 and (single.parents_PxRxN[:, 1] != np.arange(4)).any()  # Beams were reordered.
