"""Search against off-the-shelf verifiers: device-fed and host-retokenised scores agree with each other
and with the transformers reference (tests/data/prm_goldens), and every format runs end to end."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import export
from ttc_jax.decode import sampler
from ttc_jax.models import Transformer
from ttc_jax.parallel import MeshConfig, make_mesh
from ttc_jax.search import verifier_feed
from ttc_jax.search.config import SearchConfig
from ttc_jax.search.run import run_search
from ttc_jax.tasks.grading import ExactAnswerGrader
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing import prm_goldens
from ttc_jax.testing.prm_goldens import GOLDEN_DIR, SCORE_ATOL, golden_cases
from ttc_jax.testing.scripted import ForcedTokens, LogitBias, scripted_config
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.tokenization.steps import PARAGRAPH_STEPS
from ttc_jax.verify.formats import get_format

DEVICE_FORMATS = ("qwen_prm", "rlhflow", "skywork")
SIZES = dict(max_rounds=4, max_step_tokens=40, max_solution_tokens=160)


@pytest.fixture(scope="module")
def verifiers():
  mesh = make_mesh(MeshConfig(), jax.devices()[:1])
  return {fmt: export.load_hf(str(GOLDEN_DIR / fmt), mesh) for fmt in prm_goldens.SPECS}


def _policy_script(tok, steps, split: bool) -> tuple[int, ...]:
  """The policy's tokens of a "\\n\\n"-delimited solution ending in EOS; `split` writes every "\\n\\n"
  as two "\\n" tokens (a vocabulary where the delimiter straddles tokens) instead of the merged ids."""
  ids = tok.encode("\n\n".join(steps))
  if split:
    nl, nlnl, dot_nlnl, dot = (tok.encode(t)[0] for t in ("\n", "\n\n", ".\n\n", "."))
    ids = [x for t in ids for x in ([nl, nl] if t == nlnl else [dot, nl, nl] if t == dot_nlnl else [t])]
    assert len(ids) > len(tok.encode("\n\n".join(steps)))
  return tuple(ids) + (tok.eos_id,)


def _forced_search(verifier, fmt, feed, split=False, mesh=None):
  """Both golden examples, each as one problem, the policy forced to write its steps."""
  tok = verifier.tokenizer
  cases = golden_cases(fmt)
  prompts = [tok.encode("Q: " + c["problem"] + "\n") for c in cases]
  length = max(len(p) for p in prompts)
  scripts = tuple(_policy_script(tok, c["steps"], split) for c in cases)
  # ForcedTokens counts from each row's prompt length: pad prompts to one length with leading text.
  prompts = [tok.encode(" " * (length - len(p))) + p for p in prompts]
  # Budget 1: row b of the prefill (per problem) and of the search (per candidate) is problem b's script.
  policy = ForcedTokens(scripted_config(vocab_size=verifier.model.cfg.vocab_size), length, scripts)
  cfg = SearchConfig(method="best_of_n", budget=1, **SIZES)
  return run_search(policy, {}, verifier.model, verifier.params, tok, ExactAnswerGrader(), prompts,
                    jax.random.key(0), cfg=cfg, batch_size=2, buckets=(64,), step_format=PARAGRAPH_STEPS,
                    verifier_format=get_format(fmt), problems=[c["problem"] for c in cases],
                    verifier_feed_mode=feed, verifier_buckets=(128,), mesh=mesh)


def _step_scores(records):
  return [[c["step_scores"] for c in r["candidates"]] for r in records]


# The split delimiter ("\n" "\n" where the vocabulary has "\n\n") once: the feed's tables do not depend on the format.
@pytest.mark.parametrize("fmt,split", [(f, False) for f in DEVICE_FORMATS] + [("qwen_prm", True)])
def test_device_and_host_feeds_give_the_reference_scores(verifiers, fmt, split):
  records = {feed: _forced_search(verifiers[fmt], fmt, feed, split) for feed in ("device", "host")}
  for feed, recs in records.items():
    for record, case in zip(recs, golden_cases(fmt)):
      for cand in record["candidates"]:
        assert cand["steps"] == case["steps"] and cand["finished"], (feed, cand)
        np.testing.assert_allclose(cand["step_scores"], case["scores"], atol=SCORE_ATOL, rtol=0, err_msg=feed)
  # Same ids and positions; the two feeds size and advance the verifier's cache differently, so attention
  # reduces over different slot counts: float32 rounding, 2.3e-6 at most measured.
  np.testing.assert_allclose(np.asarray(_step_scores(records["device"])), np.asarray(_step_scores(records["host"])),
                             atol=1e-5)
  # Step tokens fed to the verifier: the same in both modes (rlhflow's question is in the verifier's prompt
  # in both, not in every round's block).
  for dev, host in zip(records["device"], records["host"]):
    assert host["budget"]["prm_tokens"] == dev["budget"]["prm_tokens"] > 0


def test_math_shepherd_is_fed_through_the_host(verifiers):
  with pytest.raises(ValueError, match="not constant around a step"):
    _forced_search(verifiers["math_shepherd"], "math_shepherd", "device")
  for record, case in zip(_forced_search(verifiers["math_shepherd"], "math_shepherd", "auto"), golden_cases("math_shepherd")):
    for cand in record["candidates"]:
      np.testing.assert_allclose(cand["step_scores"], case["scores"], atol=SCORE_ATOL, rtol=0)


def test_auto_feeds_on_the_device_only_with_the_same_vocabulary(verifiers, tmp_path):
  qwen = verifiers["qwen_prm"]
  spec = lambda policy_tok: verifier_feed.verifier_spec(
      get_format("qwen_prm"), qwen.tokenizer, policy_tok, PARAGRAPH_STEPS, max_step_tokens=8, max_solution_tokens=32,
      max_rounds=4)
  assert spec(qwen.tokenizer).mode == "device"
  assert spec(load_tokenizer(str(GOLDEN_DIR / "qwen_prm"))).mode == "device"  # Another object, same vocabulary.
  assert spec(load_tokenizer(str(GOLDEN_DIR / "rlhflow"))).mode == "host"
  assert spec(load_tokenizer(str(GOLDEN_DIR / "rlhflow"))).block >= 16


def test_host_overflow_is_an_error(verifiers):
  verifier = verifiers["skywork"]
  tok = verifier.tokenizer
  case = golden_cases("skywork")[0]
  prompt = tok.encode("Q: x\n")
  policy = ForcedTokens(scripted_config(vocab_size=verifier.model.cfg.vocab_size), len(prompt),
                        (_policy_script(tok, case["steps"], False),))
  cfg = SearchConfig(method="best_of_n", budget=1, **SIZES)
  original = verifier_feed.verifier_spec

  def tiny_blocks(*args, **kwargs):
    spec = original(*args, **kwargs)
    return dataclasses.replace(spec, block=8, host=dataclasses.replace(spec.host, block=8))

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(verifier_feed, "verifier_spec", tiny_blocks)
    with pytest.raises(ValueError, match="did not fit its block of 8 ids"):
      run_search(policy, {}, verifier.model, verifier.params, tok, ExactAnswerGrader(), [prompt],
                 jax.random.key(0), cfg=cfg, batch_size=1, buckets=(len(prompt),), step_format=PARAGRAPH_STEPS,
                 verifier_format=get_format("skywork"), problems=[case["problem"]], verifier_feed_mode="host",
                 verifier_buckets=(128,))


# Lookahead (rollouts, then both caches rewound to their own indices) once per feed mode: device and host.
@pytest.mark.parametrize("fmt,method", [(f, "beam") for f in sorted(prm_goldens.SPECS)]
                         + [("rlhflow", "lookahead"), ("math_shepherd", "lookahead")])
def test_search_with_a_tiny_policy_runs_end_to_end(verifiers, fmt, method):
  """A random tiny Transformer policy (nudged towards "\\n\\n" and EOS) searches against each verifier."""
  verifier = verifiers[fmt]
  tok = verifier.tokenizer
  policy = Transformer(tiny_model_config(vocab_size=verifier.model.cfg.vocab_size, max_len=256))
  params = nn.unbox(jax.jit(policy.init)(jax.random.key(3), jnp.zeros((1, 8), jnp.int32)))
  nlnl, dot_nlnl = tok.encode("\n\n")[0], tok.encode(".\n\n")[0]
  biased = LogitBias(policy, ((nlnl, 3.0), (dot_nlnl, 2.0), (tok.eos_id, 1.5)))
  cfg = SearchConfig(method=method, budget=4, beam_width=2, lookahead=1 if method == "lookahead" else 0,
                     max_rounds=3, max_step_tokens=6, max_solution_tokens=24)
  problems = [c["problem"] for c in golden_cases(fmt)]
  records = run_search(biased, params, verifier.model, verifier.params, tok, ExactAnswerGrader(),
                       ["Q: " + p + "\n" for p in problems], jax.random.key(1), cfg=cfg, batch_size=2,
                       buckets=(32,), step_format=PARAGRAPH_STEPS, verifier_format=get_format(fmt),
                       problems=problems, references=["5", "14"], verifier_buckets=(128,))
  assert len(records) == 2
  scored = 0
  for record in records:
    assert record["rounds"] >= 1 and record["budget"]["prm_tokens"] > 0
    for cand in record["candidates"]:
      assert all(0.0 <= x <= 1.0 for x in cand["step_scores"])
      scored += len(cand["step_scores"])
      if cand["step_scores"]:
        assert cand["score"] == cand["step_scores"][-1]
  assert scored > 0
  assert sampler.STOP_NONE == 0  # device_block treats stop reason 0 as "nothing sampled".


@pytest.mark.parametrize("feed", ["device", "host"])
def test_feeds_shard_the_problems_over_a_mesh(feed):
  """Both feeds with the problems split over two devices (the host callback sees each device's rows) score
  as on one device: the reference scores."""
  fmt = "rlhflow"
  mesh = make_mesh(MeshConfig(data=2), jax.devices()[:2])
  verifier = export.load_hf(str(GOLDEN_DIR / fmt), mesh)
  records = _forced_search(verifier, fmt, feed, mesh=mesh)
  assert len(records) == 2
  for record, case in zip(records, golden_cases(fmt)):
    for cand in record["candidates"]:
      assert cand["steps"] == case["steps"] and cand["finished"], cand
      np.testing.assert_allclose(cand["step_scores"], case["scores"], atol=SCORE_ATOL, rtol=0)
