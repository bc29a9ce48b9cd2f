"""The revision trajectories' ArrayRecord dataset: round trip, the trained text, completeness checks."""
import json

import pytest
from array_record.python import array_record_module

from ttc_jax import shards
from ttc_jax.jobs import train_reviser
from ttc_jax.revise import dataset
from ttc_jax.revise.data import revision_examples
from ttc_jax.revise.format import revision_prompt
from ttc_jax.revise.trajectories import TrajectoryConfig, build_trajectories, summarize
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import load_config_module


def _attempt(start, n, wrong=0):
  return f"{start} + {n} = {start + n + wrong}\nThe answer is {start + n + wrong}."


def _samples_records(num_problems=5):
  """Sample records of distinct problems, each with a correct and three incorrect attempts."""
  return [{"problem_id": f"train-{i:06d}", "question": f"Start with {10 + i}. Add {i}. What is the result?",
           "answer": str(10 + 2 * i),
           "samples": [{"text": _attempt(10 + i, i, wrong), "correct": not wrong} for wrong in (3, 0, 1, 7)]}
          for i in range(num_problems)]


def _shards(tmp_path):
  """Trajectories written as revision_data writes them (JSONL shards + manifest); (dir, manifest)."""
  records = _samples_records()
  out = str(tmp_path / "data")
  manifest = shards.run_sharded(out, 2, lambda i: build_trajectories(records[3 * i:3 * i + 3], TrajectoryConfig()),
                                spec={}, summarize=lambda trajs: summarize(records, trajs))
  return out, manifest


def test_round_trip_keeps_records_and_order(tmp_path):
  out, manifest = _shards(tmp_path)
  trajs = shards.read_records(out)
  info = dataset.write_dataset(out, trajs, manifest)
  assert info["num_records"] == len(trajs) > 5 and dataset.is_current(out, manifest)
  assert json.loads((tmp_path / "data" / dataset.INFO).read_text()) == info
  # dataset.json records k's distribution: a third of the trajectories have no previous attempt (the defaults).
  assert info["trajectories_by_k"] == manifest["trajectories_by_k"] and sum(info["trajectories_by_k"].values()) == len(trajs)
  assert info["trajectories_by_k"]["0"] == 5 and info["first_attempt_fraction"] == pytest.approx(1 / 3)
  back = dataset.read_trajectories(out)
  assert [{f: r[f] for f in dataset.FIELDS} for r in back] == [dataset.to_record(t) for t in trajs]
  assert [(r["problem_id"], r["k"], r["question"], r["previous"], r["target"]) for r in back] == [
      (t["problem_id"], t["k"], t["question"], t["previous"], t["target"]) for t in trajs]
  source = dataset.data_source(out)  # random access, any order
  assert json.loads(source[len(trajs) - 1])["target"] == trajs[-1]["target"]
  assert not list(tmp_path.glob("data/*.tmp-*"))
  assert not dataset.is_current(out, {**manifest, "num_records": 0})  # other shards: rewrite


def test_prompt_and_text_are_what_training_encodes(tmp_path):
  out, manifest = _shards(tmp_path)
  dataset.write_dataset(out, shards.read_records(out), manifest)
  back = dataset.read_trajectories(out)
  tokenizer = load_tokenizer()
  examples, stats = revision_examples(back, tokenizer, seq_len=256)
  assert stats["examples"] == len(back) and {r["k"] for r in back} == {0, 1, 2, 3}
  for r, ex in zip(back, examples):
    assert r["prompt"] == revision_prompt(r["question"], r["previous"]) and r["text"] == r["prompt"] + r["target"]
    ids = ex["tokens"][ex["tokens"] != tokenizer.pad_id].tolist()
    assert ids == [tokenizer.bos_id] + tokenizer.encode(r["text"]) + [tokenizer.eos_id]
    n_prompt = 1 + len(tokenizer.encode(r["prompt"]))
    assert not ex["loss_mask"][:n_prompt].any() and ex["loss_mask"][n_prompt]


def test_missing_incomplete_or_stale_dataset_raises(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"x\.data.*trajectories\.array_record.*revision_data job"):
    dataset.read_trajectories(str(tmp_path), "x.data")
  out, manifest = _shards(tmp_path)  # Shards alone (the dataset never written) are not enough.
  with pytest.raises(FileNotFoundError, match="configs/revision_data.py"):
    dataset.read_trajectories(out)
  trajs = shards.read_records(out)
  dataset.write_dataset(out, trajs[:-1], manifest)
  info = json.loads((tmp_path / "data" / dataset.INFO).read_text())
  (tmp_path / "data" / dataset.INFO).write_text(json.dumps({**info, "num_records": len(trajs)}))
  with pytest.raises(ValueError, match="records"):
    dataset.read_trajectories(out)
  # A dataset written with another prompt layout: its text is not what training would encode now.
  writer = array_record_module.ArrayRecordWriter(str(tmp_path / "data" / dataset.FILENAME), "group_size:1")
  for t in trajs:
    writer.write(json.dumps({**dataset.to_record(t), "text": "Problem: " + t["target"]}).encode())
  writer.close()
  with pytest.raises(ValueError, match="prompt format"):
    dataset.read_trajectories(out)


def test_train_reviser_names_the_revision_data_job(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"reviser\.data='revisions/data'.*configs/revision_data\.py"):
    train_reviser.run(load_config_module("reviser").get_config("smoke"), str(tmp_path))
