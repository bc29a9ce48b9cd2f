"""eval_search and eval_verifiers with an off-the-shelf verifier format on a benchmark task:
an hf: policy and an hf: Qwen2.5-Math-PRM-shaped verifier (tests/data/prm_goldens/qwen_prm) on the
MATH-500 fixture."""
import json
import os
import shutil

import pytest

from ttc_jax import shards
from ttc_jax.jobs import eval_search, eval_verifiers
from ttc_jax.testing.prm_goldens import GOLDEN_DIR
from ttc_jax.testing.tiny import load_config_module
from ttc_jax.testing.tiny_hf import write_hf_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRM = GOLDEN_DIR / "qwen_prm"
MATH500 = os.path.join(REPO, "tests", "data", "tasks", "math500", "test.jsonl")


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
  """A tiny random Qwen2 policy with the PRM's tokenizer: one vocabulary, so search can feed it on the device."""
  d = tmp_path_factory.mktemp("policy")
  vocab = json.loads((PRM / "config.json").read_text())["vocab_size"]
  write_hf_model(str(d), "qwen2", config_overrides={"vocab_size": vocab})
  for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copyfile(PRM / name, d / name)
  return d


def _task(config):
  config.task.update(name="math500", path=MATH500, prompt="chat")


def test_search_with_qwen_prm_format_on_math500(policy_dir, tmp_path):
  config = load_config_module("search_eval").get_config("smoke")
  _task(config)
  config.search_eval.update(policy=f"hf:{policy_dir}", prm=f"hf:{PRM}", prm_format="qwen_prm", num_problems=2,
                            budgets=(2,), strategies=("best_of_n", "beam:2"), max_step_tokens=6,
                            max_solution_tokens=24, max_rounds=4)
  eval_search.run(config, str(tmp_path))
  result = json.loads((tmp_path / "eval" / "search" / "results.json").read_text())
  assert set(result["curves"]) == {"best_of_n", "beam:2"} and result["config"]["prm_format"] == "qwen_prm"
  run_dir = tmp_path / "eval" / "search" / "beam_2" / "N2"
  assert json.loads((run_dir / "spec.json").read_text())["prm_format"] == "qwen_prm"
  records = shards.read_records(str(run_dir))
  assert [r["problem_id"] for r in records] == ["test/precalculus/1.json", "test/prealgebra/7.json"][:len(records)]
  scores = [s for r in records for c in r["candidates"] for s in c["step_scores"]]
  assert scores and all(0.0 <= s <= 1.0 for s in scores)


def test_search_rejects_an_unknown_format(tmp_path):
  config = load_config_module("search_eval").get_config("smoke")
  config.search_eval.prm_format = "qwen"
  with pytest.raises(ValueError, match="qwen"):
    eval_search.run(config, str(tmp_path))


def test_eval_verifiers_then_difficulty_with_qwen_prm_format(policy_dir, tmp_path):
  steps = [["We know sin 30 = 1/2.", "So the answer is \\boxed{\\frac{1}{2}}."], ["It is \\boxed{1}."]]
  records = [{"problem_id": f"p{i}", "question": "Evaluate $\\sin 30^\\circ$.", "answer": "\\frac{1}{2}",
              "samples": [{"steps": s, "extracted": a, "correct": a == "\\frac{1}{2}", "num_tokens": 9}
                          for s, a in zip(steps, ["\\frac{1}{2}", "1"])]} for i in range(2)]
  shards.run_sharded(str(tmp_path / "samples" / "test"), 1, lambda i: records, spec={})
  config = load_config_module("verifier_eval").get_config()
  config.verifier_eval.update(prm=f"hf:{PRM}", orm=f"hf:{PRM}", prm_format="qwen_prm", orm_format="qwen_prm",
                              batch_size=4)
  eval_verifiers.run(config, str(tmp_path))
  lines = [json.loads(l) for l in (tmp_path / "eval" / "verifiers" / "scores.jsonl").read_text().splitlines()]
  assert [len(s) for s in lines[0]["prm_steps"]] == [2, 1]
  assert all(0.0 <= x <= 1.0 for line in lines for s in line["prm_steps"] for x in s)
  assert lines[0]["prm_steps"] == lines[1]["prm_steps"]  # Same question and steps: same scores.

  # difficulty counts the verifier's tokens in its own layout (the format recorded by eval_verifiers).
  from ttc_jax import export
  from ttc_jax.jobs import difficulty
  from ttc_jax.verify.formats import get_format
  config = load_config_module("difficulty").get_config()
  config.difficulty.update(samples="samples/test", policy=f"hf:{policy_dir}", num_bins=1)
  difficulty.run(config, str(tmp_path))
  result = json.loads((tmp_path / "difficulty" / "difficulty.json").read_text())
  tok = export.tokenizer_in(str(PRM))
  want = sum(len(get_format("qwen_prm").encode(tok, records[0]["question"], s)[0]) for s in steps)
  assert result["cost"]["per_problem"]["verifier_tokens"] == want  # The mean over two identical problems.
