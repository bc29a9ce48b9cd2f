"""The revision ORM: its examples are the contexts eval_revisions scores with; chains on training
problems -> train_verifier kind revision_orm end to end (tiny random reviser)."""
import json
import math

import numpy as np
import pytest

from ttc_jax import config_parsing, shards
from ttc_jax.jobs import eval_revisions, train_reviser, train_verifier
from ttc_jax.revise.format import revision_prompt
from ttc_jax.tasks import synthetic
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import export_tiny_model, load_config_module
from ttc_jax.train import TrainConfig
from ttc_jax.verify import data as vdata
from ttc_jax.verify.scored_text import encode_scored_solution, record_prompt

QUESTION = "Start with 26. Subtract 11. Add 5. What is the result?"


def _attempt(a, b):
  return f"26 - 11 = {a}\n{a} + 5 = {b}\nThe answer is {b}."


def _chain_record(pid="train-000001", chains=None, correct=None, max_context=4):
  chains = chains or [[_attempt(15 + i, 20 + i) for i in range(6)]]
  correct = correct or [[t == 0 for t in range(len(c))] for c in chains]
  return {"problem_id": pid, "question": QUESTION, "answer": "20", "num_steps": 2, "max_operand": 26, "ops": "-+",
          "chains": chains, "attempt_correct": correct, "max_context": max_context}


def test_examples_are_the_scoring_contexts(monkeypatch):
  tok = load_tokenizer()
  chain = [_attempt(15 + i, 20 + i) for i in range(6)]
  chains = [chain, ["", _attempt(15, 20)]]  # An empty attempt has no steps: no example, as scoring gives it 0.
  correct = [[False, True, False, False, True, False], [False, True]]
  record = _chain_record(chains=chains, correct=correct)
  examples, skipped = vdata.revision_orm_examples([record], tok, seq_len=512)
  assert skipped == 0 and len(examples) == 6 + 1

  # eval_revisions' scorer sees exactly these (prompt, steps): capture them.
  seen = []

  def fake_score_steps(model, params, tokenizer, prompts, steps, batch_size):
    seen.extend(zip(prompts, steps))
    return [[0.5] * len(s) for s in steps]

  monkeypatch.setattr(eval_revisions, "score_steps", fake_score_steps)
  verifier = type("V", (), {"model": None, "params": None, "tokenizer": tok})()
  eval_revisions.score_chains(verifier, [QUESTION], [chains], max_context=4, batch_size=4)
  scored = [(p, s) for p, s in seen if s]
  assert len(scored) == len(examples)
  for (prompt, steps), example in zip(scored, examples):
    tokens, ends = encode_scored_solution(tok, prompt, steps)
    np.testing.assert_array_equal(example["tokens"][:len(tokens)], tokens)
    assert (example["tokens"][len(tokens):] == tok.pad_id).all()
    assert np.flatnonzero(example["value_mask"]).tolist() == [ends[-1]]  # One target, at the last step end.
  targets = [float(e["value_target"][e["value_mask"] > 0][0]) for e in examples]
  assert targets == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]  # Each attempt's own correctness.

  # Attempt t sees chain[:t], the last 4 of them, and never itself or a later attempt.
  for t in range(6):
    prompt = scored[t][0]
    assert prompt == revision_prompt(QUESTION, chain[:t])
    assert all(a in prompt for a in chain[max(0, t - 4):t])
    assert not any(a in prompt for a in chain[t:]) and not any(a in prompt for a in chain[:max(0, t - 4)])
  assert scored[0][0] == record_prompt(record)  # No previous attempt: the policy's own prompt.

  # The context size the chains were sampled with is the one trained with.
  short, _ = vdata.revision_orm_examples([_chain_record(chains=[chain], max_context=1)], tok, seq_len=512)
  want, _ = encode_scored_solution(tok, revision_prompt(QUESTION, chain[:5], 1), synthetic.solution_steps(chain[5]))
  np.testing.assert_array_equal(short[5]["tokens"][:len(want)], want)
  # Too long: skipped and counted.
  cut = int((examples[2]["tokens"] != tok.pad_id).sum())  # Attempt 2 fits; 3-5 have longer contexts.
  few, skipped = vdata.revision_orm_examples([record], tok, seq_len=cut)
  assert skipped == 3 and len(few) == 4
  np.testing.assert_array_equal(few[2]["tokens"], examples[2]["tokens"][:cut])


def test_read_chain_records_merges_every_split(tmp_path):
  with pytest.raises(FileNotFoundError, match="no results.json"):
    eval_revisions.read_chain_records(str(tmp_path))
  a = [_chain_record(f"train-{i}", chains=[[_attempt(1, 2)] * 2] * 2, correct=[[True, False]] * 2) for i in range(3)]
  b = [_chain_record(f"train-{i}", chains=[[_attempt(3, 4)] * 4], correct=[[False] * 4]) for i in range(3)]
  for name, records in (("P2xL2", a), ("P1xL4", b)):
    shards.run_sharded(str(tmp_path / name), 1, lambda i, r=records: r, spec={})
  (tmp_path / "results.json").write_text(json.dumps({"settings": ["P2xL2", "P1xL4"], "config": {"max_context": 3}}))
  merged = eval_revisions.read_chain_records(str(tmp_path))
  assert [r["problem_id"] for r in merged] == ["train-0", "train-1", "train-2"]
  assert [len(c) for c in merged[0]["chains"]] == [2, 2, 4]
  assert merged[0]["attempt_correct"] == [[True, False], [True, False], [False] * 4]
  assert merged[0]["max_context"] == 3 and merged[0]["question"] == QUESTION


def _chains_config(**overrides):
  c = load_config_module("revision_eval").get_config("train_smoke")
  c.revision_eval.update({**dict(num_problems=10, max_new_tokens=16, problems_per_shard=5), **overrides})
  return c


def test_chains_on_training_problems_then_revision_orm(tmp_path):
  config = load_config_module("revision_orm").get_config("smoke")
  with pytest.raises(FileNotFoundError, match=r"verifier.data='revisions/chains_train'.*revision_eval.py:train"):
    train_verifier.run(config, str(tmp_path))  # Names the field and the config that writes the data.

  tok = load_tokenizer()
  export_tiny_model(str(tmp_path / "reviser_export"), tok)
  eval_revisions.run(_chains_config(reviser=str(tmp_path / "reviser_export")), str(tmp_path))
  out = tmp_path / "revisions" / "chains_train"
  result = json.loads((out / "results.json").read_text())
  assert result["settings"] == ["P1xL4"] and result["config"]["split"] == "train" and not result["config"]["verifier"]
  records = shards.read_records(str(out / "P1xL4"))
  # Training problems 12..21 (after those configs/samples.py:smoke samples), in the split's order.
  first = eval_revisions.common.load_split(
      eval_revisions.common.task_data(*eval_revisions.common.parse_task(_chains_config().task), str(tmp_path)),
      "train", 22)
  assert [r["problem_id"] for r in records] == [p.id for p in first[12:]]
  assert all(r["problem_id"].startswith("train") and r["scores"] is None for r in records)

  with pytest.raises(FileNotFoundError, match=r"verifier.policy='reviser'.*train_reviser"):
    train_verifier.run(config, str(tmp_path))
  config.verifier.policy = str(tmp_path / "reviser_export")
  train_verifier.run(config, str(tmp_path))
  stage = tmp_path / "revision_orm"
  summary = json.loads((stage / "train_summary.json").read_text())
  evaluation = json.loads((stage / "verifier_eval.json").read_text())
  attempts = [len(synthetic.solution_steps(t)) > 0 for r in records for chain in r["chains"] for t in chain]
  assert summary["kind"] == "revision_orm" and summary["steps"] == 10 and summary["skipped"] == 0
  assert summary["train_problems"] == 9 and summary["heldout_problems"] == 1
  assert summary["examples"] == sum(attempts[:9 * 4]) and evaluation["examples"] == sum(attempts[9 * 4:])
  assert evaluation["kind"] == "revision_orm" and evaluation["step"] == 10 and math.isfinite(evaluation["bce"])
  assert summary["model"]["scalar_head"] and summary["model"]["max_len"] >= config.train.seq_len

  mtime = (stage / "verifier_eval.json").stat().st_mtime_ns
  train_verifier.run(config, str(tmp_path))  # Done: skipped.
  assert (stage / "verifier_eval.json").stat().st_mtime_ns == mtime


def test_first_problem_is_checked():
  with pytest.raises(ValueError, match="first_problem"):
    eval_revisions.RevisionEvalConfig(first_problem=-1)


@pytest.mark.parametrize("name,arg", [(n, a) for n in ("revision_orm", "reviser") for a in ("", "smoke", "gpu")]
                         + [("revision_eval", a) for a in ("", "smoke", "train", "train_smoke")])
def test_revision_configs_parse(name, arg):
  module = load_config_module(name)
  job = {"revision_orm": train_verifier, "reviser": train_reviser, "revision_eval": eval_revisions}[name]
  section, cls = {"revision_orm": ("verifier", train_verifier.VerifierConfig),
                  "reviser": ("reviser", train_reviser.ReviserConfig),
                  "revision_eval": ("revision_eval", eval_revisions.RevisionEvalConfig)}[name]
  for point in [{}] + (module.sweep() if hasattr(module, "sweep") and arg == "" else []):
    config = module.get_config(arg)
    config.lock()
    for key, value in point.items():
      config[key.split(".")[0]][key.split(".")[1]] = value
    config_parsing.check_sections(config, job.SECTIONS, name)
    cfg = config_parsing.parse_section(cls, config[section], section)
    if "train" in config:
      train_cfg = config_parsing.parse_section(TrainConfig, config.train, "train")
      assert train_cfg.warmup_steps <= train_cfg.steps
  if name == "revision_orm":
    assert (cfg.kind, cfg.policy, cfg.data_path, cfg.stage) == ("revision_orm", "reviser", "revisions/chains_train",
                                                                "revision_orm")
  if name == "revision_eval" and arg.startswith("train"):
    assert cfg.out == "revisions/chains_train" and cfg.split == "train" and not cfg.verifier
    assert cfg.first_problem >= load_config_module("samples").get_config(arg[6:]).sampling.num_problems
