"""Off-the-shelf verifier formats against their reference implementations (transformers + torch).

tests/data/prm_goldens/<format>/ holds a tiny random model with the published head, a tokenizer
with the format's special tokens and the reference ids / read positions / step scores that
tests/tools/make_prm_goldens.py computed the way each model card does. These tests run without
torch; with torch installed the reference is also recomputed live.
"""
import os

import jax
import numpy as np
import pytest

from ttc_jax import export
from ttc_jax.models import hf
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.prm_goldens import GOLDEN_DIR, SCORE_ATOL, SPECS, golden_cases
from ttc_jax.testing.tiny import load_file_module
from ttc_jax.verify.formats import FORMATS, LLAMA3_USER, get_format
from ttc_jax.verify.scoring import score_steps

_HEADS = {"qwen_prm": dict(classifier_classes=2, lm_head=False, scalar_head=False),
          "math_shepherd": dict(lm_head=True, scalar_head=False, classifier_classes=0),
          "rlhflow": dict(lm_head=True, scalar_head=False, classifier_classes=0),
          "skywork": dict(lm_head=True, scalar_head=True, value_head_hf="v_head.summary", classifier_classes=0)}


@pytest.fixture(scope="module")
def loaded():
  mesh = make_mesh(MeshConfig(), jax.devices()[:1])
  cache = {}

  def get(fmt):
    if fmt not in cache:
      cache[fmt] = export.load_hf(str(GOLDEN_DIR / fmt), mesh)
    return cache[fmt]

  return get


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_segments_equal_the_reference_encoding(fmt):
  """Prompt + one segment per step (what a search feeds incrementally) is the reference full encoding."""
  tok = load_tokenizer(str(GOLDEN_DIR / fmt))
  f = get_format(fmt)
  for case in golden_cases(fmt):
    ids = f.prompt_ids(tok, case["problem"])
    reads = []
    for i, step in enumerate(case["steps"]):
      seg, read = f.step_ids(tok, case["problem"], i, step)
      ids += seg
      reads.append(len(ids) + read)
    # The reference string may go on after the last step (Qwen's template closes the assistant turn with
    # "<|im_end|>\n"): nothing there is read, and attention is causal, so no score depends on it.
    tail = case["ids"][len(ids):]
    assert ids == case["ids"][:len(ids)], fmt
    assert tail == (tok.encode("<|im_end|>\n") if fmt == "qwen_prm" else []), fmt
    assert reads == case["reads"], fmt
    assert f.encode(tok, case["problem"], case["steps"]) == (ids, reads)


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_feed_segments_equal_the_reference_encoding(fmt):
  """What a search feeds (`feed_prompt_ids`, then `feed_step_ids` per step) is the reference full encoding too."""
  tok = load_tokenizer(str(GOLDEN_DIR / fmt))
  f = get_format(fmt)
  for case in golden_cases(fmt):
    ids, reads = f.feed_prompt_ids(tok, case["problem"]), []
    for i, step in enumerate(case["steps"]):
      seg, read = f.feed_step_ids(tok, case["problem"], i, step)
      ids += seg
      reads.append(len(ids) + read)
    assert ids == case["ids"][:len(ids)] and reads == case["reads"], fmt
    # rlhflow's step 0 segment holds no question: a search's per-round block stays the size of a step.
    seg0 = f.feed_step_ids(tok, case["problem"], 0, case["steps"][0])[0]
    assert len(seg0) == len(f.step_ids(tok, case["problem"], 0, case["steps"][0])[0]) - (
        len(tok.encode(LLAMA3_USER + case["problem"])) if fmt == "rlhflow" else 0)


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_head_is_recognised_from_the_checkpoint(fmt):
  cfg, _ = hf.read_hf_config(str(GOLDEN_DIR / fmt))
  for field, value in _HEADS[fmt].items():
    assert getattr(cfg, field) == value, (fmt, field)


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_scores_equal_the_reference(fmt, loaded):
  model = loaded(fmt)
  cases = golden_cases(fmt)
  scores = score_steps(model.model, model.params, model.tokenizer, [c["problem"] for c in cases],
                       [c["steps"] for c in cases], batch_size=2, buckets=(128, 256), fmt=get_format(fmt))
  np.testing.assert_allclose(np.concatenate(scores), np.concatenate([c["scores"] for c in cases]),
                             atol=SCORE_ATOL, rtol=0)


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_heads_round_trip_through_an_hf_export(fmt, loaded, tmp_path):
  """Saving writes the head tensors under their published names; loading them back gives the same scores."""
  model = loaded(fmt)
  hf.save_hf_checkpoint(str(tmp_path), model.params, model.model.cfg, str(GOLDEN_DIR / fmt))
  names = set(hf.Checkpoint(str(tmp_path)).names())
  assert names == set(hf.Checkpoint(str(GOLDEN_DIR / fmt)).names())
  again = export.load_hf(str(tmp_path), make_mesh(MeshConfig(), jax.devices()[:1]))
  assert again.model.cfg == model.model.cfg
  leaves = jax.tree_util.tree_leaves_with_path(model.params)
  for (path, a), b in zip(leaves, jax.tree_util.tree_leaves(again.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))


def test_registry_names_every_format():
  assert sorted(FORMATS) == ["math_shepherd", "qwen_prm", "rlhflow", "skywork", "ttc"]
  with pytest.raises(ValueError, match="qwen_prm"):
    get_format("qwen")


def _reference_tool():
  return load_file_module(os.path.join("tests", "tools", "make_prm_goldens.py"), "make_prm_goldens")


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_live_reference_matchesgolden_cases(fmt):
  """The stored goldens are what the installed transformers + torch compute today."""
  pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  tool = _reference_tool()
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(GOLDEN_DIR / fmt))
  model = tool.build_model(fmt, str(GOLDEN_DIR / fmt))
  for case in golden_cases(fmt):
    ids, reads = tool.reference_inputs(fmt, tokenizer, case["problem"], case["steps"])
    assert (ids, reads) == (case["ids"], case["reads"])
    np.testing.assert_allclose(tool.reference_scores(fmt, model, tokenizer, ids, reads), case["scores"], atol=1e-6)


def test_load_verifier_checks_the_head():
  from ttc_jax.verify.verifier import load_verifier
  mesh = make_mesh(MeshConfig(), jax.devices()[:1])
  prm = load_verifier("hf:" + str(GOLDEN_DIR / "skywork"), mesh, "skywork")
  case = golden_cases("skywork")[0]
  np.testing.assert_allclose(prm.score([case["problem"]], [case["steps"]], batch_size=1, buckets=(128,))[0],
                             case["scores"], atol=SCORE_ATOL, rtol=0)
  assert prm.search_kwargs([case["problem"]])["verifier_format"] is get_format("skywork")
  with pytest.raises(ValueError, match="classifier_classes"):  # Skywork has no two-class head.
    load_verifier("hf:" + str(GOLDEN_DIR / "skywork"), mesh, "qwen_prm")
