"""eval_revisions with an off-the-shelf verifier format: each attempt scored alone after the question.

A tiny random reviser (the synthetic task's tokenizer) and the tiny hf: Qwen2.5-Math-PRM stand-in of
tests/data/prm_goldens/qwen_prm (its own tokenizer: the attempts are re-tokenised on the host)."""
import json

import jax
import pytest

from ttc_jax import shards
from ttc_jax.jobs import eval_revisions
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.prm_goldens import GOLDEN_DIR
from ttc_jax.testing.tiny import export_tiny_model, load_config_module
from ttc_jax.tokenization.steps import LINE_STEPS, PARAGRAPH_STEPS
from ttc_jax.verify.scoring import aggregate
from ttc_jax.verify.verifier import load_verifier

PRM = GOLDEN_DIR / "qwen_prm"


@pytest.fixture(scope="module")
def qwen_prm():
  return load_verifier(f"hf:{PRM}", make_mesh(MeshConfig(), jax.devices()[:1]), "qwen_prm")


def _config(**overrides):
  c = load_config_module("revision_eval").get_config("smoke")
  c.revision_eval.update({**dict(num_problems=2, budgets=(2,), max_new_tokens=16, problems_per_shard=2,
                                 batch_size=4, verifier_batch_size=4, verifier=f"hf:{PRM}",
                                 verifier_format="qwen_prm"), **overrides})
  return c


def test_offshelf_scores_are_the_prm_scores_of_attempts_alone(tmp_path, qwen_prm):
  export_tiny_model(str(tmp_path / "reviser"), load_tokenizer())
  eval_revisions.run(_config(), str(tmp_path))
  out = tmp_path / "eval" / "revisions"
  result = json.loads((out / "results.json").read_text())
  assert result["config"]["verifier_format"] == "qwen_prm" and result["verifier_format"] == "qwen_prm"
  assert result["verifier_scoring"] == "standalone"
  assert "weighted_hierarchical" in result["methods"]
  for name in result["settings"]:
    assert json.loads((out / name / "spec.json").read_text())["verifier_format"] == "qwen_prm"
    records = shards.read_records(str(out / name))
    assert len(records) == 2
    fed = 0
    for r in records:
      assert r["verifier_format"] == "qwen_prm" and r["primary_method"] == "weighted_hierarchical"
      texts = [t for chain in r["chains"] for t in chain]
      steps = [LINE_STEPS.split_text(t) for t in texts]  # The synthetic task's steps: lines.
      want = [aggregate(s, "last") for s in qwen_prm.score([r["question"]] * len(texts), steps, batch_size=4)]
      assert [s for chain in r["scores"] for s in chain] == pytest.approx(want, abs=1e-6)
      assert [c["score"] for c in r["candidates"]] == pytest.approx(want, abs=1e-6)
      tokens = sum(len(qwen_prm.fmt.encode(qwen_prm.tokenizer, r["question"], s)[0]) for s in steps if s)
      assert r["budget"]["verifier_tokens"] == tokens
      fed += sum(bool(s) for s in steps)
    assert fed  # The random reviser wrote some text: something was scored.


def test_offshelf_split_uses_the_tasks_delimiter(qwen_prm):
  """Paragraph steps ("\\n\\n") stay whole: a line break inside a step does not cut it."""
  chains = [[["Add 2 and 3.\nThat is 5.\n\nThe answer is \\boxed{5}.", ""], ["It is \\boxed{6}.", "x\n\ny\n\nz"]]]
  scores, tokens = eval_revisions.score_standalone(qwen_prm, ["What is 2 + 3?"], chains, PARAGRAPH_STEPS,
                                                   batch_size=4)
  steps = [["Add 2 and 3.\nThat is 5.", "The answer is \\boxed{5}."], [], ["It is \\boxed{6}."], ["x", "y", "z"]]
  step_scores = qwen_prm.score(["What is 2 + 3?"] * 4, steps, batch_size=4)
  assert [len(s) for s in step_scores] == [2, 0, 1, 3]
  assert scores == [[[step_scores[0][-1], 0.0], [step_scores[2][-1], step_scores[3][-1]]]]
  assert tokens == [sum(len(qwen_prm.fmt.encode(qwen_prm.tokenizer, "What is 2 + 3?", s)[0]) for s in steps if s)]


def test_verifier_format_errors_name_the_field():
  with pytest.raises(ValueError, match=r"revision_eval\.verifier_format='qwen'.*qwen_prm"):
    eval_revisions.RevisionEvalConfig(verifier="hf:/x", verifier_format="qwen")
  with pytest.raises(ValueError, match=r"revision_eval\.verifier_format='skywork'.*revision_eval\.verifier is ''"):
    eval_revisions.RevisionEvalConfig(verifier_format="skywork")
  assert eval_revisions.RevisionEvalConfig().verifier_format == "ttc"
