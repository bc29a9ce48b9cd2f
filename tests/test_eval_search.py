"""Search strategies at a generation budget, and the search evaluation job end to end (tiny random models)."""
import json
import os

import pytest

from ttc_jax import shards
from ttc_jax.jobs import eval_search
from ttc_jax.search.strategies import parse_strategy, search_config
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import load_config_module, export_tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_strategies_spend_the_generation_budget():
  assert search_config(parse_strategy("best_of_n"), 16).budget == 16
  beam = search_config(parse_strategy("beam:4"), 16)
  assert (beam.method, beam.budget, beam.beam_width, beam.lookahead) == ("beam", 16, 4, 0)
  assert [search_config(parse_strategy("beam:sqrt"), n).beam_width for n in (4, 16, 64, 256)] == [2, 4, 8, 16]
  look = search_config(parse_strategy("lookahead:4:3"), 16)  # each candidate costs k + 1 = 4 generations
  assert (look.budget, look.beam_width, look.lookahead) == (4, 4, 3)
  assert search_config(parse_strategy("lookahead:4:3"), 8) is None  # 2 candidates < beam width 4
  assert search_config(parse_strategy("lookahead:4:1"), 5) is None  # not a whole number of candidates
  assert search_config(parse_strategy("beam:4"), 2) is None
  dvts = search_config(parse_strategy("dvts:4"), 16)
  assert (dvts.method, dvts.budget, dvts.beam_width) == ("dvts", 16, 4)
  for bad in ("beam", "beam:x", "lookahead:4", "greedy", "dvts:4:1"):
    with pytest.raises(ValueError, match="is not one of"):
      parse_strategy(bad)


def _config(**overrides):
  c = load_config_module("search_eval").get_config("smoke")
  c.search_eval.update({**dict(num_problems=3, budgets=(1, 4), strategies=("best_of_n", "beam:2", "lookahead:2:1"),
                               problems_per_shard=2, batch_size=2), **overrides})
  return c


def test_search_eval_job_writes_records_and_curves(tmp_path, monkeypatch):
  tokenizer = load_tokenizer()
  for stage, head in (("policy", {}), ("prm", {"scalar_head": True, "lm_head": False})):
    export_tiny_model(str(tmp_path / stage), tokenizer, **head)
  seen, real = [], eval_search.run_search

  def spy(*args, cfg, batch_size, **kwargs):
    seen.append((cfg.budget, batch_size))
    return real(*args, cfg=cfg, batch_size=batch_size, **kwargs)

  monkeypatch.setattr(eval_search, "run_search", spy)
  eval_search.run(_config(rows_per_call=4), str(tmp_path))
  # rows_per_call // candidates problems per device call (lookahead:2:1 at N = 4 has 2 candidates).
  assert sorted(set(seen)) == [(1, 4), (2, 2), (4, 1)]
  out = tmp_path / "eval" / "search"
  result = json.loads((out / "results.json").read_text())
  assert result["curves"].keys() == {"best_of_n", "beam:2", "lookahead:2:1"}
  assert list(result["curves"]["best_of_n"]) == ["1", "4"] and list(result["curves"]["beam:2"]) == ["4"]
  assert sorted(result["skipped"]) == ["beam:2@1", "lookahead:2:1@1"]
  assert (out / "accuracy_vs_budget.png").exists()
  records = shards.read_records(str(out / "lookahead_2_1" / "N4"))
  assert len(records) == 3
  for r in records:
    assert r["strategy"] == "lookahead:2:1" and r["generation_budget"] == 4 and r["method"] == "lookahead"
    assert len(r["candidates"]) == 2  # 4 generations / (k + 1) = 2 candidates
    assert r["budget"]["generations"] == 4
    assert isinstance(r["correct"], bool) and r["problem_id"].startswith("test-")
    assert r["answer"].isdigit() and "chosen_answer" in r  # the reference survives next to the pick
    assert r["correct"] == (r["chosen_answer"] == r["answer"])
    assert all({"text", "steps", "step_scores", "score", "extracted"} <= c.keys() for c in r["candidates"])
  assert result["details"]["lookahead:2:1"]["4"]["mean_generations"] == 4
  mtime = (out / "results.json").stat().st_mtime_ns
  eval_search.run(_config(rows_per_call=4), str(tmp_path))
  assert (out / "results.json").stat().st_mtime_ns == mtime


def test_bad_strategy_fails_before_any_work(tmp_path):
  with pytest.raises(ValueError, match="'beam:x' is not one of"):
    eval_search.run(_config(strategies=("beam:x",)), str(tmp_path))
  assert not (tmp_path / "data").exists()


def _warnings(search_eval_section, task_section) -> list[str]:
  from unittest import mock
  cfg = eval_search.config_parsing.parse_section(eval_search.SearchEvalConfig, search_eval_section, "search_eval")
  task = eval_search.common.make_task(task_section, "/nonexistent")  # Reads no file.
  with mock.patch.object(eval_search.logging, "warning") as warning:
    eval_search._warn_if_too_short(cfg, task)
  return [call.args[0] % call.args[1:] for call in warning.call_args_list]


def test_warns_when_a_search_cannot_reach_the_longest_solutions_answer():
  # Each round advances the shared cache by up to max_step_tokens: 4 rounds of 24 cannot hold
  # the default task's 5 steps + answer line.
  c = load_config_module("search_eval").get_config("")
  c.search_eval.max_solution_tokens = 96
  (message,) = _warnings(c.search_eval, c.task)
  assert "search_eval.max_solution_tokens=96" in message and "raise max_solution_tokens to 144" in message


@pytest.mark.parametrize("file,arg", [("search_eval", ""), ("pipeline", ""), ("pipeline", "gpu")])
def test_shipped_configs_leave_room_for_the_longest_solution(file, arg):
  c = load_config_module(file).get_config(arg)
  section = c.search_eval if file == "search_eval" else c.stages.search_eval.search_eval
  assert _warnings(section, c.task) == []


def test_rows_per_call_sets_problems_per_call_at_each_budget():
  """rows_per_call keeps the candidate rows of a device call (its memory) the same at every budget; the job
  test above checks that eval_search passes it to run_search."""
  cfg = eval_search.SearchEvalConfig(rows_per_call=8, batch_size=5)
  assert [cfg.problems_per_call(n) for n in (1, 4, 8, 16)] == [8, 2, 1, 1]
  assert eval_search.SearchEvalConfig(batch_size=5).problems_per_call(16) == 5
  with pytest.raises(ValueError, match="search_eval.rows_per_call=-1"):
    eval_search.SearchEvalConfig(rows_per_call=-1)
