"""The report job end to end on a synthetic workdir written with the real artifacts' schemas."""
import json
import random
import shutil

import pytest

from ttc_jax import shards
from ttc_jax.analysis import plots, ranking
from ttc_jax.jobs import report
from ttc_jax.testing.tiny import load_config_module

N = 20
IDS = [f"test-{i:06d}" for i in range(N)]
REQUIRED = {"config", "git_commit", "policy", "large_policy", "difficulty", "curves", "curves_by_bin",
            "compute_optimal", "efficiency", "flops_matched", "revisions", "intervals", "paired"}


def _records(path, records):
  shards.run_sharded(str(path), 2, lambda k: records[k * len(records) // 2:(k + 1) * len(records) // 2], spec={})


def _workdir(tmp_path, revision_problems=N):
  rng = random.Random(0)
  pass1 = {pid: 1 - i / (N - 1) for i, pid in enumerate(IDS)}  # test-000000 easiest
  problems = [{"problem_id": pid, "pass1": p, "predicted_score": p * 0.8 + 0.1 * rng.random(), "oracle_bin": 0,
               "predicted_bin": 0} for pid, p in pass1.items()]
  (tmp_path / "difficulty").mkdir()
  (tmp_path / "difficulty" / "difficulty.json").write_text(json.dumps({
      "config": {"seed": 0}, "num_bins": 5, "problems": problems, "num_problems": N,
      "cost": {"per_problem": {"generations": 8.0, "flops": 1e9}, "total": {"generations": 8.0 * N}}}))
  strength = {"best_of_n": 0.0, "beam:4": 0.1, "lookahead:4:1": -0.1}
  budgets = {"best_of_n": (1, 4, 16), "beam:4": (4, 16), "lookahead:4:1": (16,)}
  for strategy, bs in budgets.items():
    for b in bs:
      recs = [{"problem_id": pid, "strategy": strategy, "generation_budget": b, "budget": {"generations": b},
               "correct": rng.random() < pass1[pid] + strength[strategy] + 0.02 * b} for pid in IDS]
      _records(tmp_path / "eval" / "search" / strategy.replace(":", "_") / f"N{b}", recs)
  (tmp_path / "eval" / "search" / "results.json").write_text(json.dumps({"config": {"strategies": list(budgets)}}))
  methods = ("majority_flat", "weighted_flat", "weighted_hierarchical")
  for p, l in ((1, 4), (2, 2), (4, 1)):
    recs = []
    for pid in IDS[:revision_problems]:
      grid = [[rng.random() < pass1[pid] for _ in range(l)] for _ in range(p)]
      recs.append({"problem_id": pid, "strategy": f"revise_P{p}xL{l}", "generation_budget": p * l, "parallel": p,
                   "revisions": l, "attempt_correct": grid, "primary_method": "weighted_hierarchical",
                   "correct_by_method": {m: rng.random() < pass1[pid] for m in methods},
                   "correct": False, "budget": {"generations": p * l}})
    _records(tmp_path / "eval" / "revisions" / f"P{p}xL{l}", recs)
  for stage, params in (("policy", 1000), ("large_policy", 14000)):
    (tmp_path / stage).mkdir()
    (tmp_path / stage / "train_summary.json").write_text(json.dumps({"params": params, "train_tokens": 5000}))
  # eval_verifiers' ranking block: a PRM that ranks (correct 0.9, wrong 0.1) and an ORM that only knows difficulty.
  correct = [[rng.random() < pass1[pid] for _ in range(8)] for pid in IDS]
  scores = {"prm_last": [[0.9 if c else 0.1 for c in cs] for cs in correct],
            "orm": [[pass1[pid]] * 8 for pid in IDS]}
  block = ranking.ranking(scores, correct, IDS, {pid: 1 for pid in IDS}, 1)  # eval_verifiers' own bins: re-drawn
  # Its selection block (weighted voting always right, majority right on half) and first-wrong-line AUROCs.
  half = {pid: float(i % 2) for i, pid in enumerate(IDS)}
  block["selection"] = {"per_question": {"majority": {"1": half, "8": half},
                                         "prm_last_weighted": {"1": half, "8": {pid: 1.0 for pid in IDS}}}}
  block["first_wrong_line"] = {"method": ranking.LINE_METHOD,
                               "per_question": {pid: (None if i == 0 else 0.75) for i, pid in enumerate(IDS)}}
  (tmp_path / "eval" / "verifiers").mkdir(parents=True)
  (tmp_path / "eval" / "verifiers" / "results.json").write_text(json.dumps({"ranking": block}))
  (tmp_path / "large_policy" / "eval.json").write_text(json.dumps({
      "config": {"temperature": 0.0, "samples_per_problem": 1},
      "problems": [{"id": pid, "pass1": float(pass1[pid] > 0.5)} for pid in IDS]}))


def test_report_end_to_end(tmp_path):
  _workdir(tmp_path, revision_problems=16)
  report.run(load_config_module("report").get_config(), str(tmp_path))
  out = tmp_path / "report"
  r = json.loads((out / "results.json").read_text())
  assert REQUIRED <= r.keys()
  assert r["num_problems"] == 16 and r["num_problems_by_input"]["search"] == N  # intersection with revisions
  assert r["policy"] == {"params": 1000, "train_tokens": 5000} and r["large_policy"]["params"] == 14000
  assert set(r["difficulty"]["oracle"]) == set("12345") and sum(v["count"] for v in r["difficulty"]["oracle"].values()) == 16
  assert r["difficulty"]["oracle"]["1"]["mean_pass1"] > r["difficulty"]["oracle"]["5"]["mean_pass1"]
  assert set(r["curves"]["best_of_n"]) == {"1", "4", "16"} and "revise_P2xL2/weighted_flat" in r["curves"]
  assert set(r["curves_by_bin"]["beam:4"]) == set("12345")
  assert set(r["compute_optimal"]) == {"oracle", "predicted", "predicted_with_cost"}
  assert set(r["compute_optimal"]["predicted_with_cost"]) == {"9", "12", "24"}  # shifted by 8 generations
  assert set(r["compute_optimal_by_family"]) == {"search", "revisions", "all"}
  assert {"ratio", "ratio_interpolated"} <= r["efficiency"]["search"].keys()
  assert {"ratio", "ratio_interpolated"} <= r["efficiency"]["revisions"].keys()
  assert [e["R"] for e in r["flops_matched"]] == [0.16, 0.79, 22.0]
  assert r["flops_matched"][0]["M"] == 14.0 and round(r["flops_matched"][0]["matched_budget"]) == 258
  assert r["flops_matched"][0]["by_bin"]["1"]["flag"] == "capped_at_max_budget"
  assert {"test_time", "larger_model"} <= r["flops_matched"][2]["by_bin"]["3"].keys()
  assert len(r["revisions"]["pass1_by_step"]) == 4 and r["revisions"]["correct_to_incorrect"] is not None
  assert [f["number"] for f in r["findings"]] == [1, 2, 3, 4, 5]
  # Every finding's part carries its paired interval (or why it is not measurable); every curve its band.
  parts = [p for ps in r["paired"]["parts"].values() for p in ps] + r["paired"]["controls"]
  assert {"1a", "1b", "1c", "2a", "2b", "2c", "3a", "3b", "4a", "5a", "control A/A"} <= {p["part"] for p in parts}
  for p in parts:
    assert p["verdict"] == "not measurable" and p["reason"] or p["low"] <= p["difference"] <= p["high"]
  assert r["paired"]["parts"]["1"][0]["n"] == 16 and r["paired"]["margin"] == 0.02
  lo, hi = r["intervals"]["curves"]["best_of_n"]["4"]
  assert lo < r["curves"]["best_of_n"]["4"] < hi
  assert set(r["intervals"]["curves_by_bin"]["beam:4"]["5"]) == {"4", "16"}
  assert all(len(e["difference_interval"]) == 2 for e in r["flops_matched"][0]["by_bin"].values())
  vr = r["verifier_ranking"]
  assert vr["num_problems"] == 16 and set(vr["verifiers"]) == {"prm_last", "orm"}
  prm, orm = vr["verifiers"]["prm_last"], vr["verifiers"]["orm"]
  assert set(prm["by_bin"]) == set("12345") and prm["overall"]["questions"] == 16  # the report's questions and bins
  assert prm["overall"]["auroc"]["mean"] == 1.0 and orm["overall"]["auroc"]["mean"] == 0.5
  assert prm["target"]["bins"] == ["2", "3", "4"]
  md = (out / "report.md").read_text()
  assert "## Verifier ranking" in md and "| prm_last | all |" in md and "against the target 0.85" in md
  weighted = vr["selection"]["versus_majority"]["prm_last_weighted"]["all"]  # re-binned over the 16 questions
  assert vr["selection"]["n"] == 8 and weighted["n"] == 16 and weighted["difference"] == pytest.approx(0.5)
  assert weighted["verdict"] == "supported" and "| prm_last_weighted minus majority | all bins | +0.500 |" in md
  lines = vr["first_wrong_line"]["summary"]["overall"]
  assert (lines["questions"], lines["used"], lines["auroc"]["mean"]) == (16, 15, 0.75)
  assert "first wrong line" in md
  assert "## Findings" in md and "## FLOPs-matched exchange" in md
  assert "### Controls" in md and "| 1a |" in md and "95% interval" in md
  for png in ("search_accuracy_vs_budget.png", "search_accuracy_by_bin.png", "revisions_ratios.png",
              "revisions_pass1_by_step.png", "compute_optimal_search.png", "compute_optimal_revisions.png",
              "flops_matched.png", "verifier_auroc_by_bin.png"):
    assert (out / png).stat().st_size > 0 and png in md


def test_report_without_optional_inputs_and_with_missing_required_ones(tmp_path):
  _workdir(tmp_path)
  shutil.rmtree(tmp_path / "eval" / "revisions")
  shutil.rmtree(tmp_path / "large_policy")
  shutil.rmtree(tmp_path / "eval" / "verifiers")
  report.run(load_config_module("report").get_config(), str(tmp_path))
  r = json.loads((tmp_path / "report" / "results.json").read_text())
  assert "note" in r["verifier_ranking"] and any("eval_verifiers" in n for n in r["notes"])
  assert r["num_problems"] == N and r["flops_matched"] == [] and r["revisions"]["pass1_by_step"] is None
  assert any("eval_revisions" in n for n in r["notes"]) and r["efficiency"]["revisions"]["ratio"] is None
  assert {f["number"]: f["status"] for f in r["findings"]}[5] == "not measurable"
  assert "no larger policy" in (tmp_path / "report" / "report.md").read_text()
  shutil.rmtree(tmp_path / "eval" / "search")
  with pytest.raises(FileNotFoundError, match="eval_search"):
    report.run(load_config_module("report").get_config(), str(tmp_path))
  (tmp_path / "difficulty" / "difficulty.json").unlink()
  with pytest.raises(FileNotFoundError, match="difficulty job"):
    report.run(load_config_module("report").get_config(), str(tmp_path))


def test_plot_curves_takes_results_json_keys(tmp_path):
  # results.json keys are strings, shifted budgets are not integers, and missing points are None.
  plots.plot_curves({"a": {"1": 0.2, "9.5": 0.4, "16": None}, "b": {2: 0.3}, "empty": {"4": None}},
                    str(tmp_path / "c.png"), title="t", dashed=("b",))
  assert (tmp_path / "c.png").stat().st_size > 0


def test_verifier_ranking_of_an_older_eval_verifiers_says_how_to_get_it(tmp_path):
  (tmp_path / "results.json").write_text(json.dumps({"curves": {}}))
  block, notes = report.load_verifier_ranking(str(tmp_path / "results.json"))
  assert block is None and "no `ranking` block" in notes[0] and "scores.jsonl is kept" in notes[0]


@pytest.mark.parametrize("case", ["worse", "equal", "missing"])
def test_report_warns_when_the_revisers_first_attempt_is_worse(tmp_path, case):
  # reviser_eval.json as train_reviser writes it -> eval_revisions' results.json (read_gate) -> report.md.
  from ttc_jax.revise import heldout
  _workdir(tmp_path)
  (tmp_path / "reviser").mkdir()
  policy = {f"validation-{i:06d}": (i % 4) / 4 for i in range(60)}
  reviser = {p: max(0.0, v - 0.25) for p, v in policy.items()} if case == "worse" else dict(policy)
  check = None
  if case != "missing":
    check = {"split": "validation", "problems": len(policy), "samples_per_problem": 4,
             **heldout.compare_first_attempts(reviser, policy)}
    (tmp_path / "reviser" / "reviser_eval.json").write_text(json.dumps({"first_attempt": check}))
  (tmp_path / "eval" / "revisions" / "results.json").write_text(json.dumps(
      {"reviser_check": heldout.read_gate(str(tmp_path / "reviser"))}))
  report.run(load_config_module("report").get_config(), str(tmp_path))
  md = (tmp_path / "report" / "report.md").read_text()
  section = md[md.index("## Revisions"):md.index("## Compute-optimal")]
  warning = "**Warning: the reviser's first attempt"
  first = section.split("\n")[2]  # The section's first line.
  if case == "worse":
    assert first.startswith(warning + " is worse than the policy's")
    assert check["high"] < 0 and "reviser 0.188 vs policy 0.375, difference -0.188" in first
    assert f"95% paired interval [{check['low']:+.3f}, {check['high']:+.3f}]" in first and "60 validation" in first
  elif case == "equal":
    assert warning not in md and first.startswith("Reviser's first attempt: not worse than the policy's")
  else:
    assert first.startswith(warning + " was not checked") and "reviser_eval.json does not exist" in first
