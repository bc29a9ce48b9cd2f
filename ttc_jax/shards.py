"""Sharded, resumable JSONL artifacts with a manifest.

A job that produces many records (samples, rollout labels, scores) splits its
work into shards. Each shard is written atomically (temp file + rename), so a
shard file exists only once complete: re-running skips finished shards and
redoes the one that was interrupted. `spec.json`, written first, pins what the
shards are made from; resuming with a different spec is refused rather than
mixing two configurations. `manifest.json`, written last, marks the whole
artifact complete.
"""
import json
import os
import time
from typing import Callable, Sequence

from absl import logging

from ttc_jax.provenance import git_commit, write_json


def shard_path(out_dir: str, index: int, count: int) -> str:
  return os.path.join(out_dir, f"shard-{index:05d}-of-{count:05d}.jsonl")


def _write_shard(path: str, records: Sequence[dict]) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")
  os.replace(tmp, path)


def _read_shard(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def is_complete(out_dir: str) -> bool:
  return os.path.exists(os.path.join(out_dir, "manifest.json"))


def _check_spec(out_dir: str, spec: dict) -> None:
  path = os.path.join(out_dir, "spec.json")
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old != json.loads(json.dumps(spec)):
      changed = sorted(k for k in set(old) | set(spec) if old.get(k) != json.loads(json.dumps(spec)).get(k))
      raise ValueError(f"{out_dir} holds shards made with a different spec (fields {changed} differ); "
                       "use another output directory or delete it to start over")
  else:
    write_json(path, spec)


def run_sharded(out_dir: str, num_shards: int, compute_shard: Callable[[int], list[dict]], *, spec: dict,
                summarize: Callable[[list[dict]], dict] | None = None, desc: str = "shards",
                write: bool = True) -> dict:
  """Computes every missing shard, then writes the manifest; returns the manifest.

  Args:
    compute_shard: shard index -> its records (must be deterministic in the index).
    spec: what the artifact is made from (config, sources); a mismatch on resume raises.
    summarize: all records -> extra manifest fields (totals such as tokens sampled).
    write: False on non-lead hosts of a multi-host job (they compute, host 0 writes).
  """
  os.makedirs(out_dir, exist_ok=True)
  if write:
    _check_spec(out_dir, spec)
  if is_complete(out_dir):
    with open(os.path.join(out_dir, "manifest.json")) as f:
      logging.info("%s: complete, skipping (%s)", desc, out_dir)
      return json.load(f)
  todo = [i for i in range(num_shards) if not os.path.exists(shard_path(out_dir, i, num_shards))]
  _barrier("ttc_jax.shards.todo")  # Every host must agree on the work (a shared workdir) before any is written.
  if len(todo) < num_shards:
    logging.info("%s: resuming, %d of %d shards already written", desc, num_shards - len(todo), num_shards)
  start = time.time()
  computed: dict[int, list[dict]] = {}
  for n_done, index in enumerate(todo, 1):
    records = compute_shard(index)
    if write:
      _write_shard(shard_path(out_dir, index, num_shards), records)
    else:
      computed[index] = records  # Non-lead hosts keep theirs: the lead's files may not be there yet.
    rate = (time.time() - start) / n_done
    logging.info("%s: shard %d/%d done (%d records) | ETA %.0fs", desc, index + 1, num_shards, len(records),
                 rate * (len(todo) - n_done))
  records = [r for i in range(num_shards)
             for r in (computed[i] if i in computed else _read_shard(shard_path(out_dir, i, num_shards)))]
  manifest = {"num_shards": num_shards, "num_records": len(records), "git_commit": git_commit(), "spec": spec,
              "files": [os.path.basename(shard_path(out_dir, i, num_shards)) for i in range(num_shards)]}
  if summarize is not None:
    manifest.update(summarize(records))
  if write:
    write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest


def read_records(out_dir: str, *, num_shards: int | None = None, require_manifest: bool = True) -> list[dict]:
  """All records in shard order. Raises naming the directory if the artifact is incomplete."""
  if num_shards is None:
    manifest_path = os.path.join(out_dir, "manifest.json")
    if not os.path.exists(manifest_path):
      raise FileNotFoundError(f"{manifest_path} is missing: the job that writes {out_dir} has not finished")
    with open(manifest_path) as f:
      num_shards = json.load(f)["num_shards"]
  elif require_manifest and not is_complete(out_dir):
    raise FileNotFoundError(f"{out_dir}/manifest.json is missing: the job that writes it has not finished")
  records = []
  for i in range(num_shards):
    path = shard_path(out_dir, i, num_shards)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} is missing from a complete artifact")
    records.extend(_read_shard(path))
  return records


def require_complete(out_dir: str, field: str, maker: str) -> None:
  """Raises naming the config field that points at `out_dir` and the job that makes it."""
  if not is_complete(out_dir):
    raise FileNotFoundError(f"{field}: {out_dir} is not a finished artifact (no manifest.json); run {maker} first")


def _barrier(name: str) -> None:
  import jax  # Only multi-host runs need it.
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
