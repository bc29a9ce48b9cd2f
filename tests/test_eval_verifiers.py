"""The verifier evaluation job on hand-made samples and tiny random verifiers."""
import json
import os

import pytest

from ttc_jax import shards
from ttc_jax.jobs import eval_verifiers
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import load_config_module, export_tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(arg="smoke"):
  return load_config_module("verifier_eval").get_config(arg)


def _sample(answer, correct):
  text = f"2 + 3 = {answer}\nThe answer is {answer}."
  return {"text": text, "steps": text.split("\n"), "extracted": answer, "correct": correct, "num_tokens": 12,
          "stop_reason": 1}


def _problem(i, answers, right):
  return {"problem_id": f"test-{i:06d}", "question": "Start with 2. Add 3. What is the result?", "answer": right,
          "num_steps": 1, "max_operand": 9, "ops": "+", "samples": [_sample(a, a == right) for a in answers]}


@pytest.fixture
def workdir(tmp_path):
  records = [_problem(0, ["5", "6", "6", "6"], "5"),  # majority wrong, pass@4 right
             _problem(1, ["5", "5", "5", "4"], "5"),  # majority right
             _problem(2, ["7", "8", "9", "1"], "5")]  # never right
  shards.run_sharded(str(tmp_path / "samples" / "test"), 2, lambda i: records[i * 2:(i + 1) * 2], spec={})
  tokenizer = load_tokenizer()
  for stage, seed in (("prm", 0), ("orm", 1)):
    export_tiny_model(str(tmp_path / stage), tokenizer, seed=seed, scalar_head=True, lm_head=False)
  return tmp_path


def test_curves_scores_and_plot(workdir):
  eval_verifiers.run(_config(), str(workdir))
  out = workdir / "eval" / "verifiers"
  result = json.loads((out / "results.json").read_text())
  assert result["num_problems"] == 3 and result["samples_per_problem"] == 4
  assert set(result["curves"]) == {*eval_verifiers.SELECTORS, "pass@N"}
  assert all(list(c) == ["1", "2", "4"] for c in result["curves"].values())
  assert result["curves"]["majority"]["4"] == pytest.approx(1 / 3)
  assert result["curves"]["pass@N"]["4"] == pytest.approx(2 / 3)
  for curve in result["curves"].values():  # every selector picks among the samples: never above pass@N
    assert curve["4"] <= result["curves"]["pass@N"]["4"] + 1e-9
  lines = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
  assert [len(line["prm_steps"]) for line in lines] == [4, 4, 4]
  assert all(len(steps) == 2 and all(0 <= s <= 1 for s in steps) for line in lines for steps in line["prm_steps"])
  assert (out / "accuracy_vs_n.png").stat().st_size > 1000
  # Within-question ranking of every verifier score: problems 0 and 1 have both classes, problem 2 is all wrong.
  rank = result["ranking"]
  assert set(rank["verifiers"]) == set(rank["per_question"]) == {"orm", "prm_last", "prm_min", "prm_prod"}
  assert rank["num_bins"] == 5 and rank["target_auroc"] == 0.85
  for name, summary in rank["verifiers"].items():
    overall = summary["overall"]
    assert (overall["questions"], overall["used"], overall["all_correct"], overall["all_wrong"]) == (3, 2, 0, 1)
    assert 0 <= overall["auroc"]["low"] <= overall["auroc"]["mean"] <= overall["auroc"]["high"] <= 1
    assert sum(b["questions"] for b in summary["by_bin"].values()) == 3
    assert set(overall["log_loss"]) == {"verifier", "pass_rate", "pass_rate_in_sample", "difference",
                                      "difference_in_sample"}
    per_q = rank["per_question"][name]
    assert per_q["test-000002"]["auroc"] is None and per_q["test-000000"]["correct"] == 1
  scores = {"orm": [s[-1] for s in lines[0]["orm_steps"]], "prm_last": [s[-1] for s in lines[0]["prm_steps"]]}
  for name, s in scores.items():  # by hand: the one correct sample (the first) against the three wrong ones
    assert rank["per_question"][name]["test-000000"]["auroc"] == pytest.approx(
        sum((s[0] > x) + 0.5 * (s[0] == x) for x in s[1:]) / 3)
  assert (out / "auroc_by_bin.png").stat().st_size > 1000
  # Selectors against majority vote, question by question: the per-question hit rates average to the curves.
  selection = rank["selection"]
  assert selection["n"] == 4 and set(selection["versus_majority"]) == set(eval_verifiers.SELECTORS) - {"majority"}
  hits = selection["per_question"]["prm_last_weighted"]["4"]
  assert sum(hits.values()) / 3 == pytest.approx(result["curves"]["prm_last_weighted"]["4"])
  contrast = selection["versus_majority"]["prm_last_weighted"]["all"]
  majority = selection["per_question"]["majority"]["4"]
  assert contrast["n"] == 3 and contrast["difference"] == pytest.approx(sum(hits[p] - majority[p] for p in hits) / 3)
  assert set(selection["best_rises"]) == {"prm_last_best"}
  # These are arith questions, so every line has an exact label: "2 + 3 = 5" is right, "2 + 3 = 6" is the first
  # wrong line; problem 2's samples are all wrong at line 1 and problem 1's three right ones give the positives.
  lines_block = rank["first_wrong_line"]["per_question"]
  prm0 = lines[0]["prm_steps"]  # problem 0: sample 0 right (2 lines), samples 1-3 wrong at their first line
  positives, negatives = prm0[0], [s[0] for s in prm0[1:]]
  assert lines_block["test-000000"] == pytest.approx(
      sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives) / (len(positives) * len(negatives)))
  assert lines_block["test-000002"] is None  # no right line to compare with
  mtime = (out / "results.json").stat().st_mtime_ns
  eval_verifiers.run(_config(), str(workdir))  # finished: skipped
  assert (out / "results.json").stat().st_mtime_ns == mtime


def test_missing_samples_names_the_job_to_run(tmp_path):
  with pytest.raises(FileNotFoundError, match="configs/samples.py:test"):
    eval_verifiers.run(_config(), str(tmp_path))
