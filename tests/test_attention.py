"""Attention implementations: chunked (and cudnn on a GPU) compute what the plain XLA path does."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.models import Transformer
from ttc_jax.models import attention
from ttc_jax.testing.tiny import tiny_model_config

ON_GPU = jax.default_backend() == "gpu"


def _qkv(b=2, t=11, n=4, k=2, h=8):
  keys = jax.random.split(jax.random.key(0), 4)
  q = jax.random.normal(keys[0], (b, t, n, h))
  kk = jax.random.normal(keys[1], (b, t, k, h))
  v = jax.random.normal(keys[2], (b, t, k, h))
  d_out = jax.random.normal(keys[3], (b, t, n, h))
  return q, kk, v, d_out


def _run(impl, q, k, v, d_out, valid, window=0, softcap=0.0, chunk=4):
  """(output, grads of <output, d_out> w.r.t. q, k, v) for one implementation."""
  positions = jnp.broadcast_to(jnp.arange(q.shape[1]), q.shape[:2])

  def f(q, k, v):
    return attention.causal_self_attention(q, k, v, positions, valid, jnp.int32(window), impl=impl,
                                           scale=q.shape[-1] ** -0.5, softcap=softcap, sliding=window > 0,
                                           chunk=chunk)

  @jax.jit
  def out_and_grads(q, k, v, d_out):
    out, vjp = jax.vjp(f, q, k, v)
    return out, vjp(d_out)

  return out_and_grads(q, k, v, d_out)


# Left padding (rows 0 and 1 start late), GQA (4 query heads on 2 kv heads), a chunk that
# does not divide T (11 keys in blocks of 4), soft-capping and a sliding window.
@pytest.mark.parametrize("window,softcap", [(0, 0.0), (3, 0.0), (0, 5.0)])
def test_chunked_matches_xla_forward_and_gradients(window, softcap):
  q, k, v, d_out = _qkv()
  valid = jnp.arange(11)[None, :] >= jnp.asarray([[0], [3]])
  want = _run("xla", q, k, v, d_out, valid, window, softcap)
  got = _run("chunked", q, k, v, d_out, valid, window, softcap)
  chex.assert_trees_all_close(got, want, atol=1e-5, rtol=1e-5)


def test_chunked_without_padding_matches_xla():
  q, k, v, d_out = _qkv(b=1, t=8, n=2, k=1)
  chex.assert_trees_all_close(_run("chunked", q, k, v, d_out, None, chunk=8),
                              _run("xla", q, k, v, d_out, None), atol=1e-5, rtol=1e-5)


def test_auto_picks_a_cpu_path_on_cpu():
  pick = lambda t, backend: attention.choose_impl("auto", dtype=jnp.bfloat16, head_size=64, softcap=0.0,
                                                  sliding=False, seq_len=t, backend=backend)
  assert pick(128, "cpu") == "xla" and pick(4096, "cpu") == "chunked" and pick(4096, "tpu") == "chunked"
  assert pick(4096, "gpu") == "cudnn"
  assert attention.choose_impl("auto", dtype=jnp.bfloat16, head_size=64, softcap=0.0, sliding=False, seq_len=4096,
                               padded=True, backend="gpu") == "chunked"  # Padding: not as a dense cuDNN bias.
  assert attention.choose_impl("auto", dtype=jnp.float32, head_size=64, softcap=0.0, sliding=False,
                               seq_len=4096, backend="gpu") == "chunked"  # cuDNN takes no float32.
  if not ON_GPU:
    assert pick(4096, None) == "chunked"


def test_model_trains_the_same_with_every_cpu_impl():
  """Whole model (GQA, RoPE, padding through valid_BxT): logits and parameter gradients agree."""
  results = {}
  tokens = jax.random.randint(jax.random.key(1), (2, 12), 0, 64)
  valid = jnp.arange(12)[None, :] >= jnp.asarray([[0], [4]])
  params = nn.unbox(jax.jit(Transformer(tiny_model_config(n_kv_heads=1)).init)(jax.random.key(0), tokens))
  for impl in ("xla", "chunked"):  # attention_impl changes the computation, not the parameters.
    model = Transformer(tiny_model_config(n_kv_heads=1, attention_impl=impl))
    loss = lambda p: jnp.sum(jnp.where(valid[..., None], model.apply(p, tokens, valid_BxT=valid).logits_BxTxV, 0) ** 2)
    results[impl] = jax.jit(jax.value_and_grad(loss))(params)
  chex.assert_trees_all_close(results["chunked"], results["xla"], atol=1e-4, rtol=1e-5)


def test_cudnn_refused_where_it_cannot_run():
  with pytest.raises(ValueError, match="attention_impl='cudnn' cannot run compute dtype float32"):
    tiny_model_config(attention_impl="cudnn", dtype="float32")
  with pytest.raises(ValueError, match="soft-capping"):
    tiny_model_config(attention_impl="cudnn", dtype="bfloat16", attn_softcap=30.0)
  with pytest.raises(ValueError, match="model.attention_impl='flash' must be one of"):
    tiny_model_config(attention_impl="flash")


@pytest.mark.skipif(not ON_GPU, reason="cuDNN fused attention needs an NVIDIA GPU; CPU runs check xla vs chunked")
def test_cudnn_matches_xla_on_gpu():
  q, k, v, d_out = (x.astype(jnp.bfloat16) for x in _qkv(t=64, h=64))
  got = _run("cudnn", q, k, v, d_out, None)
  want = _run("xla", q, k, v, d_out, None)
  chex.assert_trees_all_close(jax.tree.map(lambda x: x.astype(jnp.float32), got),
                              jax.tree.map(lambda x: x.astype(jnp.float32), want), atol=3e-2, rtol=3e-2)
