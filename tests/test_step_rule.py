"""The step delimiter's stop rule: per-vocabulary tables, the sampler's device check, host splitting.

A byte-level tokenizer whose vocabulary has "\n" (byte 10), "\n\n" and ".\n\n" as
tokens; a scripted model forces each row's ids, so the test reads exactly where the
sampler's on-device rule stopped a row.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttc_jax import decode
from ttc_jax.decode import sampler
from ttc_jax.search import prm as prm_lib
from ttc_jax.tasks.tokenizer import load_tokenizer as load_shipped
from ttc_jax.testing.hf_tokenizers import byte_bpe_dir
from ttc_jax.testing.reference import naive_sample
from ttc_jax.testing.scripted import ForcedTokens, ScriptedPRM, scripted_config
from ttc_jax.tokenization import LINE_STEPS, PARAGRAPH_STEPS, StepFormat, StopRule, load_tokenizer
from ttc_jax.tokenization.steps import texts_tables

NL, A, B, DOT = 10, ord("a"), ord("b"), ord(".")
NLNL, DOT_NLNL, EOS = 256, 257, 258
PROMPT = [A, B, A]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
  d = byte_bpe_dir(tmp_path_factory.mktemp("tok"), merges=[("Ċ", "Ċ"), (".", "ĊĊ")], specials=["<eos>"],
                   eos="<eos>")
  t = load_tokenizer(d)
  assert t.encode("\n\n") == [NLNL] and t.encode(".\n\n") == [DOT_NLNL] and t.encode("\n") == [NL]
  assert t.eos_ids == {EOS}
  return t


def test_tables():
  texts = ["a", "\n", "\n\n", ".\n\n", "x\n", "\ny", "a\n\nb", ""]
  contains, head, tail = texts_tables(texts, "\n\n")
  np.testing.assert_array_equal(contains, [0, 0, 1, 1, 0, 0, 1, 0])
  np.testing.assert_array_equal(head, [[0, 1, 1, 1, 1, 0, 0, 0]])
  np.testing.assert_array_equal(tail, [[0, 1, 1, 0, 0, 1, 0, 0]])
  contains, head, _ = texts_tables(texts, "\n")
  np.testing.assert_array_equal(contains, [0, 1, 1, 1, 1, 1, 1, 0])
  assert head.shape == (0, len(texts))


def _model_and_cfg(tok, script, stop_at_step, max_new):
  model = ForcedTokens(scripted_config(vocab_size=tok.vocab_size), len(PROMPT), tuple(map(tuple, script)))
  return model, decode.SamplingConfig(temperature=0.0, max_new_tokens=max_new, stop_at_newline=stop_at_step)


def _forced(tok, script, rule, stop_at_step=True, max_new=6):
  model, cfg = _model_and_cfg(tok, script, stop_at_step, max_new)
  tokens, valid = decode.left_pad([PROMPT] * len(script), tok.pad_id, buckets=(len(PROMPT),))
  out = jax.device_get(decode.jit_sample(model, 1, cfg, rule, tok.pad_id)({}, tokens, valid, jax.random.key(0)))
  ref = naive_sample(model, {}, tokens, valid, jax.random.key(0), num_samples=1, cfg=cfg, stop=rule,
                     pad_id=tok.pad_id)
  np.testing.assert_array_equal(out.tokens_BxN, ref)  # The host reference reads the same tables.
  return out


SCRIPT = [
    [A, NLNL, B],  # "\n\n" as one token.
    [A, DOT_NLNL, B],  # ".\n\n": merged with the text before it.
    [A, NL, NL, B],  # "\n" then "\n": two tokens.
    [A, NL, B, NL, EOS],  # "\n" alone does not end a "\n\n" step.
    [NL, B, EOS],  # A step's first "\n" has no previous token to pair with (the prompt's does not count).
]


def test_paragraph_steps_end_on_the_device(tok):
  out = _forced(tok, SCRIPT, PARAGRAPH_STEPS.rule(tok))
  np.testing.assert_array_equal(out.lengths_B, [2, 2, 3, 5, 3])
  np.testing.assert_array_equal(out.stop_reason_B, [sampler.STOP_STEP] * 3 + [sampler.STOP_EOS] * 2)


def test_line_steps_end_at_every_newline(tok):
  out = _forced(tok, SCRIPT, LINE_STEPS.rule(tok))
  np.testing.assert_array_equal(out.lengths_B, [2, 2, 2, 2, 1])
  np.testing.assert_array_equal(out.stop_reason_B, [sampler.STOP_STEP] * 5)


def test_without_step_stops_only_eos_ends(tok):
  out = _forced(tok, SCRIPT, PARAGRAPH_STEPS.rule(tok), stop_at_step=False)
  np.testing.assert_array_equal(out.stop_reason_B, [sampler.STOP_LENGTH] * 3 + [sampler.STOP_EOS] * 2)


def test_eos_is_a_set_and_padded_vocabulary_rows_never_stop(tok):
  rule = StopRule.from_ids(tok.vocab_size + 4, [EOS, B])
  out = _forced(tok, [[A, B, A], [A, A, EOS]], rule)
  np.testing.assert_array_equal(out.lengths_B, [2, 3])
  wide = PARAGRAPH_STEPS.rule(tok, vocab_size=tok.vocab_size + 5)
  assert wide.eos_V.shape == (tok.vocab_size + 5,)
  beyond = jnp.asarray([tok.vocab_size + 2, tok.vocab_size + 100])
  assert not wide.is_eos(beyond).any() and not wide.ends_step(jnp.asarray([NL, NL]), beyond).any()


def test_one_compile_for_rules_of_one_shape(tok):
  """The tables are arguments of the compiled program: other tables of the same shape reuse it."""
  paragraph = PARAGRAPH_STEPS.rule(tok)
  _forced(tok, SCRIPT[:2], paragraph)
  model, cfg = _model_and_cfg(tok, SCRIPT[:2], True, 6)
  program = sampler._jit_sample(model, 1, cfg, tok.pad_id)  # The cached program _forced ran.
  compiled = program._cache_size()
  _forced(tok, SCRIPT[:2], paragraph.replace(contains_V=~paragraph.contains_V))
  assert program._cache_size() == compiled
  _forced(tok, SCRIPT[:2], StepFormat("\n\n\n").rule(tok))  # Two cuts: another shape compiles anew.
  assert program._cache_size() == compiled + 1


def test_rules_are_cached_per_tokenizer(tok):
  assert PARAGRAPH_STEPS.rule(tok) is PARAGRAPH_STEPS.rule(tok)
  assert PARAGRAPH_STEPS.rule(tok).delimiter_id == NLNL
  assert LINE_STEPS.rule(tok).delimiter_id == NL


def test_shipped_tokenizer_rule_is_the_newline_id():
  t = load_shipped()
  rule = LINE_STEPS.rule(t)
  np.testing.assert_array_equal(np.flatnonzero(np.asarray(rule.contains_V)), [t.newline_id])
  np.testing.assert_array_equal(np.flatnonzero(np.asarray(rule.eos_V)), [t.eos_id])
  assert rule.delimiter_id == t.newline_id and rule.head_KxV.shape == (0, t.vocab_size)


def test_host_split_follows_the_policy_tokens(tok):
  ids = [A, DOT_NLNL, B, NL, NL, A, NL, B, NLNL, NLNL, A, EOS, B, NLNL]
  assert PARAGRAPH_STEPS.split(tok, ids) == ["a.", "b", "a\nb", "a"]
  # Re-encoding the text would not give these ids: "a.\n\nb\n\n" encodes "\n\n" as one token.
  assert tok.encode("b\n\n") != [B, NL, NL]
  assert LINE_STEPS.split(tok, [A, NL, B, NL, NL, A, EOS]) == ["a", "b", "a"]
  t = load_shipped()
  text = "1 + 2 = 3\n3 * 4 = 12\nThe answer is 12."
  from ttc_jax.tasks import synthetic
  assert LINE_STEPS.split(t, t.encode(text) + [t.eos_id]) == synthetic.solution_steps(text)


def test_prm_feed_without_a_one_token_delimiter(tok):
  """One-token delimiter: EOS is fed as the delimiter. Otherwise EOS is not fed and the score is read before it."""
  prm = ScriptedPRM(scripted_config(vocab_size=tok.vocab_size, scalar_head=True), first_content=A, cumulative=True)
  step = jnp.asarray([[A, B, EOS, 0], [A, NL, NL, 0]], jnp.int32)
  lengths, reasons = jnp.asarray([3, 3]), jnp.asarray([sampler.STOP_EOS, sampler.STOP_STEP])
  values = {"values": jnp.zeros((tok.vocab_size,)).at[B - A].set(1.0).at[EOS - A].set(100.0)}
  tokens, valid = decode.left_pad([PROMPT] * 2, tok.pad_id, buckets=(4,))
  results = {}
  for name, rule in (("single", PARAGRAPH_STEPS.rule(tok)),
                     ("multi", StopRule.from_ids(tok.vocab_size, [EOS]))):
    cache, pos = prm_lib.prefill_prm(prm, values, tokens, valid, 12)
    prob, _, fed = prm_lib.score_step(prm, values, cache, pos, step, lengths, reasons, jnp.ones(2, bool), stop=rule)
    results[name] = (np.asarray(prob), np.asarray(fed))
  # Single: EOS replaced by "\n\n" (id NLNL, not content >= A? it is: 256 > A) and fed; multi: EOS dropped.
  np.testing.assert_array_equal(results["single"][1], [3, 3])
  np.testing.assert_array_equal(results["multi"][1], [2, 3])
  assert results["multi"][0][0] < 0.99  # EOS's large value was never read.


@pytest.mark.parametrize("merged", [True, False])
def test_search_steps_with_a_paragraph_delimiter(tmp_path, merged):
  """Search ends each round's step at "\n\n" (one token, or two "\n" tokens in a vocabulary without
  the merge), scores one PRM value per step and records the steps cut from the policy's ids."""
  from ttc_jax.search.config import SearchConfig
  from ttc_jax.search.run import run_search
  from ttc_jax.tasks.grading import ExactAnswerGrader
  merges = [("Ċ", "Ċ"), (".", "ĊĊ")] if merged else []
  tok = load_tokenizer(byte_bpe_dir(tmp_path, merges=merges, specials=["<eos>"], eos="<eos>"))
  (eos,) = tok.eos_ids
  script = ([A, B, NL, NL, A, DOT_NLNL, B, eos] if merged else [A, B, NL, NL, A, DOT, NL, NL, B, eos])
  rule = PARAGRAPH_STEPS.rule(tok)
  assert (rule.delimiter_id >= 0) == merged
  policy = ForcedTokens(scripted_config(vocab_size=tok.vocab_size), len(PROMPT), (tuple(script),))
  prm = ScriptedPRM(scripted_config(vocab_size=tok.vocab_size, scalar_head=True), first_content=A)
  cfg = SearchConfig(method="best_of_n", budget=2, max_rounds=5, max_step_tokens=4, max_solution_tokens=16)
  (record,) = run_search(policy, {}, prm, {"values": np.zeros(tok.vocab_size, np.float32)}, tok, ExactAnswerGrader(),
                         [PROMPT], jax.random.key(0), cfg=cfg, batch_size=1, buckets=(len(PROMPT),),
                         step_format=PARAGRAPH_STEPS)
  for cand in record["candidates"]:
    assert cand["steps"] == ["ab", "a.", "b"]
    assert len(cand["step_scores"]) == 3 and cand["finished"] and cand["stop_reason"] == sampler.STOP_EOS
    assert cand["num_tokens"] == len(script)
  assert record["rounds"] == 3
