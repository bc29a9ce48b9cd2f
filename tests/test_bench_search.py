"""bench/search.py's variable step lengths: the seeded table and where `ForcedSteps` puts newlines and EOS."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax.models import Transformer
from ttc_jax.testing.tiny import load_file_module, tiny_model_config


def _bench():
  return load_file_module("bench/search.py", "bench_search")


def test_step_end_table_is_seeded_and_in_range():
  bench = _bench()
  assert bench.step_end_table("fixed", 4, 3) == (None, 0)
  ends, longest = bench.step_end_table("uniform:8:64", 256, 8)
  assert ends == bench.step_end_table("uniform:8:64", 256, 8)[0] and longest == 64
  lengths = np.diff(np.asarray(ends), axis=1, prepend=0)
  assert lengths.min() >= 8 and lengths.max() <= 64 and abs(lengths.mean() - 36) < 1
  with pytest.raises(ValueError):
    bench.step_end_table("uniform:1:4", 4, 3)  # A one-token step could end at a prefill row's first token.


def test_forced_steps_end_each_slot_on_its_schedule():
  bench = _bench()
  cfg = tiny_model_config(vocab_size=16)
  model = Transformer(cfg)
  params = nn.unbox(model.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  ends = ((2, 5, 6), (3, 4, 8))  # Two slots, three steps each.
  forced = bench.ForcedSteps(model, prompt_len=2, step_tokens=3, rounds=3, step_ends=ends)
  rows, t = 4, 10  # Rows 2, 3 use the table's rows 0, 1 again.
  positions = jnp.broadcast_to(jnp.arange(t) + 1, (rows, t))  # After a 2-token prompt: token j at j + 1.
  out = forced.apply(params, jnp.full((rows, t), 3, jnp.int32), positions, jnp.ones((rows, t), bool), None)
  best = np.asarray(jnp.argmax(out.logits_BxTxV, axis=-1))
  for b in range(rows):
    row_ends = ends[b % 2]
    for j in range(t):
      want = bench.EOS_ID if j + 1 == row_ends[-1] else bench.NEWLINE_ID if j + 1 in row_ends else None
      if want is None:
        assert best[b, j] not in (bench.EOS_ID, bench.NEWLINE_ID)
      else:
        assert best[b, j] == want


def test_step_lengths_table_reports_the_longest_row_bound():
  """The ratio's bound: a batched decode runs until its longest row ends (recomputed for files without it)."""
  bench = _bench()
  work = lambda lengths, **kw: {"step_lengths": lengths, "prompt_len": 128, "solution_tokens": 24, "rows_per_call": 4,
                                "rounds_R": 3, "mean_solution_tokens": 24.0, **kw}
  ends, _ = bench.step_end_table("uniform:2:14", 4, 3)
  longest = max(row[-1] for row in ends)
  configs = [{"workload": work("fixed"), "runs": [{"method": "best_of_n", "N": 4, "s_per_problem": 1.0}]},
             {"workload": work("uniform:2:14", mean_solution_tokens=25.0),
              "runs": [{"method": "best_of_n", "N": 4, "s_per_problem": 1.5}]}]
  (row,) = bench.step_lengths_table(configs)["rows"]
  assert row["over_fixed"] == 1.5 and row["longest_over_fixed_tokens"] == longest / 24
  assert row["mean_over_fixed_tokens"] == 25 / 24
  configs[1]["workload"]["longest_solution_tokens"] = 30  # Recorded by newer runs: taken as is.
  assert bench.step_lengths_table(configs)["rows"][0]["longest_over_fixed_tokens"] == 30 / 24
