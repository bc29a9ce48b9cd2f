"""Revision chains reading one stored copy of their question: the sampler entry, the chains, the fallback."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttc_jax.decode import SamplingConfig, sampler
from ttc_jax.decode.generate import Generation, encode_prompt
from ttc_jax.decode.prompts import left_pad
from ttc_jax.models import Transformer
from ttc_jax.revise import chains
from ttc_jax.revise.format import question_header, revision_prompt
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import StopRule

PAD, EOS, NL = 0, 1, 2
QUESTIONS = ["Start with 2. Add 3. What is the result?", "Start with 7. Subtract 1. What is the result?"]


def test_sample_after_prefix_equals_sample_on_whole_prompts():
  """Greedy, float32, sliding window (prefix slots masked by token distance): prefixes of different
  lengths (left padding), suffixes of different lengths, an empty suffix (the row samples after its
  prefix), an empty prefix and a problem with neither (a padding row: it samples nothing)."""
  model = Transformer(tiny_model_config(sliding_window=5))
  params = nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  prefixes = [[5, 9, 11, 7], [3, 4, 20, 21, 22, 23, 24, 25, 26], [], []]
  suffixes = [[[30], [31, 32, 33]], [[36, 37, 38, 39], []], [[41, 42], [43]], [[], []]]
  cfg = SamplingConfig(temperature=0.0, max_new_tokens=8)
  rule = StopRule.from_ids(model.cfg.vocab_size, [EOS], NL)
  prefix = left_pad(prefixes, PAD, buckets=(16,))
  suffix = left_pad([s for rows in suffixes for s in rows], PAD, buckets=(8,))
  shared = sampler.jit_sample_after_prefix(model, cfg, rule, PAD)(params, *prefix, *suffix, jax.random.key(1))
  whole = left_pad([p + s for p, rows in zip(prefixes, suffixes) for s in rows], PAD, buckets=(16,))
  reference = sampler.jit_sample(model, 1, cfg, rule, PAD)(params, *whole, jax.random.key(1))
  np.testing.assert_array_equal(shared.tokens_BxN, reference.tokens_BxN)
  np.testing.assert_array_equal(shared.lengths_B, reference.lengths_B)
  np.testing.assert_array_equal(shared.stop_reason_B, reference.stop_reason_B)
  assert np.all(np.asarray(shared.lengths_B)[:6] > 0) and np.all(np.asarray(shared.lengths_B)[6:] == 0)


def test_greedy_chains_equal_unshared(monkeypatch):
  """Two steps, 3 chains: step 0 is 3 samples of one prompt, step 1 stores the question once."""
  tokenizer = load_tokenizer()
  model = Transformer(tiny_model_config(vocab_size=tokenizer.vocab_size))
  params = nn.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  cfg = SamplingConfig(temperature=0.0, max_new_tokens=6)
  calls = []
  real = chains.generate_after_prefix

  def spy(*args, **kwargs):
    calls.append(args[3])  # The prefixes.
    return real(*args, **kwargs)

  monkeypatch.setattr(chains, "generate_after_prefix", spy)
  run = lambda shared: chains.run_chains(model, params, tokenizer, QUESTIONS, jax.random.key(1), parallel=3,
                                         revisions=2, cfg=cfg, batch_size=6, shared_prefix=shared)
  shared = run(True)
  assert calls == [[encode_prompt(tokenizer, question_header(q)) for q in QUESTIONS]]  # Step 1 only.
  assert shared == run(False)
  assert all(len(chain) == 2 and all(chain) for rec in shared for chain in rec["chains"])


class _MarksTextStarts:
  """The shipped tokenizer, except that text encoded on its own starts with an extra id (as a
  SentencePiece dummy prefix does): a prompt's rest encodes apart otherwise than inside the prompt."""

  def __init__(self, inner):
    self.inner = inner

  def __getattr__(self, name):
    return getattr(self.inner, name)

  def encode(self, text):
    return [NL] + self.inner.encode(text)

  def prompt_ids(self, text):
    return self.inner.prompt_ids(text)


def _record_calls(monkeypatch):
  """Fake samplers that record how run_chains calls them; chain c's first attempt names c."""
  calls = []

  def fake_generate(model, params, tokenizer, prompts, rng, *, num_samples, cfg, batch_size):
    calls.append(("whole", list(prompts), num_samples, batch_size))
    return [[Generation(text=f"chain {j}\nThe answer is {j}.", num_tokens=3, stop_reason=1)
             for j in range(num_samples)] for _ in prompts]

  def fake_after_prefix(model, params, tokenizer, prefixes, suffixes, rng, *, cfg, batch_size):
    calls.append(("after_prefix", prefixes, suffixes, batch_size))
    return [[Generation(text="again\nThe answer is 1.", num_tokens=3, stop_reason=1) for _ in rows]
            for rows in suffixes]

  monkeypatch.setattr(chains, "generate", fake_generate)
  monkeypatch.setattr(chains, "generate_after_prefix", fake_after_prefix)
  return calls


def test_question_stored_once_only_when_it_encodes_apart_as_inside_the_prompt(monkeypatch):
  shipped = load_tokenizer()
  run = lambda tokenizer: chains.run_chains(None, None, tokenizer, QUESTIONS, jax.random.key(0), parallel=3,
                                            revisions=2, cfg=SamplingConfig(max_new_tokens=8), batch_size=6,
                                            shared_prefix=True)
  first_prompts = [revision_prompt(q, []) for q in QUESTIONS]
  calls = _record_calls(monkeypatch)
  out = run(shipped)
  assert calls[0] == ("whole", first_prompts, 3, 2)  # Step 0: 3 samples of each question's one prompt.
  kind, prefixes, suffixes, per_call = calls[1]
  assert kind == "after_prefix" and per_call == 2 and len(calls) == 2
  for q, question in enumerate(QUESTIONS):
    for c in range(3):  # The parts encode each chain's own context exactly.
      context = revision_prompt(question, [f"chain {c}\nThe answer is {c}."])
      assert prefixes[q] + suffixes[q][c] == encode_prompt(shipped, context)
  assert [rec["chains"][2] for rec in out] == [["chain 2\nThe answer is 2.", "again\nThe answer is 1."]] * 2

  calls = _record_calls(monkeypatch)
  marked = run(_MarksTextStarts(shipped))
  assert calls[0] == ("whole", first_prompts, 3, 2)
  step1 = [revision_prompt(q, [f"chain {c}\nThe answer is {c}."]) for q in QUESTIONS for c in range(3)]
  assert calls[1] == ("whole", step1, 1, 6) and len(calls) == 2  # Fell back: each prompt encoded whole.
  assert [rec["prompt_tokens"] for rec in marked] == [rec["prompt_tokens"] for rec in out]
