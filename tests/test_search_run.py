"""End to end: tiny random Transformer policy + tiny PRM on the real tokenizer, through `run_search`.

The random policy gets a logit bias towards newline and EOS so steps end
within a few tokens and solutions within a few rounds (it is still a real
Transformer with a real KV cache; only its output layer is nudged).
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.decode.prompts import left_pad
from ttc_jax.models import Transformer
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.loop import jit_search
from ttc_jax.search.run import encode_prompts, run_search
from ttc_jax.testing.scripted import LogitBias
from ttc_jax.tasks.grading import ExactAnswerGrader
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import LINE_STEPS

PROMPTS = ["Question: Start with 4. Add 3. What is the result?\nSolution:\n", "Question: 1+1?\nSolution:\n",
           "Question: Start with 45. Subtract 17.\nSolution:\n"]
SIZES = dict(budget=4, max_rounds=4, max_step_tokens=6, max_solution_tokens=24)
CONFIGS = {
    "best_of_n": SearchConfig(method="best_of_n", **SIZES),
    "beam": SearchConfig(method="beam", beam_width=2, **SIZES),
    "lookahead": SearchConfig(method="lookahead", beam_width=2, lookahead=1, **SIZES),
    "dvts": SearchConfig(method="dvts", beam_width=2, **SIZES),
}


@pytest.fixture(scope="module")
def setup():
  tok = load_tokenizer()
  policy = Transformer(tiny_model_config(vocab_size=tok.vocab_size))
  prm = Transformer(tiny_model_config(vocab_size=tok.vocab_size, lm_head=False, scalar_head=True))
  init = lambda m, seed: nn.unbox(jax.jit(m.init)(jax.random.key(seed), jnp.zeros((1, 8), jnp.int32)))
  biased = LogitBias(policy, ((tok.newline_id, 4.0), (tok.eos_id, 2.0)))
  return tok, biased, init(policy, 0), prm, init(prm, 1)


def _search(setup, cfg, rng=0, prompts=PROMPTS, **kwargs):
  tok, policy, policy_params, prm, prm_params = setup
  return run_search(policy, policy_params, prm, prm_params, tok, ExactAnswerGrader(), prompts, jax.random.key(rng),
                    cfg=cfg, batch_size=2, buckets=(32,), **kwargs)


def _prm_reference(setup, prompt, token_ids):
  """PRM probabilities at every step end of one candidate, from a full (cache-free) forward pass."""
  tok, _, _, prm, prm_params = setup
  seq, ends, step = [tok.bos_id] + tok.encode(prompt), [], []
  for t in token_ids:
    if t in (tok.newline_id, tok.eos_id):
      if step:  # Empty steps are not scored; EOS ends a step like a newline.
        seq += step + [tok.newline_id]
        ends.append(len(seq) - 1)
      step = []
    else:
      step.append(t)
  if step:  # A truncated last step is scored at its last token.
    seq += step
    ends.append(len(seq) - 1)
  padded = np.full((1, 64), tok.pad_id, np.int32)  # Causal: right padding changes no earlier value; one compile.
  padded[0, :len(seq)] = seq
  values = _jit_apply(prm)(prm_params, padded).values_BxT[0]
  return np.asarray(jax.nn.sigmoid(values))[ends]


@functools.lru_cache(maxsize=None)
def _jit_apply(model):
  return jax.jit(model.apply)


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_each_method_returns_well_formed_records(setup, method):
  cfg = CONFIGS[method]
  tok = setup[0]
  records = _search(setup, cfg, references=["7", "2", "28"])
  assert [r["prompt"] for r in records] == PROMPTS  # Two batches, the second padded.
  for r in records:
    assert r["method"] == method and len(r["candidates"]) == cfg.budget
    assert 1 <= r["rounds"] <= cfg.max_rounds and len(r["parents"]) == r["rounds"]
    b = r["budget"]
    assert b["generations"] == cfg.generations
    assert b["prompt_tokens"] == len(tok.encode(r["prompt"])) + 1
    assert b["policy_tokens"] >= max(c["num_tokens"] for c in r["candidates"]) and b["prm_tokens"] > 0
    assert (b["rollout_tokens"] > 0) == (method == "lookahead")
    assert b["flops"] == pytest.approx(b["policy_flops"] + b["prm_flops"]) and b["prm_flops"] > 0
    assert r["correct"] in (True, False)
    for c in r["candidates"]:
      assert isinstance(c["text"], str) and 0 <= c["score"] <= 1 and c["num_tokens"] <= cfg.max_solution_tokens
      assert len(c["step_scores"]) == len(c["steps"]) or not c["finished"]
      if c["step_scores"]:
        assert c["score"] == pytest.approx(c["step_scores"][-1])
      assert c["extracted"] is None or isinstance(c["extracted"], str)
    if method == "best_of_n":
      assert all(p == list(range(cfg.budget)) for p in r["parents"])
  # The loop really searched: some steps ended with a newline and went on to a further round.
  assert max(r["rounds"] for r in records) > 1


def test_incremental_prm_scores_equal_full_forward(setup):
  """Every step score of every final beam equals the PRM's full-sequence value at that step's end.

  Beam search reorders the PRM cache each round, so this also checks its gather.
  The sampled ids come from the device output: re-encoding the decoded text
  need not give the ids the policy sampled.
  """
  tok, policy, policy_params, prm, prm_params = setup
  cfg = CONFIGS["beam"]
  tokens, valid = left_pad(encode_prompts(tok, PROMPTS[:2]), tok.pad_id, (32,), batch_size=2)
  out = jax.device_get(jit_search(policy, prm, cfg, LINE_STEPS.rule(tok, policy.cfg.vocab_size), tok.pad_id)(
      policy_params, prm_params, tokens, valid, jax.random.fold_in(jax.random.key(0), 0)))
  records = _search(setup, cfg, prompts=PROMPTS[:2])  # Its batch 0 uses fold_in(key, 0) too.
  checked = 0
  for p in range(2):
    for j in range(cfg.budget):
      ids = out.tokens_PxNxT[p, j, :out.lengths_PxN[p, j]].tolist()
      got = out.step_scores_PxNxR[p, j]
      want = _prm_reference(setup, PROMPTS[p], ids)
      np.testing.assert_allclose(got[~np.isnan(got)], want, rtol=2e-4, atol=2e-5)
      checked += len(want)
      assert records[p]["candidates"][j]["score"] == pytest.approx(float(out.score_PxN[p, j]))
      assert records[p]["candidates"][j]["text"] == tok.decode(ids)
  assert checked > 2 * cfg.budget  # Some candidates have several steps.


def test_greedy_beam_with_n_equal_m_is_deterministic(setup):
  cfg = SearchConfig(method="beam", beam_width=4, temperature=0.0, **SIZES)
  a = _search(setup, cfg, rng=0, prompts=PROMPTS[:2])
  b = _search(setup, cfg, rng=1, prompts=PROMPTS[:2])
  assert a == b
  for r in a:  # One survivor, expanded greedily: every candidate is the same text.
    assert len({c["text"] for c in r["candidates"]}) == 1


def test_no_final_answer_is_a_wrong_answer_not_a_crash(setup):
  cfg = SearchConfig(method="beam", beam_width=2, budget=4, max_rounds=2, max_step_tokens=2, max_solution_tokens=4)
  records = _search(setup, cfg, prompts=PROMPTS[:1], references=["7"])
  assert records[0]["answer"] is None and records[0]["correct"] is False
  assert all(c["extracted"] is None for c in records[0]["candidates"])
