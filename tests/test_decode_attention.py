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
from ttc_jax.models.attention import window_mask as attention_window
from ttc_jax.models.config import ModelConfig
from ttc_jax.models.prefix_attention import attend_cascade, prefix_mask
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


def _cascade_case(t, groups=2, head=16, seed=2, p=2, rows=3, prefix_slots=40):
  """T new tokens per row of P problems x `rows`: queries, a suffix cache with NaN past each length, a prefix."""
  rng = np.random.RandomState(seed)
  b, k_heads = p * rows, 2
  lengths = np.asarray([40, 0, 17, 33, 1, 16])[:b]
  q = jnp.asarray(rng.randn(b, t, k_heads * groups, head), jnp.float32)
  new_k, new_v = (jnp.asarray(rng.randn(b, t, k_heads, head), jnp.float32) for _ in range(2))
  clean_k, clean_v = (rng.randn(b, k_heads, S, head).astype(np.float32) for _ in range(2))
  filled = np.arange(S)[None] < lengths[:, None]
  visible = jnp.asarray(filled & (rng.rand(b, S) < 0.8))
  poison = lambda x: jnp.asarray(np.where(filled[:, None, :, None], x, np.nan), jnp.float32)
  prefix_k, prefix_v = (jnp.asarray(rng.randn(p, k_heads, prefix_slots, head), jnp.float32) for _ in range(2))
  prefix_valid = np.arange(prefix_slots)[None] >= np.asarray([3, 0])[:p, None]  # Problem 0 left-padded.
  prefix_valid &= rng.rand(p, prefix_slots) < 0.9
  prefix_pos = np.cumsum(prefix_valid, 1) - 1
  prefix_len = prefix_valid.sum(1)
  cache_pos = np.repeat(prefix_len, rows)[:, None] + np.arange(S)[None]
  positions = np.repeat(prefix_len, rows)[:, None] + lengths[:, None] + np.arange(t)[None]
  self_mask = jnp.asarray(np.tril(np.ones((t, t), bool))[None].repeat(b, 0))
  return dict(q=q, new_k=new_k, new_v=new_v, clean=(jnp.asarray(clean_k), jnp.asarray(clean_v)),
              nan=(poison(clean_k), poison(clean_v)), visible=visible, prefix_k=prefix_k, prefix_v=prefix_v,
              prefix_valid=jnp.asarray(prefix_valid), prefix_pos=jnp.asarray(prefix_pos, jnp.int32),
              cache_pos=jnp.asarray(cache_pos, jnp.int32), positions=jnp.asarray(positions, jnp.int32),
              self_mask=self_mask)


@pytest.mark.parametrize("t,window,block_m", [(1, 0, 64), (3, 0, 16), (3, 9, 16), (1, 30, 64)])
def test_attend_cascade_pallas_equals_xla(t, window, block_m):
  """Shared prefix (2 problems x 3 rows, one left-padded) + each row's suffix + the T new tokens, all by the kernel.

  block_m=16 splits the prefix's N x T x G = 18 queries into two blocks (the second padded);
  a window shorter than the context drops prefix and suffix slots per query position.
  """
  c = _cascade_case(t)
  args = dict(scale=0.25, softcap=0.0)
  w = jnp.int32(window)
  self_mask = c["self_mask"] & attention_window(c["positions"], c["positions"], w)
  got = decode_attention.attend_cascade_pallas(
      c["q"], c["new_k"], c["new_v"], self_mask, *c["nan"], c["visible"][:, None], c["prefix_k"], c["prefix_v"],
      c["prefix_valid"], window=decode_attention.Window(w, c["positions"]) if window else None,
      cache_pos_BxS=c["cache_pos"], prefix_pos_PxS=c["prefix_pos"], block_k=BLOCK, block_m=block_m, **args)
  cache_mask = c["visible"][:, None] & attention_window(c["positions"], c["cache_pos"], w)
  want = attend_cascade(c["q"], c["new_k"], c["new_v"], self_mask, *c["clean"], cache_mask, c["prefix_k"],
                        c["prefix_v"], prefix_mask(c["prefix_valid"], c["prefix_pos"], c["positions"], w), **args)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_attend_cached_pallas_many_tokens_equals_xla():
  """T = 3 new tokens per row read the cache through the kernel (a verifier's block, a PRM chunk)."""
  c = _cascade_case(3, groups=3, head=12)
  args = dict(scale=0.25, softcap=5.0)
  got = decode_attention.attend_cached_pallas(c["q"], c["new_k"], c["new_v"], c["self_mask"], *c["nan"],
                                              c["visible"][:, None], block_k=BLOCK, **args)
  want = attend_cached(c["q"], c["new_k"], c["new_v"], c["self_mask"], *c["clean"], c["visible"][:, None], **args)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="cache_mask must be"):
    decode_attention.attend_cached_pallas(c["q"], c["new_k"], c["new_v"], c["self_mask"], *c["nan"],
                                          jnp.broadcast_to(c["visible"][:, None], (6, 3, S)), **args)


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


def test_finished_row_reads_no_cache():
  """A row whose new token is padding (a finished sample) has its cache skipped by the kernel.

  Its cache is poisoned with NaN: read, it would turn the row's output NaN. The other rows
  are unchanged to the bit, and the padding row's output stays finite.
  """
  cfg = tiny_model_config(n_layers=1, decode_attention_impl="pallas")
  model = Transformer(cfg)
  params = nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  tokens, valid = left_pad(PROMPTS, PAD, buckets=(8,))
  _, pos_B, cache = sampler.prefill(model, params, tokens, valid, 12)
  poisoned = cache.replace(k_BxKxSxH=tuple(k.at[1].set(jnp.nan) for k in cache.k_BxKxSxH),
                           v_BxKxSxH=tuple(v.at[1].set(jnp.nan) for v in cache.v_BxKxSxH))
  step = jax.jit(lambda c, active: model.apply(params, jnp.full((3, 1), 5), pos_B[:, None], active, c).logits_BxTxV)
  active = jnp.asarray([[True], [False], [True]])
  clean, got = step(cache, active), step(poisoned, active)
  assert np.isfinite(np.asarray(got)).all()
  np.testing.assert_array_equal(np.asarray(got)[[0, 2]], np.asarray(clean)[[0, 2]])
  assert np.isnan(np.asarray(step(poisoned, jnp.ones((3, 1), bool)))[1]).all()  # Active, the row does read it.
