"""The search loop with scripted models: exact survivors, lookahead, finished beams, DVTS, budgets.

Steps are [LEAD, content, NL] (EOS instead of NL for content >= FINISH); the
scripted policy picks row b's content of step s from TABLE[b][s] and the
scripted PRM scores a prefix by its content tokens, both reading the row's
context back from their KV caches (see `search.scripted`). A small pure-Python
search over the same rules (`_reference`) gives the expected result of any
config; the first tests pin it down by hand.
"""
import math

import jax
import numpy as np
import pytest

from ttc_jax.decode.prompts import left_pad
from ttc_jax.models.flops import forward_flops_per_token
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.loop import jit_search
from ttc_jax.testing.scripted import COPY, ScriptedPolicy, ScriptedPRM, scripted_config
from ttc_jax.search.selection import rank
from ttc_jax.tokenization.steps import StopRule

PAD, EOS, NL, LEAD = 0, 1, 2, 3
FIRST, FINISH = 10, 30  # Content ids; >= FINISH ends the solution.
PROMPTS = [[5, 6, 7], [8, 9, 5, 6, 7]]
POLICY_CFG, PRM_CFG = scripted_config(), scripted_config(scalar_head=True)


def _values(**by_token):
  """PRM logits by content token ("t30": 5.0), 0 for the rest."""
  v = [0.0] * (64 - FIRST)
  for name, value in by_token.items():
    v[int(name[1:]) - FIRST] = float(value)
  return tuple(v)


POLICY = ScriptedPolicy(POLICY_CFG, EOS, NL, LEAD, FIRST, FINISH)


def _run(cfg, table, values, cumulative=False, prompts=PROMPTS[:1]):
  """The search's output; tables and values are parameters, so configs compile once per shape."""
  prm = ScriptedPRM(PRM_CFG, FIRST, cumulative)
  tokens, valid = left_pad(prompts, PAD, buckets=(8,))
  fn = jit_search(POLICY, prm, cfg, StopRule.from_ids(POLICY.cfg.vocab_size, [EOS], NL), PAD)
  return jax.device_get(fn({"table": np.asarray(table, np.int32)}, {"values": np.asarray(values, np.float32)}, tokens,
                           valid, jax.random.key(0)))


def _contents(out, p=0):
  """Content tokens of each final candidate of problem p."""
  return [[int(t) for t in row[:n] if t >= FIRST] for row, n in zip(out.tokens_PxNxT[p], out.lengths_PxN[p])]


def _sigmoid(x):
  return 1 / (1 + math.exp(-x))


# Hand-checked scenario (N=4, M=2, PRM = value of the last content token):
#   round 0: slots write 10, 11, 12, 13 (values 1, 4, 3, 2)        -> keep 1, 2: parents [1, 1, 2, 2]
#   round 1: slots write 30 (5, ends), 14 (0), 15 (2), 16 (1)     -> keep 0 (finished), 2: parents [0, 2, 2, 2]
#   round 2: slot 0 is carried; 1, 2, 3 write 31 (6, ends), 17 (-1), 32 (-2, ends)
#            -> top 2 are slots 1 and 0, both finished: frozen, the search stops after 3 rounds.
TABLE = [(10, 30, 18), (11, 14, 31), (12, 15, 17), (13, 16, 32)]
VALUES = _values(t10=1, t11=4, t12=3, t13=2, t14=0, t15=2, t16=1, t17=-1, t30=5, t31=6, t32=-2)
BEAM = SearchConfig(method="beam", budget=4, beam_width=2, max_rounds=6, max_step_tokens=4, max_solution_tokens=24)


def test_beam_survivors_by_hand():
  out = _run(BEAM, TABLE, VALUES)
  assert int(out.rounds) == 3
  np.testing.assert_array_equal(out.parents_PxRxN[0, :3], [[0, 1, 2, 3], [1, 1, 2, 2], [0, 2, 2, 2]])
  assert (out.parents_PxRxN[0, 3:] == -1).all()
  assert _contents(out) == [[11, 30], [12, 15, 31], [12, 15, 17], [12, 15, 32]]
  np.testing.assert_array_equal(out.finished_PxN[0], [True, True, False, True])
  np.testing.assert_allclose(out.score_PxN[0], [_sigmoid(5), _sigmoid(6), _sigmoid(-1), _sigmoid(-2)], rtol=1e-6)
  # Per-round step scores follow each candidate's own history; the carried slot 0 scored nothing in round 2.
  np.testing.assert_allclose(out.step_scores_PxNxR[0, 1, :3], [_sigmoid(3), _sigmoid(2), _sigmoid(6)], rtol=1e-6)
  assert np.isnan(out.step_scores_PxNxR[0, 0, 2]) and np.isnan(out.step_scores_PxNxR[0, :, 3:]).all()
  # Token layout: [LEAD, content, NL] per step, EOS ends the answer step.
  np.testing.assert_array_equal(out.tokens_PxNxT[0, 0, :7], [LEAD, 11, NL, LEAD, 30, EOS, PAD])


def test_finished_beam_is_carried_not_expanded():
  out = _run(BEAM, TABLE, VALUES)
  # 3 tokens per step: 4 + 4 rows in rounds 0, 1, only the 3 unfinished slots in round 2.
  assert int(out.budget.policy_tokens_P[0]) == 3 * (4 + 4 + 3)
  assert int(out.budget.prm_tokens_P[0]) == 3 * (4 + 4 + 3)
  assert int(out.budget.generations_P[0]) == 4
  assert out.lengths_PxN[0, 0] == 6  # Slot 0's two steps, nothing appended after its EOS.


def test_lookahead_ranks_by_rollout_end():
  """k=1: round 0 ranks slot c by its step-1 token (30, 14, 15, 16 -> 5, 0, 2, 1), not by its own step."""
  cfg = SearchConfig(method="lookahead", budget=4, beam_width=2, lookahead=1, max_rounds=6, max_step_tokens=4,
                     max_solution_tokens=24)
  out = _run(cfg, TABLE, VALUES)
  # Beam search kept slots 1 and 2 after round 0; lookahead keeps 0 and 2.
  np.testing.assert_array_equal(out.parents_PxRxN[0, 1], [0, 0, 2, 2])
  # Round 1 (from lineages 10, 10, 12, 12): slot 0 writes 30 and ends (own score 5); slot 1 writes 14 and rolls
  # out to 31 (6); slots 2, 3 roll out to 17 (-1), 32 (-2). Slot 1 (open) gets 3 slots, finished slot 0 one.
  np.testing.assert_array_equal(out.parents_PxRxN[0, 2], [1, 1, 1, 0])
  ref = _reference(cfg, TABLE, VALUES)
  _assert_matches(out, ref)
  # The rollout only scores: a candidate's own score is its last step's, and the kept steps are its own.
  assert ref["rollout_tokens"][0] > 0
  assert int(out.budget.generations_P[0]) == 8


def test_lookahead_zero_equals_beam():
  look0 = _run(SearchConfig(method="lookahead", budget=4, beam_width=2, lookahead=0, max_rounds=6, max_step_tokens=4,
                            max_solution_tokens=24), TABLE, VALUES)
  beam = _run(BEAM, TABLE, VALUES)
  for a, b in zip(jax.tree_util.tree_leaves(look0), jax.tree_util.tree_leaves(beam)):
    np.testing.assert_array_equal(a, b)


def test_best_of_n_chains_are_independent():
  cfg = SearchConfig(method="best_of_n", budget=4, max_rounds=6, max_step_tokens=4, max_solution_tokens=24)
  out = _run(cfg, TABLE, VALUES)
  assert (out.parents_PxRxN[0, :int(out.rounds)] == np.arange(4)).all()
  # Each slot follows its own table row until a finishing token (slot 2 never finishes: 17 repeats).
  assert _contents(out) == [[10, 30], [11, 14, 31], [12, 15, 17, 17, 17, 17], [13, 16, 32]]
  assert int(out.rounds) == 6


def test_dvts_subtrees_stay_independent():
  cfg = SearchConfig(method="dvts", budget=8, beam_width=2, max_rounds=5, max_step_tokens=4, max_solution_tokens=24)
  rng = np.random.RandomState(0)
  table = rng.randint(FIRST, 34, size=(8, 6))
  values = tuple(rng.randn(64 - FIRST).round(2))
  out = _run(cfg, table, values, cumulative=True)
  trace = out.parents_PxRxN[0, :int(out.rounds)]
  for g in range(4):  # Parents of subtree g's slots are in subtree g.
    assert ((trace[:, 2 * g:2 * g + 2] // 2) == g).all()
  # Rewriting subtree 3's table changes nothing in subtrees 0..2.
  changed = table.copy()
  changed[6:] = rng.randint(FIRST, 34, size=(2, 6))
  other = _run(cfg, changed, values, cumulative=True)
  assert _contents(other)[:6] == _contents(out)[:6]
  np.testing.assert_array_equal(other.score_PxN[0, :6], out.score_PxN[0, :6])
  _assert_matches(out, _reference(cfg, table, values, cumulative=True))


# ------------------------------------------------------------------ against the reference, many configs


def _reference(cfg, table, values, cumulative=False, prompts=PROMPTS[:1], bucket=8):
  """Pure-Python search over the scripted rules (the selection rule of `search.selection`)."""
  n, c, k, w = cfg.budget, cfg.group_size, cfg.lookahead, cfg.max_step_tokens
  table = [list(row) for row in table]
  value = lambda steps: _sigmoid(sum(values[x - FIRST] for x in steps) if cumulative else values[steps[-1] - FIRST])

  def content(b, steps):
    entry = table[b % len(table)][min(len(steps), len(table[0]) - 1)]
    return steps[-1] if entry == COPY else entry

  f = lambda ctx: forward_flops_per_token(POLICY_CFG, ctx)
  g = lambda ctx: forward_flops_per_token(PRM_CFG, ctx)
  result = {key: [] for key in ("contents", "scores", "rank_scores", "parents", "policy_tokens", "rollout_tokens",
                                "policy_flops", "prm_flops", "rounds", "finished")}
  for p, prompt in enumerate(prompts):
    rows = [dict(steps=[], finished=False, score=0.0, rank=0.0) for _ in range(n)]
    frozen = [False] * cfg.num_groups
    parents, trace = list(range(n)), []
    tokens = rollout_tokens = 0
    pol_flops = sum(f(i + 1) for i in range(len(prompt)))
    prm_flops = sum(g(i + 1) for i in range(len(prompt)))
    index = 0  # Slots used after the prompt: 3 per round (every active step is 3 tokens).
    while len(trace) < cfg.max_rounds and not all(frozen) and index + w <= cfg.max_solution_tokens:
      rows = [dict(rows[q]) for q in parents]
      trace.append(parents)
      for b, row in enumerate(rows):
        if row["finished"] or frozen[b // c]:
          continue
        pos = len(prompt) + 3 * len(row["steps"])
        pol_flops += sum(f(pos + i + 1) for i in range(3))
        prm_flops += sum(g(pos + i + 1) for i in range(3))
        tokens += 3
        row["steps"] = row["steps"] + [content(p * n + b, row["steps"])]
        row["finished"] = row["steps"][-1] >= FINISH
        row["score"] = row["rank"] = value(row["steps"])
        roll = list(row["steps"])
        for _ in range(k):
          if roll[-1] >= FINISH:
            break
          pos = len(prompt) + 3 * len(roll)
          pol_flops += sum(f(pos + i + 1) for i in range(3))
          prm_flops += sum(g(pos + i + 1) for i in range(3))
          tokens += 3
          rollout_tokens += 3
          roll.append(content(p * n + b, roll))
          row["rank"] = value(roll)
      index += 3
      parents = []
      if cfg.width == 1:  # Everyone survives in place.
        for grp in range(cfg.num_groups):
          frozen[grp] = frozen[grp] or all(rows[grp * c + i]["finished"] for i in range(c))
        parents = list(range(n))
        continue
      for grp in range(cfg.num_groups):
        ranks = np.array([rows[grp * c + i]["rank"] for i in range(c)], np.float32)  # Device precision.
        order = [int(i) for i in np.asarray(rank(ranks[None]))[0]]
        surv = order[:cfg.survivors]
        fin = [rows[grp * c + i]["finished"] for i in surv]
        num_open = len(surv) - sum(fin)
        frozen[grp] = frozen[grp] or num_open == 0
        if frozen[grp]:
          parents += [grp * c + i for i in range(c)]
          continue
        per, extra = divmod(c - sum(fin), num_open)
        u = 0
        for i, done in zip(surv, fin):
          copies = 1 if done else per + (u < extra)
          u += not done
          parents += [grp * c + i] * copies
    result["contents"].append([r["steps"] for r in rows])
    result["scores"].append([r["score"] for r in rows])
    result["rank_scores"].append([r["rank"] for r in rows])
    result["finished"].append([r["finished"] for r in rows])
    result["parents"].append(trace)
    result["policy_tokens"].append(tokens)
    result["rollout_tokens"].append(rollout_tokens)
    result["policy_flops"].append(pol_flops)
    result["prm_flops"].append(prm_flops)
    result["rounds"].append(len(trace))
  return result


def _assert_matches(out, ref):
  rounds = max(ref["rounds"])
  assert int(out.rounds) == rounds
  for p in range(len(ref["contents"])):
    assert _contents(out, p) == ref["contents"][p]
    np.testing.assert_allclose(out.score_PxN[p], ref["scores"][p], rtol=1e-5)
    np.testing.assert_allclose(out.rank_score_PxN[p], ref["rank_scores"][p], rtol=1e-5)
    np.testing.assert_array_equal(out.finished_PxN[p], ref["finished"][p])
    # A problem that stopped early reports identity parents while the others go on.
    trace = ref["parents"][p] + [list(range(len(ref["contents"][p])))] * (rounds - ref["rounds"][p])
    np.testing.assert_array_equal(out.parents_PxRxN[p, :rounds], trace)
    assert int(out.budget.policy_tokens_P[p]) == ref["policy_tokens"][p]
    assert int(out.budget.prm_tokens_P[p]) == ref["policy_tokens"][p]  # Every step is fed whole.
    assert int(out.budget.rollout_tokens_P[p]) == ref["rollout_tokens"][p]
    np.testing.assert_allclose(out.budget.policy_flops_P[p], ref["policy_flops"][p], rtol=1e-5)
    np.testing.assert_allclose(out.budget.prm_flops_P[p], ref["prm_flops"][p], rtol=1e-5)


CONFIGS = {
    "best_of_n": SearchConfig(method="best_of_n", budget=4, max_rounds=5, max_step_tokens=4, max_solution_tokens=21),
    "beam": SearchConfig(method="beam", budget=6, beam_width=2, max_rounds=5, max_step_tokens=4,
                         max_solution_tokens=21),
    "lookahead": SearchConfig(method="lookahead", budget=4, beam_width=2, lookahead=2, max_rounds=4,
                              max_step_tokens=4, max_solution_tokens=21),
    "beam_width_1": SearchConfig(method="beam", budget=4, beam_width=1, max_rounds=5, max_step_tokens=4,
                                 max_solution_tokens=21),
    "dvts": SearchConfig(method="dvts", budget=6, beam_width=3, max_rounds=5, max_step_tokens=4,
                         max_solution_tokens=21),
}


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_matches_reference_with_cache_dependent_steps(method):
  """Random tables with COPY entries (content read from the policy cache) and a cumulative PRM (from the PRM cache).

  Two problems with different prompt lengths: positions, FLOPs and early stops are per problem.
  """
  cfg = CONFIGS[method]
  rng = np.random.RandomState(1)
  n = cfg.budget * len(PROMPTS)
  table = rng.randint(FIRST, 40, size=(n, 7))
  table[rng.rand(*table.shape) < 0.3] = COPY
  table[:, 0] = rng.randint(FIRST, FINISH, size=n)  # Nothing to copy at step 0.
  values = tuple(rng.randn(64 - FIRST).round(2))
  out = _run(cfg, table, values, cumulative=True, prompts=PROMPTS)
  ref = _reference(cfg, table, values, cumulative=True, prompts=PROMPTS)
  _assert_matches(out, ref)


def test_cache_room_stops_the_search():
  """max_solution_tokens=12 with 4-token steps: rounds start at slots 0, 3, 6 (6 + 4 <= 12); then no room."""
  cfg = SearchConfig(method="best_of_n", budget=2, max_rounds=40, max_step_tokens=4, max_solution_tokens=12)
  out = _run(cfg, [(12, 13, 14, 15, 16)], VALUES)
  assert int(out.rounds) == 3
  assert _contents(out) == [[12, 13, 14], [12, 13, 14]]
  assert not out.finished_PxN.any()  # Unfinished candidates come back as they are.


def test_truncated_step_ends_the_candidate():
  """max_step_tokens=2 cuts [LEAD, content, NL] after the content: STOP_LENGTH, finished, scored at the content."""
  cfg = SearchConfig(method="beam", budget=4, beam_width=2, max_rounds=5, max_step_tokens=2, max_solution_tokens=8)
  out = _run(cfg, TABLE, VALUES)
  assert int(out.rounds) == 1
  assert out.finished_PxN.all() and (out.lengths_PxN == 2).all()
  np.testing.assert_allclose(out.score_PxN[0], [_sigmoid(v) for v in (1, 4, 3, 2)], rtol=1e-6)


def test_padding_problem_costs_nothing():
  out = _run(BEAM, TABLE, VALUES, prompts=[PROMPTS[0], []])
  assert int(out.budget.policy_tokens_P[1]) == 0 and int(out.budget.generations_P[1]) == 0
  assert (out.lengths_PxN[1] == 0).all()
  assert _contents(out, 0) == [[11, 30], [12, 15, 31], [12, 15, 17], [12, 15, 32]]
