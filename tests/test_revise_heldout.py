"""The reviser's held-out check: split by problem, the loss of two models on the same trajectories."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from ttc_jax.jobs import train_reviser
from ttc_jax.models import Transformer
from ttc_jax.revise import heldout
from ttc_jax.revise.data import revision_examples
from ttc_jax.revise.heldout import evaluate_heldout, split_trajectories
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import load_config_module, tiny_model_config
from ttc_jax.train import TrainConfig, next_token_loss
from ttc_jax.train.evaluate import loss_sums

QUESTION = "Start with 26. Subtract 11. Add 5. What is the result?"
TARGET = "26 - 11 = 15\n15 + 5 = 20\nThe answer is 20."


def _trajectories(problems=5, per_problem=3):
  wrong = ["26 - 11 = 14\n14 + 5 = 19\nThe answer is 19.", "26 - 11 = 15\nThe answer is 15.",
           "26 + 11 = 37\nThe answer is 42."]
  return [{"problem_id": f"train-{p}", "question": QUESTION, "previous": wrong[:k], "target": TARGET, "k": k}
          for p in range(problems) for k in range(per_problem)]


def test_split_holds_out_whole_problems_at_the_end():
  trajs = _trajectories(problems=12)
  train, held, n_held = split_trajectories(trajs, 0.1)
  assert n_held == 2 and {t["problem_id"] for t in held} == {"train-10", "train-11"}
  assert train + held == trajs
  assert split_trajectories(trajs, 0.0) == (trajs, [], 0)
  with pytest.raises(ValueError, match="none to train on"):
    split_trajectories(_trajectories(problems=1), 0.5)


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_heldout_fraction_out_of_range_names_the_field(fraction):
  with pytest.raises(ValueError, match=r"reviser.heldout_fraction=.*\[0, 1\)"):
    train_reviser.ReviserConfig(heldout_fraction=fraction)
  config = load_config_module("reviser").get_config("smoke")
  config.reviser.heldout_fraction = fraction
  with pytest.raises(ValueError, match=r"reviser.heldout_fraction"):
    train_reviser.run(config, "/nonexistent")  # Fails on the field, before reading anything.


def test_losses_by_model_and_k():
  tok = load_tokenizer()
  model = Transformer(tiny_model_config(vocab_size=tok.vocab_size, max_len=256, n_layers=1))
  init = jax.jit(lambda r: nn.unbox(model.init(r, jnp.zeros((1, 8), jnp.int32))))
  a, b = init(jax.random.key(0)), init(jax.random.key(1))
  loss_fn = next_token_loss(model)
  trajs = _trajectories(problems=3)
  result = evaluate_heldout(loss_fn, {"reviser": a, "policy": b, "same": a}, trajs, tok, seq_len=192, batch_size=4)
  assert result["examples"] == 9 and result["skipped"] == 0 and result["by_k"].keys() == {"0", "1", "2"}
  assert result["reviser"] == result["same"] and result["reviser"]["loss"] != result["policy"]["loss"]
  # Overall = target-weighted mean over k; each k equals a direct evaluation of its examples.
  for k, row in result["by_k"].items():
    examples, stats = revision_examples([t for t in trajs if str(t["k"]) == k], tok, 192)
    sums = loss_sums(loss_fn, b, examples, batch_size=3)
    assert row["targets"] == stats["target_tokens"] == sums["weight"]
    assert row["policy"]["loss"] == pytest.approx(sums["loss_sum"] / sums["weight"], rel=1e-5)
  mean = sum(r["policy"]["loss"] * r["targets"] for r in result["by_k"].values()) / result["targets"]
  assert result["policy"]["loss"] == pytest.approx(mean, rel=1e-5)
  assert 0 <= result["policy"]["token_accuracy"] <= 1
  too_long = evaluate_heldout(loss_fn, {"reviser": a}, trajs, tok, seq_len=16, batch_size=4)
  assert too_long["skipped"] == 9 and too_long["reviser"] == {"loss": None}


def test_epoch_rule_caps_steps_at_the_configured_passes():
  cfg = TrainConfig(steps=200, batch_size=16, warmup_steps=20)
  one = train_reviser.epoch_steps(cfg, examples=300, epochs=1.0)
  assert (one.steps, one.warmup_steps) == (19, 2)  # ceil(300 / 16); warmup keeps its tenth of the steps
  assert one.steps * one.batch_size >= 300 > (one.steps - 1) * one.batch_size
  assert train_reviser.epoch_steps(cfg, examples=300, epochs=0.5).steps == 10
  assert train_reviser.epoch_steps(cfg, examples=10_000, epochs=1.0) == cfg  # train.steps is the cap
  assert train_reviser.epoch_steps(cfg, examples=3, epochs=1.0).steps == 1
  with pytest.raises(ValueError, match="reviser.epochs"):
    train_reviser.ReviserConfig(epochs=0)


@pytest.mark.parametrize("low,high,n,gate", [(-0.12, -0.06, 500, "worse"), (0.01, 0.05, 500, "better"),
                                             (-0.015, 0.03, 500, "not worse"), (-0.08, 0.02, 500, "inconclusive"),
                                             (-0.9, -0.5, 5, "inconclusive")])
def test_first_attempt_gate(low, high, n, gate):
  assert heldout.first_attempt_gate(low, high, n) == gate


def test_compare_first_attempts_and_read_gate(tmp_path):
  policy = {f"p{i}": (i % 4) / 4 for i in range(60)}
  worse = heldout.compare_first_attempts({p: max(0.0, v - 0.25) for p, v in policy.items()}, policy)
  assert worse["gate"] == "worse" and worse["high"] < 0 and worse["n"] == 60
  assert worse["reviser"] < worse["policy"] == pytest.approx(0.375)
  same = heldout.compare_first_attempts(dict(policy), policy)
  assert same["gate"] == "not worse" and same["difference"] == same["low"] == same["high"] == 0
  assert heldout.compare_first_attempts({"a": 1.0}, {"b": 1.0})["gate"] == "inconclusive"  # nothing in common
  assert "missing" in heldout.read_gate(str(tmp_path))
  (tmp_path / "reviser_eval.json").write_text(json.dumps({"step": 3}))
  assert "no first-attempt check" in heldout.read_gate(str(tmp_path))["missing"]
  (tmp_path / "reviser_eval.json").write_text(json.dumps({"first_attempt": {**worse, "pass1": {}}}))
  assert heldout.read_gate(str(tmp_path)) == {"source": str(tmp_path / "reviser_eval.json"), **worse}
