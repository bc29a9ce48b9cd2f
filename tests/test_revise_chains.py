"""Revision chains: one generate call per step, contexts of the last <= 4 attempts, budget accounting."""
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from ttc_jax.decode.generate import Generation, encode_prompt
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.models import Transformer
from ttc_jax.revise import chains
from ttc_jax.revise.format import revision_prompt
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import tiny_model_config

QUESTIONS = ["Start with 2. Add 3. What is the result?", "Start with 7. Subtract 1. What is the result?",
             "Start with 4. Multiply by 2. What is the result?"]


def _headers(prompt):
  """Number of previous-attempt headers in a prompt."""
  return len(re.findall(r"^Solution \d+:$", prompt, re.M))


def test_contexts_hold_the_last_four_attempts_of_their_own_chain(monkeypatch):
  calls = []

  def fake_generate(model, params, tokenizer, prompts, rng, *, num_samples, cfg, batch_size):
    step = len(calls)
    calls.append(list(prompts))
    assert num_samples == 1
    return [[Generation(text=f"row {r} step {step}\nThe answer is {step}.", num_tokens=step + 1, stop_reason=1)]
            for r in range(len(prompts))]

  monkeypatch.setattr(chains, "generate", fake_generate)
  tokenizer = load_tokenizer()
  out = chains.run_chains(None, None, tokenizer, QUESTIONS, jax.random.key(0), parallel=2, revisions=6,
                          cfg=SamplingConfig(max_new_tokens=8), batch_size=4)
  assert len(calls) == 6 and all(len(c) == 6 for c in calls)  # one batched call per step over questions x chains
  for step, prompts in enumerate(calls):
    for r, prompt in enumerate(prompts):
      previous = [f"row {r} step {s}\nThe answer is {s}." for s in range(step)]
      assert prompt == revision_prompt(QUESTIONS[r // 2], previous)
      assert _headers(prompt) == min(step, 4)
  for q, rec in enumerate(out):
    assert rec["chains"] == [[f"row {2 * q + c} step {s}\nThe answer is {s}." for s in range(6)] for c in range(2)]
    assert rec["generations"] == 12 and rec["num_tokens"] == [[1, 2, 3, 4, 5, 6]] * 2
    assert rec["tokens_sampled"] == 2 * 21
    assert rec["prompt_tokens"] == sum(len(encode_prompt(tokenizer, calls[s][2 * q + c])) for s in range(6)
                                       for c in range(2))


def test_tiny_model_shapes_budget_and_determinism():
  tokenizer = load_tokenizer()
  cfg = tiny_model_config(vocab_size=tokenizer.vocab_size)
  model = Transformer(cfg)
  params = nn.unbox(model.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  sampling = SamplingConfig(max_new_tokens=6)
  run = lambda seed: chains.run_chains(model, params, tokenizer, QUESTIONS, jax.random.key(seed), parallel=2,
                                       revisions=3, cfg=sampling, batch_size=4)
  out = run(1)
  assert len(out) == 3
  for rec in out:
    assert len(rec["chains"]) == 2 and all(len(chain) == 3 for chain in rec["chains"])
    assert rec["generations"] == chains.chain_budget(2, 3) == 6
    assert all(1 <= n <= 6 for row in rec["num_tokens"] for n in row)
    assert rec["tokens_sampled"] == sum(map(sum, rec["num_tokens"]))
    assert rec["prompt_tokens"] >= 6 * len(encode_prompt(tokenizer, revision_prompt(QUESTIONS[0], [])))
  assert run(1) == out
  assert run(2) != out
  with pytest.raises(ValueError, match="positive"):
    chains.run_chains(model, params, tokenizer, QUESTIONS, jax.random.key(0), parallel=0, revisions=1, cfg=sampling,
                      batch_size=4)
