"""PRM / ORM: one token layout for training and scoring, targets, loss, scoring, init from the policy, jobs."""
import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from ttc_jax import export, shards
from ttc_jax.jobs import train_verifier
from ttc_jax.models import ModelOutput, Transformer
from ttc_jax.parallel import MeshConfig, logical_shardings, make_mesh
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import tiny_model_config, load_config_module
from ttc_jax.train import TrainConfig, train
from ttc_jax.verify import data as vdata
from ttc_jax.verify.heldout import evaluate_examples
from ttc_jax.verify.init_from_policy import overlay_params, policy_initializer
from ttc_jax.verify.losses import value_loss
from ttc_jax.verify.scored_text import encode_scored_solution, record_prompt
from ttc_jax.verify.scoring import aggregate, score_steps

REPO = pathlib.Path(__file__).resolve().parents[1]
PROMPT = "Question: Start with 7. Add 5. Multiply by 3. What is the result?\nSolution:\n"
STEPS = ["7 + 5 = 12", "12 * 3 = 36", "The answer is 36."]


def _record(pid, samples, question="Start with 7. Add 5. Multiply by 3. What is the result?"):
  return {"problem_id": pid, "question": question, "answer": "36", "num_steps": 2, "max_operand": 9, "ops": "+*",
          "samples": samples}


def _verifier_model(tok, **overrides):
  cfg = tiny_model_config(vocab_size=tok.vocab_size, max_len=128, n_layers=1, scalar_head=True, lm_head=False,
                          **overrides)
  model = Transformer(cfg)
  return model, jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))  # Eager init is slow.


# ------------------------------------------------------------------ the shared encoding


def test_step_ends_are_newlines_and_match_plain_encoding():
  tok = load_tokenizer()
  tokens, ends = encode_scored_solution(tok, PROMPT, STEPS)
  assert len(ends) == len(STEPS) and ends[-1] == len(tokens) - 1
  assert all(tokens[e] == tok.newline_id for e in ends)
  # Exactly the ids of the whole text: what the policy conditioned on when it wrote the steps.
  assert tokens == [tok.bos_id] + tok.encode(PROMPT + "".join(s + "\n" for s in STEPS))
  for i, e in enumerate(ends):  # Each prefix decodes to the prompt and the first i+1 steps.
    assert tok.decode(tokens[:e + 1]) == PROMPT + "".join(s + "\n" for s in STEPS[:i + 1])
  assert encode_scored_solution(tok, PROMPT, [])[1] == []
  with pytest.raises(ValueError, match="one line"):
    encode_scored_solution(tok, PROMPT, ["a\nb"])


def test_record_prompt_is_the_policy_prompt():
  assert record_prompt(_record("p0", [])) == PROMPT


# ------------------------------------------------------------------ training examples


def test_prm_and_orm_targets_sit_at_step_ends():
  tok = load_tokenizer()
  records = [_record("p0", [
      {"steps": STEPS, "correct": True, "step_labels": [0.5, 0.75, 1.0]},
      {"steps": [], "correct": False, "step_labels": []},  # No steps: no example.
      {"steps": ["7 + 5 = 13", "The answer is 39."], "correct": False, "step_labels": [0.25, 0.0]},
  ])]
  _, ends = encode_scored_solution(tok, PROMPT, STEPS)
  prm, skipped = vdata.prm_examples(records, tok, seq_len=96)
  assert skipped == 0 and len(prm) == 2
  first = prm[0]
  assert first["tokens"].dtype == np.int32 and first["value_target"].dtype == np.float32
  assert first["tokens"].shape == first["value_mask"].shape == first["value_target"].shape == (96,)
  assert np.flatnonzero(first["value_mask"]).tolist() == ends
  np.testing.assert_array_equal(first["value_target"][ends], [0.5, 0.75, 1.0])
  assert first["value_target"].sum() == 2.25  # Zero off the targets.
  assert (first["tokens"][ends[-1] + 1:] == tok.pad_id).all()
  assert prm[1]["value_target"][prm[1]["value_mask"] > 0].tolist() == [0.25, 0.0]

  orm, _ = vdata.orm_examples(records, tok, seq_len=96)
  assert np.flatnonzero(orm[0]["value_mask"]).tolist() == [ends[-1]]
  assert orm[0]["value_target"][ends[-1]] == 1.0
  assert orm[1]["value_mask"].sum() == 1 and orm[1]["value_target"].sum() == 0.0
  np.testing.assert_array_equal(orm[0]["tokens"], first["tokens"])

  # Too long for seq_len: skipped and counted, never truncated.
  short, skipped = vdata.prm_examples(records, tok, seq_len=len(encode_scored_solution(tok, PROMPT, STEPS)[0]) - 1)
  assert skipped == 1 and len(short) == 1
  bad = [_record("p1", [{"steps": STEPS, "correct": True, "step_labels": [1.0]}])]
  with pytest.raises(ValueError, match="3 steps but 1 step_labels"):
    vdata.prm_examples(bad, tok, seq_len=96)


def test_heldout_split_is_by_problem_at_the_end():
  records = [_record(f"p{i}", []) for i in range(12)]
  train_r, held = vdata.split_heldout(records, 0.1)
  assert [r["problem_id"] for r in held] == ["p10", "p11"] and len(train_r) == 10
  assert vdata.split_heldout(records, 0.0) == (records, [])


def test_iterator_batches_and_resumes():
  examples = [{"tokens": np.full((4,), i, np.int32), "value_mask": np.ones((4,), np.int32),
               "value_target": np.zeros((4,), np.float32)} for i in range(5)]
  it = vdata.make_iterator(examples, batch_size=4, seed=0)
  first = next(it)
  assert first["tokens"].shape == (4, 4) and first["value_target"].dtype == np.float32
  state = it.get_state()
  expected = [next(it)["tokens"] for _ in range(3)]  # Batches span epochs: 5 examples, batch 4.
  it.set_state(state)
  np.testing.assert_array_equal(np.stack([next(it)["tokens"] for _ in range(3)]), np.stack(expected))
  host1 = next(vdata.make_iterator(examples, batch_size=4, seed=0, shard_index=1, shard_count=2))
  assert host1["tokens"].shape == (2, 4) and set(host1["tokens"][:, 0]) <= {1, 3}


# ------------------------------------------------------------------ loss


class _FixedValues:
  """A stand-in model whose value head outputs `params` directly."""

  def apply(self, params, tokens_BxT):
    return ModelOutput(logits_BxTxV=None, values_BxT=params, cache=None)


def test_value_loss_is_masked_bce_on_soft_targets():
  values = jnp.array([[0.3, -1.2, 2.0], [0.0, 5.0, -0.7]])
  target = jnp.array([[0.25, 0.0, 1.0], [0.9, 1.0, 0.5]])
  mask = jnp.array([[1, 0, 1], [0, 1, 1]])
  out = value_loss(_FixedValues())(values, {"tokens": jnp.zeros((2, 3), jnp.int32), "value_mask": mask,
                                            "value_target": target}, None)
  expected, abs_err, agree = 0.0, 0.0, 0
  for (b, t) in [(0, 0), (0, 2), (1, 1), (1, 2)]:
    p, y = 1 / (1 + math.exp(-float(values[b, t]))), float(target[b, t])
    expected += -(y * math.log(p) + (1 - y) * math.log(1 - p))
    abs_err += abs(p - y)
    agree += (p > 0.5) == (y > 0.5)
  assert float(out.weight) == 4.0
  np.testing.assert_allclose(float(out.loss_sum), expected, rtol=1e-6)
  np.testing.assert_allclose(float(out.metrics["abs_error"]), abs_err, rtol=1e-6)
  assert float(out.metrics["accuracy"]) == agree == 3  # (1, 2): -0.7 vs 0.5 counts as disagreeing.


def test_loss_decreases_on_a_separable_toy_set(tmp_path):
  # Target 1 where the token before is 7, else 0: a value head on a 1-layer model learns it quickly.
  rng = np.random.RandomState(0)
  tokens = rng.randint(4, 12, size=(64, 12)).astype(np.int32)
  examples = [{"tokens": t, "value_mask": np.ones_like(t), "value_target": (t == 7).astype(np.float32)}
              for t in tokens]
  model = Transformer(tiny_model_config(vocab_size=16, n_layers=1, scalar_head=True, lm_head=False))
  cfg = TrainConfig(steps=30, batch_size=16, seq_len=12, learning_rate=1e-2, warmup_steps=2, log_every=10,
                    checkpoint_every=40, async_checkpoint=False)
  state = train(init_fn=lambda r: model.init(r, tokens[:1]), loss_fn=value_loss(model), cfg=cfg,
                data_iter=vdata.make_iterator(examples, batch_size=16, seed=0),
                mesh=make_mesh(MeshConfig(), jax.devices()[:1]), workdir=str(tmp_path), seed=0)
  losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert losses[-1] < 0.5 * losses[0]
  result = evaluate_examples(model, state.params, examples[:20], batch_size=8, train_mean_target=0.125)
  assert result["targets"] == 20 * 12 and result["accuracy"] > 0.9 and result["bce"] < result["baseline_bce"]


# ------------------------------------------------------------------ scoring


def test_aggregate():
  assert aggregate([0.9, 0.2, 0.6], "last") == 0.6
  assert aggregate([0.9, 0.2, 0.6], "min") == 0.2
  assert math.isclose(aggregate([0.9, 0.2, 0.6], "prod"), 0.108)
  assert aggregate([], "last") == aggregate([], "min") == aggregate([], "prod") == 0.0
  with pytest.raises(ValueError, match="mean"):
    aggregate([0.5], "mean")


def test_scores_do_not_depend_on_batching_and_match_training_positions():
  tok = load_tokenizer()
  model, params = _verifier_model(tok)
  other = "Question: Start with 2. What is the result?\nSolution:\n"
  prompts = [PROMPT, PROMPT.replace("7", "8"), PROMPT, other, PROMPT]
  step_lists = [STEPS, STEPS[:1], [], ["2 + 0 = 2", "x" * 40, "y" * 50, "The answer is 2."], STEPS[:2]]
  buckets = (64, 128)  # Few shapes: fewer compilations in the test.
  by_batch = {b: score_steps(model, params, tok, prompts, step_lists, batch_size=b, buckets=buckets) for b in (2, 8)}
  assert [len(s) for s in by_batch[2]] == [3, 1, 0, 4, 2]
  np.testing.assert_allclose(np.concatenate(by_batch[2]), np.concatenate(by_batch[8]), atol=1e-6)
  for i in (0, 3):  # Unpadded, unbatched reference forward passes.
    tokens, ends = encode_scored_solution(tok, prompts[i], step_lists[i])
    values = jax.jit(model.apply)(params, jnp.asarray([tokens])).values_BxT[0]
    np.testing.assert_allclose(by_batch[2][i], jax.nn.sigmoid(values[np.asarray(ends)]), atol=1e-5)
  # A prefix scores what its full solution scores at the same steps (causal attention).
  np.testing.assert_allclose(by_batch[8][4], by_batch[8][0][:2], atol=1e-6)

  # The training example of a solution reads the values at exactly the positions scored.
  record = _record("p0", [{"steps": STEPS, "correct": True, "step_labels": [0.5, 0.5, 1.0]}])
  (example,), _ = vdata.prm_examples([record], tok, seq_len=128)
  values = jax.jit(model.apply)(params, jnp.asarray(example["tokens"][None])).values_BxT[0]
  np.testing.assert_allclose(jax.nn.sigmoid(values[example["value_mask"] > 0]), by_batch[8][0], atol=1e-5)


# ------------------------------------------------------------------ initialisation from the policy


def _export_random_policy(out_dir, tok, **overrides):
  """A policy export with random weights: a real export directory, without training one."""
  cfg = tiny_model_config(vocab_size=tok.vocab_size, max_len=128, **overrides)
  params = nn.unbox(jax.jit(Transformer(cfg).init)(jax.random.key(1), jnp.zeros((1, 8), jnp.int32)))
  export.export_model(str(out_dir), params, cfg, tok.model_path, step=0, source=str(out_dir))
  return cfg, params


def test_overlay_copies_shared_leaves_only():
  fresh = {"params": {"a": jnp.zeros((2,)), "value_head": {"kernel": jnp.ones((2, 1))}}}
  policy = {"params": {"a": jnp.full((2,), 3.0), "unembed": jnp.ones((4,))}}
  params, kept = overlay_params(fresh, policy)
  assert kept == ["params/value_head/kernel"] and "unembed" not in params["params"]
  np.testing.assert_array_equal(params["params"]["a"], [3.0, 3.0])
  with pytest.raises(ValueError, match="params/a"):
    overlay_params(fresh, {"params": {"a": jnp.zeros((3,))}})


def test_verifier_starts_as_the_policy_on_a_sharded_mesh(tmp_path):
  # Untied embeddings: the policy's `unembed` has no place in the verifier and is dropped.
  # (The end-to-end tests cover tied policies.)
  tok = load_tokenizer()
  policy_cfg, policy_params = _export_random_policy(tmp_path / "policy", tok, tie_embeddings=False)
  model = Transformer(dataclasses.replace(policy_cfg, scalar_head=True, lm_head=False))
  mesh = make_mesh(MeshConfig(data=2, fsdp=2, tensor=2), jax.devices())
  init_fn = lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32))
  shardings = logical_shardings(jax.eval_shape(init_fn, jax.random.key(0)), mesh)
  params = policy_initializer(str(tmp_path / "policy"), mesh, init_fn, jax.random.key(0))(shardings)

  got = traverse_util.flatten_dict(jax.device_get(params), sep="/")
  want = traverse_util.flatten_dict(jax.device_get(policy_params), sep="/")
  assert sorted(set(got) - set(want)) == ["params/value_head/bias", "params/value_head/kernel"]
  assert sorted(set(want) - set(got)) == ["params/unembed/kernel"]
  chex.assert_trees_all_equal({k: got[k] for k in want if k in got}, {k: want[k] for k in want if k in got})
  flat_shardings = traverse_util.flatten_dict(shardings, sep="/")
  leaves = traverse_util.flatten_dict(params, sep="/")
  assert all(leaves[k].sharding == flat_shardings[k] for k in leaves)  # Laid out as the verifier's tree.


# ------------------------------------------------------------------ the job, end to end


def _main(workdir, config, *overrides):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                              if not f.startswith("--xla_force_host_platform_device_count"))
  result = subprocess.run([sys.executable, "-m", "ttc_jax.main", f"--config={config}", f"--workdir={workdir}",
                           *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  return result


def _load_config(name, arg):
  return load_config_module(name).get_config(arg)


def _check_stage(workdir, config, kind, *overrides):
  result = _main(workdir, config, *overrides)
  assert result.returncode == 0, result.stderr[-5000:]
  stage = workdir / kind
  summary = json.loads((stage / "train_summary.json").read_text())
  assert summary["kind"] == kind and summary["steps"] == 10 and summary["examples"] > 0 and summary["git_commit"]
  assert summary["skipped"] == 0
  evaluation = json.loads((stage / "verifier_eval.json").read_text())
  assert evaluation["step"] == 10 and evaluation["targets"] > 0 and math.isfinite(evaluation["bce"])
  model_cfg = json.loads((stage / "model_config.json").read_text())
  assert model_cfg["scalar_head"] and not model_cfg["lm_head"]
  assert (stage / "tokenizer.model").exists() and (stage / "metrics.jsonl").exists()
  assert "new parameters: params/value_head/bias, params/value_head/kernel" in result.stderr
  return summary, evaluation


def test_orm_job_on_smoke_policy_and_samples(tmp_path):
  # The real chain: smoke policy stage -> smoke samples -> ORM.
  for config, extra in [("configs/policy.py:smoke", ["--config.eval.num_problems=1",
                                                     "--config.eval.samples_per_problem=1"]),
                        ("configs/samples.py:smoke", [])]:
    result = _main(tmp_path, config, *extra)
    assert result.returncode == 0, result.stderr[-5000:]
  summary, evaluation = _check_stage(tmp_path, "configs/orm.py:smoke", "orm")
  records = shards.read_records(str(tmp_path / "samples" / "train"))
  held = math.ceil(0.1 * len(records))
  assert summary["heldout_problems"] == held and summary["train_problems"] == len(records) - held
  assert summary["examples"] == sum(1 for r in records[:-held] for s in r["samples"] if s["steps"])
  assert evaluation["examples"] == sum(1 for r in records[-held:] for s in r["samples"] if s["steps"])


def test_prm_job_on_labels_rerun_and_missing_inputs(tmp_path):
  tok = load_tokenizer()
  config = _load_config("prm", "smoke")
  with pytest.raises(FileNotFoundError, match=r"verifier.data='labels/train'.*label_rollouts"):
    train_verifier.run(config, str(tmp_path))  # Nothing there yet: names the field and the job to run.

  _export_random_policy(tmp_path / "policy_export", tok)
  labels = [[0.5, 1.0], [0.25, 0.0], [1.0, 1.0, 1.0]]
  records = [_record(f"p{i}", [{"steps": STEPS[-len(y):], "correct": y[-1] == 1.0, "step_labels": y}
                               for y in labels]) for i in range(10)]
  shards.run_sharded(str(tmp_path / "labels" / "train"), 2, lambda i: records[i * 5:(i + 1) * 5], spec={})
  with pytest.raises(FileNotFoundError, match=r"verifier.policy='policy'.*train_policy"):
    train_verifier.run(config, str(tmp_path))

  policy = f"--config.verifier.policy={tmp_path}/policy_export"
  summary, evaluation = _check_stage(tmp_path, "configs/prm.py:smoke", "prm", policy)
  assert summary["examples"] == 9 * 3 and summary["targets"] == 9 * 7
  assert evaluation["targets"] == 7 and evaluation["heldout_problems"] == 1

  # A second run is a no-op: no training step, no evaluation, no policy load.
  stage = tmp_path / "prm"
  kept = ["verifier_eval.json", "metrics.jsonl", "train_summary.json"]
  mtimes = {n: (stage / n).stat().st_mtime_ns for n in kept}
  checkpoints = sorted(os.listdir(stage / "checkpoints"))
  again = _main(tmp_path, "configs/prm.py:smoke", policy)
  assert again.returncode == 0, again.stderr[-5000:]
  assert {n: (stage / n).stat().st_mtime_ns for n in kept} == mtimes
  assert sorted(os.listdir(stage / "checkpoints")) == checkpoints
  assert "Initialised from the policy" not in again.stderr

  # The trained PRM loads like any stage and scores with the shared encoding.
  prm = export.load_model(str(stage), make_mesh(MeshConfig(), jax.devices()[:1]))
  scores = score_steps(prm.model, prm.params, prm.tokenizer, [PROMPT, PROMPT], [STEPS, []], batch_size=2)
  assert len(scores[0]) == 3 and all(0.0 <= s <= 1.0 for s in scores[0]) and scores[1] == []
