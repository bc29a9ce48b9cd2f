"""Sampler: cached decoding equals the no-cache reference; per-row stopping with forced sequences."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import decode
from ttc_jax.decode.generate import encode_prompt, generate
from ttc_jax.decode.sampling import top_p_filter
from ttc_jax.models import ModelConfig, ModelOutput, Transformer
from ttc_jax.models.transformer import read_positions
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.reference import naive_sample
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import LINE_STEPS, StopRule

PAD, EOS, NEWLINE = 0, 1, 10
# Left-padded prompts of different lengths (bucket 8).
PROMPTS = [[5, 9, 11, 7], [3, 4], [8, 12, 13, 14, 15, 16, 17]]


def _init(cfg):
  model = Transformer(cfg)
  return model, nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32)))


@pytest.fixture(scope="module")
def tiny():
  """A random GQA model (4 query heads sharing 2 kv heads)."""
  cfg = tiny_model_config()
  assert cfg.n_kv_heads < cfg.n_heads
  return _init(cfg)


class _FixedWidth:
  """`model.apply` jitted at one shape, for the reference.

  Per token the reference reruns the whole sequence; eagerly that is far too
  slow, and jitted per length it compiles once per token. Left-padding every
  call to `width` with invalid tokens keeps one shape (padding is invisible:
  test_model.py checks it, and the sampler relies on it too).
  """

  def __init__(self, model, width=32):
    self._apply = jax.jit(model.apply)
    self.width = width

  def apply(self, params, tokens_BxT, positions_BxT, valid_BxT):
    pad = ((0, 0), (self.width - tokens_BxT.shape[1], 0))
    return self._apply(params, jnp.pad(tokens_BxT, pad), jnp.pad(positions_BxT, pad), jnp.pad(valid_BxT, pad))


_FIXED = {}


def _rule(model, eos_id=EOS, newline_id=NEWLINE):
  return StopRule.from_ids(model.cfg.vocab_size, [eos_id], newline_id)


def _sample(model, params, prompts, rng, *, num_samples, cfg, eos_id=EOS, newline_id=NEWLINE):
  tokens, valid = decode.left_pad(prompts, PAD, buckets=(8, 16))
  fn = decode.jit_sample(model, num_samples, cfg, _rule(model, eos_id, newline_id), PAD)
  return jax.device_get(fn(params, tokens, valid, rng))


def _reference(model, params, prompts, rng, *, num_samples, cfg, eos_id=EOS, newline_id=NEWLINE):
  tokens, valid = decode.left_pad(prompts, PAD, buckets=(8, 16))
  fixed = _FIXED.setdefault(model, _FixedWidth(model))  # Shared: one compile per batch size.
  return naive_sample(fixed, params, tokens, valid, rng, num_samples=num_samples, cfg=cfg,
                      stop=_rule(model, eos_id, newline_id), pad_id=PAD)


def _expected_lengths(tokens_BxN, eos_id, newline_id, stop_at_newline):
  """Tokens up to and including the first stop token (or all of them)."""
  lengths = []
  for row in tokens_BxN:
    stops = (row == eos_id) | ((row == newline_id) & stop_at_newline)
    lengths.append(int(np.argmax(stops)) + 1 if stops.any() else len(row))
  return np.array(lengths)


# ------------------------------------------------------------------ cached sampler == naive reference


def test_greedy_matches_reference(tiny):
  model, params = tiny
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=8)
  out = _sample(model, params, PROMPTS, jax.random.key(1), num_samples=2, cfg=cfg)
  ref = _reference(model, params, PROMPTS, jax.random.key(1), num_samples=2, cfg=cfg)
  assert out.tokens_BxN.shape == (len(PROMPTS) * 2, 8)
  np.testing.assert_array_equal(out.tokens_BxN, ref)
  np.testing.assert_array_equal(out.lengths_B, _expected_lengths(ref, EOS, NEWLINE, False))


def test_greedy_matches_reference_with_stops(tiny):
  """Stop ids chosen among tokens the model actually emits, so rows stop early at different steps."""
  model, params = tiny
  free = decode.SamplingConfig(temperature=0.0, max_new_tokens=8)
  # -1 never matches: an unstopped run to pick stop ids from (rows 0, 1 are prompt 0; 2, 3 prompt 1).
  unstopped = _reference(model, params, PROMPTS, jax.random.key(1), num_samples=2, cfg=free, eos_id=-1,
                         newline_id=-1)
  eos_id = int(unstopped[0, 2])
  newline_id = next(int(t) for t in unstopped[2] if t != eos_id)
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=8, stop_at_newline=True)
  out = _sample(model, params, PROMPTS, jax.random.key(1), num_samples=2, cfg=cfg, eos_id=eos_id,
                newline_id=newline_id)
  ref = _reference(model, params, PROMPTS, jax.random.key(1), num_samples=2, cfg=cfg, eos_id=eos_id,
                   newline_id=newline_id)
  np.testing.assert_array_equal(out.tokens_BxN, ref)
  lengths = _expected_lengths(ref, eos_id, newline_id, True)
  np.testing.assert_array_equal(out.lengths_B, lengths)
  assert lengths[0] <= 3 and lengths[2] < 8  # The stops did fire.
  for row, n in zip(out.tokens_BxN, lengths):
    assert (row[n:] == PAD).all()


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.8)])
def test_sampled_tokens_match_reference(tiny, temperature, top_p):
  model, params = tiny
  cfg = decode.SamplingConfig(temperature=temperature, top_p=top_p, max_new_tokens=6)
  out = _sample(model, params, PROMPTS, jax.random.key(7), num_samples=2, cfg=cfg)
  ref = _reference(model, params, PROMPTS, jax.random.key(7), num_samples=2, cfg=cfg)
  np.testing.assert_array_equal(out.tokens_BxN, ref)
  # The two samples of a prompt differ: each row draws its own noise.
  rows = out.tokens_BxN.reshape(len(PROMPTS), 2, -1)
  assert any((r[0] != r[1]).any() for r in rows)


def test_num_samples_share_one_prefill(tiny):
  """n samples of B prompts == 1 sample of each prompt repeated n times (rows b*n .. b*n+n-1)."""
  model, params = tiny
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=6)
  n = 3
  shared = _sample(model, params, PROMPTS, jax.random.key(3), num_samples=n, cfg=cfg)
  repeated = _sample(model, params, [p for p in PROMPTS for _ in range(n)], jax.random.key(3), num_samples=1,
                     cfg=cfg)
  assert shared.tokens_BxN.shape == (len(PROMPTS) * n, cfg.max_new_tokens)
  np.testing.assert_array_equal(shared.tokens_BxN, repeated.tokens_BxN)
  np.testing.assert_array_equal(shared.lengths_B, repeated.lengths_B)
  np.testing.assert_array_equal(shared.stop_reason_B, repeated.stop_reason_B)


# ------------------------------------------------------------------ forced sequences


@dataclasses.dataclass(frozen=True)
class ScriptedModel:
  """Stands in for `Transformer`: the j-th new token of row r is script[r % R][j] (the last one repeats).

  j is read off the cache: `sample` sizes it prompt + max_new_tokens, so
  after a call the number of new tokens fed so far is
  index - (max_len - max_new_tokens). Hashable, so `jit_sample` can cache it.
  """
  cfg: ModelConfig
  script: tuple[tuple[int, ...], ...]
  max_new_tokens: int

  def apply(self, params, tokens_BxT, positions_BxT, valid_BxT, cache, read_BxK=None):
    del params, positions_BxT, valid_BxT
    b, t = tokens_BxT.shape
    index_B = cache.index_B + t
    j_B = index_B - (cache.max_len - self.max_new_tokens)
    script = jnp.asarray(self.script, jnp.int32)
    token_B = script[jnp.arange(b) % script.shape[0], jnp.minimum(j_B, script.shape[1] - 1)]
    logits_BxV = jnp.where(jnp.arange(self.cfg.vocab_size)[None] == token_B[:, None], 0.0, -1e9)
    logits_BxTxV = jnp.broadcast_to(logits_BxV[:, None], (b, t, self.cfg.vocab_size))
    return ModelOutput(logits_BxTxV=read_positions(logits_BxTxV, read_BxK), values_BxT=None,
                       cache=cache.replace(index_B=index_B))


A, B, C = 20, 21, 22
N_NEW = 8
SCRIPT = (
    (A, B, NEWLINE, C, EOS, A, A, A),  # newline at 2 (EOS later)
    (A, EOS, B, B, B, B, B, B),  # EOS at 1
    (A, B, C, A, B, C, A, B),  # no stop: runs to the length limit
    (NEWLINE, A, B, C, EOS, C, C, C),  # newline first, EOS at 4
    (A, B, C, A, B, C, A, EOS),  # EOS exactly at the last step
)


def _scripted(script=SCRIPT, max_new_tokens=N_NEW, vocab_size=48):
  cfg = tiny_model_config(vocab_size=vocab_size, n_layers=1, d_model=8, n_heads=2, n_kv_heads=1, d_ff=8)
  return ScriptedModel(cfg, script, max_new_tokens)


@pytest.mark.parametrize("stop_at_newline", [True, False])
def test_rows_stop_independently(stop_at_newline):
  model = _scripted()
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=N_NEW, stop_at_newline=stop_at_newline)
  prompts = [[5, 6], [5, 6, 7], [4], [5, 6, 7, 8, 9], [3, 3]]
  tokens, valid = decode.left_pad(prompts, PAD, buckets=(8,))
  out = decode.sample(model, {}, tokens, valid, jax.random.key(0), num_samples=1, cfg=cfg, stop=_rule(model),
                      pad_id=PAD)
  if stop_at_newline:
    lengths = [3, 2, N_NEW, 1, N_NEW]
    reasons = [decode.STOP_NEWLINE, decode.STOP_EOS, decode.STOP_LENGTH, decode.STOP_NEWLINE, decode.STOP_EOS]
  else:  # Newlines are ordinary tokens: rows run on to EOS.
    lengths = [5, 2, N_NEW, 5, N_NEW]
    reasons = [decode.STOP_EOS, decode.STOP_EOS, decode.STOP_LENGTH, decode.STOP_EOS, decode.STOP_EOS]
  np.testing.assert_array_equal(out.lengths_B, lengths)
  np.testing.assert_array_equal(out.stop_reason_B, reasons)
  for row, script, n in zip(np.asarray(out.tokens_BxN), SCRIPT, lengths):
    np.testing.assert_array_equal(row[:n], script[:n])  # The stop token is kept ...
    assert (row[n:] == PAD).all()  # ... and everything after it is pad.


def test_loop_ends_when_all_rows_stop():
  """With every row stopped after 3 tokens, only 3 decode steps run (the cache index says so)."""
  script = ((A, NEWLINE, C, C), (A, B, EOS, C))
  model = _scripted(script, max_new_tokens=10)
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=10, stop_at_newline=True)
  tokens, valid = decode.left_pad([[5, 6], [7]], PAD, buckets=(4,))
  logits, pos, cache = decode.prefill(model, {}, tokens, valid, tokens.shape[1] + 10)
  out = decode.decode(model, {}, logits, pos, cache, jax.random.key(0), cfg=cfg, stop=_rule(model),
                      pad_id=PAD, return_cache=True)
  np.testing.assert_array_equal(out.lengths_B, [2, 3])
  assert int(out.cache.index) == tokens.shape[1] + 3
  np.testing.assert_array_equal(out.tokens_BxN[:, 3:], PAD)


# ------------------------------------------------------------------ top-p


def test_top_p_keeps_smallest_set_reaching_p():
  probs = np.array([0.05, 0.5, 0.15, 0.3])  # Sorted order: index 1, 3, 2, 0.
  logits = jnp.asarray(np.log(probs)[None], jnp.float32)
  kept = lambda p: set(np.flatnonzero(np.isfinite(np.asarray(top_p_filter(logits, p))[0])).tolist())
  assert kept(0.01) == {1}  # The top token always stays.
  assert kept(0.5) == {1}  # 0.5 alone reaches 0.5.
  assert kept(0.6) == {1, 3}
  assert kept(0.81) == {1, 3, 2}
  assert kept(0.96) == {0, 1, 2, 3}
  assert kept(1.0) == {0, 1, 2, 3}
  filtered = np.asarray(top_p_filter(logits, 0.6))[0]
  np.testing.assert_allclose(filtered[[1, 3]], np.log(probs)[[1, 3]], rtol=1e-6)  # Kept logits are unchanged.


def test_top_p_is_per_row():
  logits = jnp.asarray([[5.0, 0.0, 0.0, 0.0], [0.0, 1.0, 3.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
  finite = np.isfinite(np.asarray(top_p_filter(logits, 0.7)))
  np.testing.assert_array_equal(finite[0], [True, False, False, False])  # Peaked: the top token has 0.98.
  np.testing.assert_array_equal(finite[1], [False, False, True, True])  # Probabilities .64, .24, ...
  np.testing.assert_array_equal(finite[2], [True, True, True, True])  # Ties with the threshold all stay.


def test_top_p_sampling_stays_in_nucleus():
  logits = jnp.log(jnp.asarray([[0.05, 0.5, 0.15, 0.3]]))
  cfg = decode.SamplingConfig(temperature=1.0, top_p=0.6)
  draws = jax.vmap(lambda k: decode.choose_tokens(logits, k, cfg)[0])(jax.random.split(jax.random.key(0), 400))
  assert set(np.asarray(draws).tolist()) == {1, 3}


# ------------------------------------------------------------------ padding helpers


def test_bucket_length():
  assert decode.bucket_length(1, (4, 8, 16)) == 4
  assert decode.bucket_length(4, (4, 8, 16)) == 4
  assert decode.bucket_length(5, (4, 8, 16)) == 8
  assert decode.bucket_length(16, (4, 8, 16)) == 16
  with pytest.raises(ValueError, match="17 tokens is longer than the largest bucket 16"):
    decode.bucket_length(17, (4, 8, 16))


def test_left_pad_rows_and_batch_padding():
  tokens, valid = decode.left_pad([[1, 2, 3], [4], []], pad_id=0, buckets=(2, 4, 8), batch_size=5)
  np.testing.assert_array_equal(tokens, [[0, 1, 2, 3], [0, 0, 0, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(valid, tokens != 0)
  assert tokens.dtype == np.int32 and valid.dtype == bool
  tokens, _ = decode.left_pad([[7, 7]], pad_id=9, buckets=(2, 4))
  np.testing.assert_array_equal(tokens, [[7, 7]])  # Exact fit, no batch padding without batch_size.


def test_left_pad_errors():
  with pytest.raises(ValueError, match="longer than the largest bucket"):
    decode.left_pad([[1] * 9], pad_id=0, buckets=(4, 8))
  with pytest.raises(ValueError, match="3 prompts do not fit batch_size=2"):
    decode.left_pad([[1], [2], [3]], pad_id=0, buckets=(4,), batch_size=2)


# ------------------------------------------------------------------ text in, text out


@pytest.fixture(scope="module")
def tokenizer():
  return load_tokenizer()


def test_generate_decodes_scripted_text(tokenizer):
  """Exact texts: stop token kept in text (newline) or dropped by decoding (EOS), counted either way."""
  step = tokenizer.encode("3 + 4 = 7\n")
  assert step[-1] == tokenizer.newline_id
  answer = tokenizer.encode("12")
  n_new = 12
  script = (tuple(step) + (PAD,) * (n_new - len(step)), tuple(answer) + (tokenizer.eos_id,) * (n_new - len(answer)))
  model = _scripted(script, max_new_tokens=n_new, vocab_size=tokenizer.vocab_size)
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=n_new, stop_at_newline=True)
  out = generate(model, {}, tokenizer, ["a", "bb", "ccc"], jax.random.key(0), num_samples=1, cfg=cfg, batch_size=2)
  assert len(out) == 3 and all(len(g) == 1 for g in out)
  # Row i of every chunk follows script[i]: prompts 0 and 2 are row 0 of their chunk.
  for g in (out[0][0], out[2][0]):
    assert (g.text, g.num_tokens, g.stop_reason) == ("3 + 4 = 7\n", len(step), decode.STOP_NEWLINE)
  assert (out[1][0].text, out[1][0].num_tokens, out[1][0].stop_reason) == ("12", len(answer) + 1, decode.STOP_EOS)


@pytest.fixture(scope="module")
def tiny_lm(tokenizer):
  return _init(tiny_model_config(vocab_size=tokenizer.vocab_size))


PROBLEMS = ["Question: Start with 4. Add 3. What is the result?\nSolution:\n", "Question: 1+1?\n",
            "Question: Start with 45. Subtract 17. Subtract 8. Add 19.\n", "Q\n", "Question: 9*9?\n"]


def test_generate_texts_and_chunking(tokenizer, tiny_lm):
  """Texts, counts and stop reasons are the sampler's rows, whatever the chunking (greedy).

  One test, so the compiled shapes are shared: batch_size 2 gives chunks of
  2 + 2 + 1 prompts in two length buckets, batch_size 8 one padded chunk.
  """
  model, params = tiny_lm
  cfg = decode.SamplingConfig(temperature=0.0, max_new_tokens=6)
  n = 2
  run = lambda bs: generate(model, params, tokenizer, PROBLEMS, jax.random.key(0), num_samples=n, cfg=cfg,
                            batch_size=bs)
  chunked, whole = run(2), run(8)
  assert len(chunked) == len(whole) == len(PROBLEMS)
  assert all(len(g) == n for g in chunked)
  assert chunked == whole
  # The same prompts straight through the sampler.
  tokens, valid = decode.left_pad([encode_prompt(tokenizer, p) for p in PROBLEMS], tokenizer.pad_id, batch_size=8)
  direct = jax.device_get(decode.jit_sample(model, n, cfg, LINE_STEPS.rule(tokenizer, model.cfg.vocab_size),
                                            tokenizer.pad_id)(
      params, tokens, valid, jax.random.key(0)))
  for i, gens in enumerate(chunked):
    for j, g in enumerate(gens):
      row = i * n + j
      assert g.num_tokens == direct.lengths_B[row] and g.stop_reason == direct.stop_reason_B[row]
      assert g.text == tokenizer.decode(direct.tokens_BxN[row, :g.num_tokens].tolist())
      assert 1 <= g.num_tokens <= cfg.max_new_tokens
      assert (g.stop_reason == decode.STOP_LENGTH) == (g.num_tokens == cfg.max_new_tokens)
