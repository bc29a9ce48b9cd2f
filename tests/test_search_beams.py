"""Beam helpers, the selection rule and SearchConfig validation (pure functions, no model)."""
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.models import ModelConfig, gather_rows, init_cache
from ttc_jax.models import repeat_rows
from ttc_jax.search.beams import (flatten_beams, gather_beams, gather_cache, repeat_beams, repeat_cache, rewind_cache,
                                  unflatten_beams)
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.selection import rank, select_parents
from ttc_jax.search.steps import append_tokens

# ------------------------------------------------------------------ flatten / gather


def test_flatten_unflatten_roundtrip():
  x = jnp.arange(2 * 6 * 3).reshape(2, 6, 3)
  y = unflatten_beams(x, 3, axis=1)
  assert y.shape == (2, 2, 3, 3)
  np.testing.assert_array_equal(y[1, 0], x[1, 0:3])  # Problem-major: rows p*N .. p*N+N-1.
  np.testing.assert_array_equal(flatten_beams(y, axis=1), x)


def test_gather_beams_stays_within_problem():
  x = jnp.arange(6) * 10  # P=2, N=3.
  parents = jnp.array([[2, 2, 0], [1, 0, 0]])
  np.testing.assert_array_equal(gather_beams(x, parents), [20, 20, 0, 40, 30, 30])
  tree = {"a": jnp.arange(12).reshape(6, 2), "b": jnp.arange(6) > 2}
  out = gather_beams(tree, parents)
  np.testing.assert_array_equal(out["a"], np.arange(12).reshape(6, 2)[[2, 2, 0, 4, 3, 3]])
  np.testing.assert_array_equal(out["b"], [False, False, False, True, True, True])
  # A leaf whose row axis is not the first.
  np.testing.assert_array_equal(gather_beams(jnp.arange(12).reshape(2, 6), parents, axis=1),
                                np.arange(12).reshape(2, 6)[:, [2, 2, 0, 4, 3, 3]])


def _numbered_cache(batch_size, max_len=5):
  """A cache whose every entry is distinct, so any misplaced row shows."""
  cfg = ModelConfig(vocab_size=8, d_model=8, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=8)
  cache = init_cache(cfg, batch_size, max_len)
  shape = cache.k_BxKxSxH[0].shape
  k = tuple(jnp.arange(i * 1000, i * 1000 + np.prod(shape), dtype=jnp.float32).reshape(shape)
            for i in range(cache.num_layers))
  valid = (jnp.arange(batch_size * max_len).reshape(batch_size, max_len) % 3) == 0
  return cache.replace(k_BxKxSxH=k, v_BxKxSxH=tuple(-x for x in k), valid_BxS=valid,
                       index_B=jnp.full((batch_size,), 4, jnp.int32))


def _assert_caches_equal(a, b):
  for x, y in zip((*a.k_BxKxSxH, *a.v_BxKxSxH, a.valid_BxS, a.index_B), (*b.k_BxKxSxH, *b.v_BxKxSxH, b.valid_BxS,
                                                                          b.index_B)):
    np.testing.assert_array_equal(x, y)


def test_gather_cache_equals_gather_rows_with_global_rows():
  cache = _numbered_cache(6)
  got = gather_cache(cache, jnp.array([[2, 2, 0], [1, 0, 0]]))
  _assert_caches_equal(got, gather_rows(cache, jnp.array([2, 2, 0, 4, 3, 3])))


def test_repeat_beams_and_cache_equal_repeat_rows():
  cache = _numbered_cache(2)
  _assert_caches_equal(repeat_cache(cache, 3), repeat_rows(cache, 3))
  np.testing.assert_array_equal(repeat_beams(jnp.array([[1, 2], [3, 4]]), 2), [[1, 2], [1, 2], [3, 4], [3, 4]])


def test_rewind_cache_invalidates_later_slots():
  cfg = ModelConfig(vocab_size=8, d_model=8, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=8)
  cache = init_cache(cfg, 2, 6).replace(valid_BxS=jnp.array([[1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0]], bool),
                                        index_B=jnp.full((2,), 5, jnp.int32))
  out = rewind_cache(cache, jnp.int32(3))
  np.testing.assert_array_equal(out.index_B, [3, 3])
  np.testing.assert_array_equal(out.valid_BxS, [[1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]])


def test_append_tokens_per_row_offsets():
  buf = jnp.array([[5, 6, 0, 0, 0], [0, 0, 0, 0, 0], [7, 7, 7, 7, 0]])
  new = jnp.array([[1, 2, 9], [3, 9, 9], [4, 9, 9]])
  out = append_tokens(buf, jnp.array([2, 0, 4]), new, jnp.array([2, 1, 1]))
  np.testing.assert_array_equal(out, [[5, 6, 1, 2, 0], [3, 0, 0, 0, 0], [7, 7, 7, 7, 4]])
  np.testing.assert_array_equal(append_tokens(buf, jnp.array([2, 0, 4]), new, jnp.array([0, 0, 0])), buf)


# ------------------------------------------------------------------ selection rule


def _select(scores, finished, survivors):
  parents, frozen = select_parents(jnp.asarray(scores, jnp.float32), jnp.asarray(finished, bool), survivors)
  return np.asarray(parents).tolist(), np.asarray(frozen).tolist()


def test_rank_is_stable_and_puts_nan_last():
  np.testing.assert_array_equal(rank(jnp.array([[0.3, np.nan, 0.5, 0.3]])), [[2, 0, 3, 1]])


def test_top_k_each_expanded_m_times_in_rank_order():
  # N=4, M=2: K=2 survivors (slots 1 and 3), each copied twice, best first.
  assert _select([[0.1, 0.9, 0.5, 0.7]], [[0, 0, 0, 0]], 2) == ([[1, 1, 3, 3]], [False])
  # Ties go to the lower slot.
  assert _select([[0.3, 0.3, 0.3, 0.3]], [[0, 0, 0, 0]], 2) == ([[0, 0, 1, 1]], [False])


def test_finished_survivor_keeps_one_slot_and_frees_the_rest():
  # N=4, K=2: slot 0 (finished) and slot 1 survive; 0 is carried once, 1 fills the other 3 slots.
  assert _select([[0.9, 0.8, 0.1, 0.2]], [[1, 0, 0, 0]], 2) == ([[0, 1, 1, 1]], [False])
  # N=6, K=3 (M=2): survivors 1 (finished), 3, 2. The 5 open slots go 3, 2: the better one gets the extra.
  assert _select([[0.1, 0.9, 0.5, 0.7, 0.2, 0.3]], [[0, 1, 0, 0, 0, 0]], 3) == ([[1, 3, 3, 3, 2, 2]], [False])
  # A finished candidate outside the top K is simply dropped.
  assert _select([[0.9, 0.8, 0.85, 0.2]], [[0, 0, 0, 1]], 2) == ([[0, 0, 2, 2]], [False])


def test_group_freezes_when_every_survivor_is_finished():
  assert _select([[0.9, 0.8, 0.1, 0.2]], [[1, 1, 0, 0]], 2) == ([[0, 1, 2, 3]], [True])
  # One survivor per group (DVTS): a finished best freezes only its own group.
  parents, frozen = _select([[0.9, 0.1], [0.2, 0.8]], [[1, 0], [1, 0]], 1)
  assert parents == [[0, 1], [1, 1]] and frozen == [True, False]


def test_width_one_is_identity():
  assert _select([[0.4], [0.9]], [[0], [1]], 1) == ([[0], [0]], [False, True])


# ------------------------------------------------------------------ config


def test_config_groups_per_method():
  assert (SearchConfig(method="best_of_n", budget=8).num_groups, SearchConfig(method="best_of_n", budget=8).survivors) \
      == (8, 1)
  beam = SearchConfig(method="beam", budget=16, beam_width=4)
  assert (beam.num_groups, beam.group_size, beam.survivors, beam.generations) == (1, 16, 4, 16)
  dvts = SearchConfig(method="dvts", budget=16, beam_width=4)
  assert (dvts.num_groups, dvts.group_size, dvts.survivors) == (4, 4, 1)
  look = SearchConfig(method="lookahead", budget=16, beam_width=4, lookahead=2)
  assert (look.survivors, look.generations) == (4, 48)


@pytest.mark.parametrize("kwargs,message", [
    (dict(method="mcts"), "search.method='mcts' must be one of"),
    (dict(budget=6, beam_width=4), "search.budget=6 must be divisible by search.beam_width=4"),
    (dict(method="dvts", budget=0), "search.budget=0 must be >= 1"),
    (dict(method="beam", lookahead=2), "search.lookahead=2 needs search.method='lookahead'"),
    (dict(max_rounds=0), "search.max_rounds=0"),
    (dict(max_step_tokens=64, max_solution_tokens=32), "search.max_solution_tokens=32 must be >= search.max_step"),
    (dict(temperature=-1.0), "search.temperature=-1.0"),
    (dict(top_p=0.0), "search.top_p=0.0"),
])
def test_config_errors_name_the_field(kwargs, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    SearchConfig(**kwargs)


def test_best_of_n_ignores_beam_width():
  assert SearchConfig(method="best_of_n", budget=6, beam_width=4).width == 1
