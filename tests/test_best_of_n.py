"""Best-of-N in one decode and one PRM pass (`search.best_of_n`) against the lockstep rounds (`search.loop`).

Greedy policies make both schedules sample the same tokens, so every field of the output must
agree: tokens, lengths, stop reasons, step scores, budget, rounds and the parents trace.
Scripted rows (`ForcedTokens`) cover steps of different lengths, a step truncated by
max_step_tokens, a solution ending by EOS, one hitting max_rounds, empty steps, and a padding
problem; a two-token delimiter checks that the step rule restarts at each step, as when every
step is its own decode call. A tiny random Transformer checks real attention and positions.
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.decode.prompts import left_pad
from ttc_jax.decode.sampler import STOP_EOS, STOP_LENGTH, STOP_NEWLINE
from ttc_jax.models import Transformer
from ttc_jax.search import best_of_n, loop
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.loop import jit_search
from ttc_jax.search.run import search_spec
from ttc_jax.testing.scripted import ForcedTokens, LogitBias, ScriptedPRM, scripted_config
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import StopRule

PAD, EOS, NL = 0, 1, 2
FIRST = 10  # ScriptedPRM scores content ids >= FIRST.
PROMPT = [5, 6, 7]
SCRIPTS = (
    (10, 11, NL, 12, NL, 13, 14, 15, EOS),  # Three steps, the last ends with EOS.
    (10, NL, 11, 12, 13, 14, 15, 16),  # Step 1 reaches max_step_tokens = 5 without an end: truncated.
    (10, NL, 11, NL, NL, 12, NL, 13, NL, 14, NL),  # An empty step (not scored); stops after max_rounds = 4.
    (10, NL, 11, NL, EOS),  # The last step is a bare EOS: not scored, the score stays step 1's.
    (EOS,),  # Nothing but EOS.
    (10, 11, 12, 13, 14, 15),  # The first step is truncated.
    (NL,),  # Empty steps only, until max_rounds.
    (10, 11, 12, 13, NL, 14, EOS),  # A step of exactly max_step_tokens that ends with the delimiter.
)
CFG = SearchConfig(method="best_of_n", budget=4, max_rounds=4, max_step_tokens=5, max_solution_tokens=20,
                   temperature=0.0)  # Room never binds: 4 rounds of at most 5 tokens.
ONE_TOKEN = StopRule.from_ids(64, [EOS], NL)
_v = np.zeros((1, 64), bool)
_nl = _v.copy()
_nl[0, NL] = True
TWO_TOKENS = StopRule(eos_V=ONE_TOKEN.eos_V, contains_V=_v[0], head_KxV=_nl, tail_KxV=_nl)  # "\n\n" as NL NL.


def _both(policy, prm, cfg, stop, policy_params, prm_params, prompts, pad_id=PAD):
  tokens, valid = left_pad(prompts, pad_id, buckets=(8,))
  run = lambda c: jax.device_get(jit_search(policy, prm, c, stop, pad_id)(policy_params, prm_params, tokens, valid,
                                                                          jax.random.key(0)))
  return run(cfg), run(dataclasses.replace(cfg, best_of_n_rounds=True))


def _assert_same(got, want):
  for name in ("tokens_PxNxT", "lengths_PxN", "finished_PxN", "stop_reason_PxN", "parents_PxRxN", "rounds",
               "verifier_overflow"):
    np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
  for name in ("score_PxN", "rank_score_PxN", "step_scores_PxNxR"):  # NaN where no step was scored, in both.
    np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-5, atol=1e-6, err_msg=name)
  for name, value in vars(got.budget).items():
    np.testing.assert_allclose(value, getattr(want.budget, name), rtol=1e-5, err_msg=name)


@pytest.fixture(params=[best_of_n.PRM_BLOCK_ROWS, 6], ids=["one_block", "blocks_of_2_rows"])
def prm_block_rows(request, monkeypatch):
  """The PRM pass in one block of rows, or (6 rows a block, 3 problems) in blocks of 2 rows per problem."""
  monkeypatch.setattr(best_of_n, "PRM_BLOCK_ROWS", request.param)
  loop._jit_search.cache_clear()  # Compiled programs hold the block size: none carries over either way.
  yield request.param
  loop._jit_search.cache_clear()


@pytest.mark.parametrize("shared_prefix", [True, False])
@pytest.mark.parametrize("stop", [ONE_TOKEN, TWO_TOKENS], ids=["one_token_delimiter", "two_token_delimiter"])
def test_scripted_rows_match_rounds(shared_prefix, stop, prm_block_rows):
  policy = ForcedTokens(scripted_config(), prompt_len=len(PROMPT), script=SCRIPTS)
  prm = ScriptedPRM(scripted_config(scalar_head=True), FIRST, cumulative=True)
  values = np.random.RandomState(0).randn(64 - FIRST).astype(np.float32)
  cfg = dataclasses.replace(CFG, shared_prefix=shared_prefix)
  got, want = _both(policy, prm, cfg, stop, {}, {"values": values}, [PROMPT, PROMPT, []])  # The last is padding.
  _assert_same(got, want)
  if stop is ONE_TOKEN:  # The scenarios the scripts are written for.
    np.testing.assert_array_equal(got.stop_reason_PxN[:2].reshape(-1), [STOP_EOS, STOP_LENGTH, STOP_NEWLINE, STOP_EOS,
                                                                        STOP_EOS, STOP_LENGTH, STOP_NEWLINE, STOP_EOS])
    assert int(got.rounds) == 4 and np.isnan(got.step_scores_PxNxR[0, 2, 2])
  assert (got.lengths_PxN[2] == 0).all() and int(got.budget.policy_flops_P[2]) == 0  # Padding costs nothing.


def test_prm_block_rows():
  assert best_of_n.prm_block_rows(1, 256) == 64 and best_of_n.prm_block_rows(8, 32) == 8
  assert best_of_n.prm_block_rows(3, 6) == 6 and best_of_n.prm_block_rows(128, 4) == 1


def test_greedy_transformer_matches_rounds(prm_block_rows):
  """Real attention: prompts of two lengths (left padding), the shared prefix, steps of varied length.

  Greedy rows of one problem are alike here; the scripted rows above differ within a problem,
  so there blocks of 2 rows (sorted by length) check that every row gets its own scores back.
  """
  cfg = tiny_model_config(vocab_size=64, max_len=64)
  policy = LogitBias(Transformer(cfg), ((NL, 1.5), (EOS, 0.5)))  # Truncated, EOS, and 5 steps.
  prm = Transformer(dataclasses.replace(cfg, lm_head=False, scalar_head=True))
  init = lambda m, seed: nn.unbox(jax.jit(m.init)(jax.random.key(seed), jnp.zeros((1, 8), jnp.int32)))
  search_cfg = dataclasses.replace(CFG, max_rounds=5, max_step_tokens=6, max_solution_tokens=30)
  prompts = [[3, 4, 5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15]]
  got, want = _both(policy, prm, search_cfg, ONE_TOKEN, init(policy.model, 0), init(prm, 1), prompts)
  _assert_same(got, want)
  steps = np.sum(~np.isnan(got.step_scores_PxNxR), axis=2)
  assert steps.max() > 1 and len(np.unique(got.lengths_PxN)) > 2  # Several scored steps, lengths that differ.


def test_schedule_is_not_part_of_the_spec():
  assert search_spec(dataclasses.replace(CFG, best_of_n_rounds=True)) == search_spec(CFG)
