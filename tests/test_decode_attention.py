"""The Pallas decode-attention kernel (interpret mode on CPU) equals the XLA cached attention."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import parallel
from ttc_jax.decode import SamplingConfig, sampler
from ttc_jax.decode.prompts import left_pad
from ttc_jax.models import Transformer, decode_attention
from ttc_jax.models.attention import MASKED, attend_cached, cache_scores, partial_from_scores
from ttc_jax.models.config import ModelConfig
from ttc_jax.models.prefix_attention import attend_cascade
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import StopRule

S, BLOCK = 40, 16  # The block does not divide the slots: the last block is partly past the buffer.
LENGTHS = [40, 0, 17, 33, 1, 16]  # Full, empty, mid-block, block boundary, one slot.


def _case(groups, dtype, head=16, k_heads=2, seed=0):
  """Queries, a cache whose unfilled slots hold NaN, a clean copy of it, and the visible mask."""
  rng = np.random.RandomState(seed)
  b = len(LENGTHS)
  q = jnp.asarray(rng.randn(b, 1, k_heads * groups, head), dtype)
  new_k, new_v = (jnp.asarray(rng.randn(b, 1, k_heads, head), dtype) for _ in range(2))
  clean_k, clean_v = (rng.randn(b, k_heads, S, head).astype(np.float32) for _ in range(2))
  filled_BxS = np.arange(S)[None] < np.asarray(LENGTHS)[:, None]
  visible_BxS = filled_BxS & (rng.rand(b, S) < 0.7)  # Padding slots inside the filled range.
  visible_BxS[3, 32] = True  # Row 3's last filled slot is visible: its read bound is its length.
  poison = lambda x: jnp.asarray(np.where(filled_BxS[:, None, :, None], x, np.nan), dtype)
  return (q, new_k, new_v, jnp.asarray(clean_k, dtype), jnp.asarray(clean_v, dtype), poison(clean_k),
          poison(clean_v), jnp.asarray(visible_BxS))


@pytest.mark.parametrize("groups,dtype,softcap,head", [(2, jnp.float32, 0.0, 16), (3, jnp.float32, 5.0, 12),
                                                       (4, jnp.bfloat16, 0.0, 16)])
def test_kernel_part_equals_dense_scores(groups, dtype, softcap, head):
  """(out, max, sum) against the dense XLA scores, with every unfilled slot NaN (never read).

  G = 3 and head size 12 exercise the kernel's padding of both to 16 (with Gemma 2's soft-capping).
  """
  q, _, _, clean_k, clean_v, nan_k, nan_v, visible = _case(groups, dtype, head)
  b, _, n, h = q.shape
  q_BxKxGxH = q[:, 0].reshape(b, 2, groups, h)
  scale = h ** -0.5
  out, m, l = decode_attention.cache_partial(q_BxKxGxH, nan_k, nan_v, visible, jnp.asarray(LENGTHS), scale=scale,
                                             softcap=softcap, block_k=BLOCK)
  scores = cache_scores(q[:, :, :, None].reshape(b, 1, 2, groups, h), clean_k, scale, softcap)
  scores = jnp.where(visible[:, None, None, None], scores, MASKED)
  ref_out, ref_m, ref_l = (x[:, :, :, 0] for x in partial_from_scores(scores, clean_v, "bkgts,bksh->bkgth"))
  seen = np.asarray(visible.any(1))  # Rows seeing no slot differ in (out, sum); any merge weighs them 0.
  tol = dict(rtol=1e-5, atol=1e-5) if dtype == jnp.float32 else dict(rtol=2e-2, atol=2e-2)
  assert np.isfinite(np.asarray(out)).all()
  np.testing.assert_allclose(np.asarray(m)[seen], np.asarray(ref_m)[seen], **tol)
  np.testing.assert_allclose(np.asarray(l)[seen], np.asarray(ref_l)[seen], **tol)
  np.testing.assert_allclose(np.asarray(out)[seen], np.asarray(ref_out)[seen], **tol)
  assert (np.asarray(m)[~seen] == MASKED).all()
  empty = np.asarray(LENGTHS) == 0
  assert (np.asarray(l)[empty] == 0).all() and (np.asarray(out)[empty] == 0).all()


def test_attend_cached_pallas_equals_xla(groups=2, dtype=jnp.float32):
  """The merged decode step (cache + the new token itself), including rows with an empty cache."""
  q, new_k, new_v, clean_k, clean_v, nan_k, nan_v, visible = _case(groups, dtype, seed=1)
  self_mask = jnp.asarray([[[True]], [[True]], [[False]], [[True]], [[True]], [[True]]])  # Row 2: a padding token.
  args = dict(scale=0.25, softcap=0.0)
  got = decode_attention.attend_cached_pallas(q, new_k, new_v, self_mask, nan_k, nan_v, visible[:, None], **args)
  want = attend_cached(q, new_k, new_v, self_mask, clean_k, clean_v, visible[:, None], **args)
  assert got.dtype == want.dtype
  real = np.asarray(self_mask[:, 0, 0] | visible.any(1))  # A row seeing nothing at all has no defined output.
  np.testing.assert_allclose(np.asarray(got)[real], np.asarray(want)[real], rtol=1e-5, atol=1e-5)


def test_attend_cascade_pallas_equals_xla():
  """Shared prefix (2 problems x 3 rows) + each row's suffix by the kernel + the new token."""
  q, new_k, new_v, clean_k, clean_v, nan_k, nan_v, visible = _case(2, jnp.float32, seed=2)
  rng = np.random.RandomState(3)
  prefix_k, prefix_v = (jnp.asarray(rng.randn(2, 2, 8, 16), jnp.float32) for _ in range(2))
  prefix_mask = jnp.asarray(rng.rand(2, 3, 1, 8) < 0.8)
  self_mask = jnp.ones((6, 1, 1), bool)
  args = dict(scale=0.25, softcap=0.0)
  got = decode_attention.attend_cascade_pallas(q, new_k, new_v, self_mask, nan_k, nan_v, visible[:, None], prefix_k,
                                               prefix_v, prefix_mask, **args)
  want = attend_cascade(q, new_k, new_v, self_mask, clean_k, clean_v, visible[:, None], prefix_k, prefix_v,
                        prefix_mask, **args)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_visible_lengths_and_config():
  visible = jnp.asarray([[True, False, True, False], [False] * 4, [False, True, False, False]])
  np.testing.assert_array_equal(decode_attention.visible_lengths(visible), [3, 0, 2])
  assert decode_attention.choose_impl("auto") == "xla"  # CPU: the kernel would run interpreted.
  assert decode_attention.choose_impl("pallas") == "pallas"
  with pytest.raises(ValueError, match="decode_attention_impl='triton' must be one of"):
    ModelConfig(decode_attention_impl="triton")


PAD, EOS, NL = 0, 1, 2
PROMPTS = [[5, 9, 11, 7], [3, 4], [8, 12, 13, 14, 15, 16, 17]]


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_greedy_sample_pallas_equals_xla(shared_prefix):
  """A whole decode through `sample()`: identical greedy tokens (GQA, sliding window, soft-capping)."""
  cfg = tiny_model_config(n_layers=1, sliding_window=5, attn_softcap=5.0)
  xla, pallas = (Transformer(dataclasses.replace(cfg, decode_attention_impl=impl)) for impl in ("xla", "pallas"))
  params = nn.unbox(jax.jit(xla.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(8,))
  scfg = SamplingConfig(temperature=0.0, max_new_tokens=6)
  rule = StopRule.from_ids(cfg.vocab_size, [EOS], NL)
  run = lambda model: sampler.jit_sample(model, 2, scfg, rule, PAD, shared_prefix=shared_prefix)(
      params, tokens, valid, jax.random.key(1))
  a, b = run(pallas), run(xla)
  np.testing.assert_array_equal(a.tokens_BxN, b.tokens_BxN)
  np.testing.assert_array_equal(a.lengths_B, b.lengths_B)
  assert (np.asarray(a.lengths_B) > 1).any()  # The decode loop ran (not only the prefill's token).


def test_auto_picks_pallas_on_gpu_unless_sharding_is_unknown(monkeypatch):
  """auto: the kernel on one GPU or under an active mesh (shard_map), xla on many devices without one."""
  monkeypatch.setattr(decode_attention.jax, "default_backend", lambda: "gpu")
  assert jax.device_count() == 8
  assert decode_attention.choose_impl("auto") == "xla"
  with parallel.activate(parallel.make_mesh(parallel.MeshConfig(data=8))):
    assert decode_attention.choose_impl("auto") == "pallas"
  monkeypatch.setattr(decode_attention.jax, "device_count", lambda: 1)
  assert decode_attention.choose_impl("auto") == "pallas"
