"""Revision trajectories as an ArrayRecord dataset: one UTF-8 JSON record per trajectory.

  write_dataset(out_dir, trajectories, manifest)  # -> out_dir/trajectories.array_record + dataset.json
  read_trajectories(out_dir)                       # -> list[dict] in written order (grain, random access)

Each record holds {problem_id, k, question, previous, target, prompt, text}: `prompt` is
the fixed revision layout (question, previous attempts, "Solution:") and `text` the
prompt followed by the new attempt, both exactly as `revise/data.py` trains on them, so
a reader needs no code to see what the model saw. `dataset.json`, written after the
file, holds its name, record count, the distribution of k (`trajectories_by_k` and
`first_attempt_fraction`, the share with no previous attempt) and a digest of the
shards' manifest it was made from: it marks the dataset complete and current.
"""
import hashlib
import json
import os
from typing import Sequence

import grain
from array_record.python import array_record_module

from ttc_jax import storage
from ttc_jax.provenance import write_json
from ttc_jax.revise.data import trajectory_prompt, trajectory_text
from ttc_jax.revise.trajectories import k_distribution

FILENAME = "trajectories.array_record"
INFO = "dataset.json"
FIELDS = ("problem_id", "k", "question", "previous", "target", "prompt", "text")
MAKER = "the revision_data job (configs/revision_data.py)"


def to_record(trajectory: dict) -> dict:
  """The stored fields of one trajectory (see the module docstring)."""
  return {"problem_id": trajectory["problem_id"], "k": trajectory["k"], "question": trajectory["question"],
          "previous": list(trajectory["previous"]), "target": trajectory["target"],
          "prompt": trajectory_prompt(trajectory), "text": trajectory_text(trajectory)}


def _digest(manifest: dict) -> str:
  return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _read_info(out_dir: str) -> dict | None:
  path = os.path.join(out_dir, INFO)
  if not storage.exists(path):
    return None
  with storage.open(path) as f:
    return json.load(f)


def is_current(out_dir: str, manifest: dict) -> bool:
  """Whether out_dir holds the dataset made from the shards described by `manifest`."""
  info = _read_info(out_dir)
  return (info is not None and info["manifest_sha256"] == _digest(manifest)
          and storage.exists(os.path.join(out_dir, info["file"])))


def write_dataset(out_dir: str, trajectories: Sequence[dict], manifest: dict) -> dict:
  """Writes out_dir/trajectories.array_record (temp name, then rename) and dataset.json; returns the latter."""
  path = os.path.join(out_dir, FILENAME)
  # ArrayRecord writes local files only: into a local temp name (beside a local target, so the rename
  # is atomic; in the cache mirror of a gs:// one, then uploaded as one object).
  tmp = os.path.join(storage.local_mirror(out_dir), f"{FILENAME}.tmp-{os.getpid()}")
  # group_size:1 keeps every record separately readable (random access, as tfds writes its ArrayRecord).
  writer = array_record_module.ArrayRecordWriter(tmp, "group_size:1")
  for t in trajectories:
    writer.write(json.dumps(to_record(t)).encode())
  writer.close()
  if storage.is_remote(path):
    storage.copyfile(tmp, path)
    os.remove(tmp)
  else:
    os.replace(tmp, path)
  info = {"file": FILENAME, "num_records": len(trajectories), "fields": list(FIELDS),
          **k_distribution(trajectories), "manifest_sha256": _digest(manifest)}
  write_json(os.path.join(out_dir, INFO), info)
  return info


def data_source(out_dir: str, field: str = "revision data") -> grain.sources.ArrayRecordDataSource:
  """Random-access source of the JSON records; if incomplete, raises naming `field` (the config field
  pointing at out_dir) and the job that writes them."""
  info = _read_info(out_dir)
  if info is None or not storage.exists(os.path.join(out_dir, info["file"])):
    raise FileNotFoundError(f"{field}: {os.path.join(out_dir, FILENAME)} (with {INFO}) is missing, {out_dir} holds "
                            f"no finished revision dataset; run {MAKER} first")
  # A gs:// dataset is read from a downloaded copy: ArrayRecord reads local files only.
  source = grain.sources.ArrayRecordDataSource(storage.local_copy(os.path.join(out_dir, info["file"])))
  if len(source) != info["num_records"]:
    raise ValueError(f"{out_dir}/{info['file']} holds {len(source)} records, {INFO} says {info['num_records']}; "
                     f"delete {INFO} and re-run {MAKER} (it rewrites the dataset from its shards)")
  return source


def read_trajectories(out_dir: str, field: str = "revision data") -> list[dict]:
  """Every stored record, in written order (grouped by problem, as the held-out split needs).

  Raises if a record's text is not what `revise/data.py` would train on now (a dataset
  written with an older prompt format), rather than train on a layout never sampled from.
  """
  source = data_source(out_dir, field)
  records = [json.loads(source[i]) for i in range(len(source))]
  stale = sum(r["text"] != trajectory_text(r) for r in records)
  if stale:
    raise ValueError(f"{stale} of {len(records)} records in {out_dir}/{FILENAME} differ from the current revision "
                     f"prompt format; delete {INFO} and re-run {MAKER} (it rewrites the dataset from its shards)")
  return records
