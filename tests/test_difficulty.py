"""Difficulty bins (oracle pass@1, predicted verifier score), their cost, and the difficulty job."""
import dataclasses
import json
import random

import pytest

from ttc_jax import shards
from ttc_jax.analysis import difficulty as diff
from ttc_jax.jobs import difficulty as job
from ttc_jax.models.flops import forward_flops_per_token, span_forward_flops
from ttc_jax.testing.tiny import load_config_module, tiny_model_config


def test_bins_have_equal_sizes_and_bin_1_is_easiest():
  values = {f"p{i:02d}": i / 10 for i in range(10)}
  bins = diff.quantile_bins(values, 5)
  assert [sum(b == k for b in bins.values()) for k in range(1, 6)] == [2] * 5
  assert bins["p09"] == bins["p08"] == 1 and bins["p00"] == bins["p01"] == 5
  sizes = [sum(b == k for b in diff.quantile_bins({f"p{i}": i for i in range(13)}, 5).values()) for k in range(1, 6)]
  assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 13


def test_ties_are_broken_by_a_hash_not_by_input_order():
  ids = [f"test-{i:06d}" for i in range(20)]
  values = {pid: 1.0 if i < 12 else 0.5 for i, pid in enumerate(ids)}  # a bin edge falls inside the tie at 1.0
  bins = diff.quantile_bins(values, 5, seed=3)
  shuffled = dict(random.Random(0).sample(list(values.items()), len(values)))
  assert diff.quantile_bins(shuffled, 5, seed=3) == bins
  assert [sum(b == k for b in bins.values()) for k in range(1, 6)] == [4] * 5
  assert all(bins[pid] <= 3 for pid in ids[:12]) and all(bins[pid] >= 3 for pid in ids[12:])
  tied_in_bin3 = sorted((pid for pid in ids[:12] if bins[pid] == 3), key=lambda p: diff.tie_key(p, 3))
  assert tied_in_bin3 and all(diff.tie_key(p, 3) >= diff.tie_key(q, 3)
                              for p in tied_in_bin3 for q in ids[:12] if bins[q] < 3)
  assert diff.quantile_bins(values, 5, seed=4) != bins  # another seed, another (equally valid) split of the tie


def test_pass1_predicted_score_and_summary():
  records = [{"problem_id": "a", "samples": [{"correct": True}, {"correct": False}]},
             {"problem_id": "b", "samples": [{"correct": True}, {"correct": True}]}]
  assert diff.oracle_pass1(records) == {"a": 0.5, "b": 1.0}
  lines = [{"problem_id": "a", "prm_steps": [[0.1, 0.3], []]}, {"problem_id": "b", "prm_steps": [[0.9], [0.5, 0.7]]}]
  assert diff.predicted_scores(lines) == pytest.approx({"a": 0.15, "b": 0.8})
  s = diff.bin_summary({"a": 0.5, "b": 1.0}, {"a": 2, "b": 1}, 3)
  assert s["1"] == {"count": 1, "mean": 1.0, "min": 1.0, "max": 1.0} and s["3"]["count"] == 0


def test_span_flops_matches_the_per_token_sum():
  cfg = tiny_model_config()
  f = lambda c: forward_flops_per_token(cfg, c)
  assert span_forward_flops(cfg, 5, 7) == pytest.approx(sum(f(7 + i + 1) for i in range(5)))


def _write_inputs(tmp_path, n_problems=10, n_samples=4):
  records = []
  for i in range(n_problems):
    samples = [{"text": "1 + 1 = 2\nThe answer is 2.", "steps": ["1 + 1 = 2", "The answer is 2."], "extracted": "2",
                "correct": s < i % (n_samples + 1), "num_tokens": 12, "stop_reason": "eos"} for s in range(n_samples)]
    records.append({"problem_id": f"test-{i:06d}", "question": "Start with 1. Add 1. What is the result?",
                    "answer": "2", "num_steps": 1, "max_operand": 9, "ops": "+", "samples": samples})
  shards.run_sharded(str(tmp_path / "samples" / "difficulty"), 2, lambda k: records[k * 5:(k + 1) * 5], spec={})
  (tmp_path / "eval" / "verifiers").mkdir(parents=True)
  with open(tmp_path / "eval" / "verifiers" / "scores.jsonl", "w") as f:
    for i, r in enumerate(records):
      f.write(json.dumps({"problem_id": r["problem_id"], "prm_steps": [[0.5, 1 - i / 10]] * n_samples,
                          "orm_steps": [[0.5, 0.5]] * n_samples}) + "\n")
  (tmp_path / "eval" / "verifiers" / "results.json").write_text(json.dumps({"config": {"prm": "prm"}}))
  for stage, head in (("policy", {}), ("prm", {"scalar_head": True, "lm_head": False})):
    (tmp_path / stage).mkdir()
    cfg = tiny_model_config(vocab_size=192, **head)
    (tmp_path / stage / "model_config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
  return records


def test_difficulty_job(tmp_path):
  config = load_config_module("difficulty").get_config()
  with pytest.raises(FileNotFoundError, match="sample_solutions"):
    job.run(config, str(tmp_path))
  records = _write_inputs(tmp_path)
  job.run(config, str(tmp_path))
  out = json.loads((tmp_path / "difficulty" / "difficulty.json").read_text())
  assert out["num_problems"] == 10 and out["samples_per_problem"] == 4 and out["git_commit"]
  by_id = {p["problem_id"]: p for p in out["problems"]}
  assert by_id["test-000004"]["pass1"] == 1.0 and by_id["test-000000"]["pass1"] == 0.0
  assert by_id["test-000004"]["oracle_bin"] == 1 and by_id["test-000000"]["oracle_bin"] == 5
  assert by_id["test-000000"]["predicted_score"] == pytest.approx(1.0) and by_id["test-000000"]["predicted_bin"] == 1
  assert [out["oracle"][b]["count"] for b in "12345"] == [2] * 5
  assert out["oracle"]["1"]["mean_pass1"] >= out["oracle"]["5"]["mean_pass1"]
  cost = out["cost"]
  assert cost["total"]["generations"] == 40 and cost["per_problem"]["policy_tokens"] == 48
  assert cost["per_problem"]["verifier_tokens"] > cost["per_problem"]["prompt_tokens"] * 4
  assert cost["total"]["flops"] == pytest.approx(cost["total"]["policy_flops"] + cost["total"]["verifier_flops"])
  assert out["config"]["seed"] == 0 and len(records) == 10


def test_level_bins_from_metadata():
  records = [{"problem_id": "a", "metadata": {"level": 1}}, {"problem_id": "b", "metadata": {"level": 5}},
             {"problem_id": "c", "metadata": {"level": 3, "subject": "Algebra"}}]
  assert diff.level_bins(records) == {"a": 1, "b": 5, "c": 3}
  assert diff.level_bins([{"problem_id": "a", "metadata": {"num_steps": 2}}, {"problem_id": "b"}]) is None
  with pytest.raises(ValueError, match=r"1 of 2 problems have no level metadata \(first: b\)"):
    diff.level_bins([{"problem_id": "a", "metadata": {"level": 2}}, {"problem_id": "b", "metadata": {}}])
  with pytest.raises(ValueError, match="problem a: level 'Level 2' is not a positive integer"):
    diff.level_bins([{"problem_id": "a", "metadata": {"level": "Level 2"}}])


def test_difficulty_job_bins_by_level_when_problems_have_one(tmp_path):
  records = _write_inputs(tmp_path)
  assert "level" not in json.dumps(records)  # arith: no level, no level bins
  config = load_config_module("difficulty").get_config()
  job.run(config, str(tmp_path))
  out = json.loads((tmp_path / "difficulty" / "difficulty.json").read_text())
  assert "level" not in out and "level_bin" not in out["problems"][0]

  for i, r in enumerate(records):
    r["metadata"] = {"level": 1 + i % 3, "subject": "Algebra"}
  (tmp_path / "samples").rename(tmp_path / "old_samples")
  shards.run_sharded(str(tmp_path / "samples" / "difficulty"), 1, lambda k: records, spec={})
  config.difficulty.out = "difficulty_level"
  job.run(config, str(tmp_path))
  out = json.loads((tmp_path / "difficulty_level" / "difficulty.json").read_text())
  assert out["num_levels"] == 3 and [out["level"][b]["count"] for b in "123"] == [4, 3, 3]
  by_id = {p["problem_id"]: p for p in out["problems"]}
  assert [by_id[f"test-{i:06d}"]["level_bin"] for i in range(4)] == [1, 2, 3, 1]
  level1 = [by_id[f"test-{i:06d}"]["pass1"] for i in (0, 3, 6, 9)]
  assert out["level"]["1"]["mean_pass1"] == pytest.approx(sum(level1) / 4)
  assert [out["oracle"][b]["count"] for b in "12345"] == [2] * 5  # the other bins are unchanged
