"""The revision evaluation job end to end with tiny random exported models (reviser + ORM)."""
import json
import os

import pytest

from ttc_jax import shards
from ttc_jax.jobs import eval_revisions
from ttc_jax.revise import selection
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import load_config_module, export_tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
  c = load_config_module("revision_eval").get_config("smoke")
  c.revision_eval.update({**dict(num_problems=3, budgets=(2, 4), max_new_tokens=16, problems_per_shard=2,
                                 batch_size=4, verifier="orm"), **overrides})
  return c


def test_settings_and_ratios():
  cfg = eval_revisions.RevisionEvalConfig(budgets=(4, 16))
  assert cfg.settings() == [(1, 4), (2, 2), (4, 1), (1, 16), (2, 8), (4, 4), (8, 2), (16, 1)]
  assert eval_revisions.RevisionEvalConfig(budgets=(4, 16), parallel=(1, 4)).settings() == [
      (1, 4), (4, 1), (1, 16), (4, 4)]
  assert [selection.ratio_label(p, l) for p, l in ((1, 16), (4, 4), (16, 1), (2, 8))] == [
      "16:1", "1:1", "1:16", "4:1"]
  with pytest.raises(ValueError, match="no split"):
    eval_revisions.RevisionEvalConfig(budgets=(3,), parallel=(2,))


def test_revision_eval_job_writes_records_and_curves(tmp_path):
  tokenizer = load_tokenizer()
  for stage, head in (("reviser", {}), ("orm", {"scalar_head": True, "lm_head": False})):
    export_tiny_model(str(tmp_path / stage), tokenizer, **head)
  eval_revisions.run(_config(), str(tmp_path))
  out = tmp_path / "eval" / "revisions"
  result = json.loads((out / "results.json").read_text())
  methods = ["majority_flat", "majority_hierarchical", "last_majority", "weighted_flat", "weighted_hierarchical"]
  assert result["methods"] == methods
  assert result["settings"] == ["P1xL2", "P2xL1", "P1xL4", "P2xL2", "P4xL1"]
  assert result["pass_at_step"]["setting"] == "P1xL4" and len(result["pass_at_step"]["values"]) == 4
  assert {"correct_to_incorrect", "incorrect_to_correct", "pairs_from_correct",
          "pairs_from_incorrect"} <= result["transitions"].keys()
  assert result["transitions"]["pairs_from_correct"] + result["transitions"]["pairs_from_incorrect"] == 3 * 3
  assert result["curves"].keys() == set(methods)
  assert result["curves"]["majority_flat"].keys() == {"2:1", "1:2", "4:1", "1:1", "1:4"}
  assert result["curves"]["majority_flat"]["1:1"].keys() == {"4"} and result["curves"]["weighted_flat"]["2:1"]
  assert "git_commit" in result and result["config"]["verifier"] == "orm"
  assert (out / "pass_at_step.png").exists() and (out / "accuracy_vs_budget_weighted_hierarchical.png").exists()
  records = shards.read_records(str(out / "P2xL2"))
  assert len(records) == 3
  for r in records:
    assert r["strategy"] == "revise_P2xL2" and r["generation_budget"] == 4
    assert len(r["chains"]) == 2 and all(len(c) == 2 for c in r["chains"])
    assert len(r["candidates"]) == 4 and len(r["scores"]) == 2 and all(0 <= s <= 1 for c in r["scores"] for s in c)
    assert r["chosen"].keys() == set(methods) and r["primary_method"] == "weighted_hierarchical"
    assert r["chosen_answer"] == r["chosen"]["weighted_hierarchical"]
    assert r["correct"] == r["correct_by_method"]["weighted_hierarchical"]
    assert r["budget"]["generations"] == 4 and r["budget"]["prompt_tokens"] > 0 and r["budget"]["verifier_tokens"] > 0
    assert r["problem_id"].startswith("test-") and r["answer"].isdigit()
  mtime = (out / "results.json").stat().st_mtime_ns
  eval_revisions.run(_config(), str(tmp_path))
  assert (out / "results.json").stat().st_mtime_ns == mtime
  # Results gone but shards complete: recomputed from the shards without sampling again.
  os.remove(out / "results.json")
  shard_mtimes = {p: p.stat().st_mtime_ns for p in out.glob("P*/*")}
  eval_revisions.run(_config(), str(tmp_path))
  assert json.loads((out / "results.json").read_text())["curves"] == result["curves"]
  assert {p: p.stat().st_mtime_ns for p in out.glob("P*/*")} == shard_mtimes
