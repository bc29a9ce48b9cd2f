"""Sharded, resumable JSONL artifacts with a manifest.

A job that produces many records (samples, rollout labels, scores) splits its
work into shards. Each shard is written atomically (`storage.write_bytes`: temp
file + rename locally, one upload on object storage), so a shard file exists only once complete: re-running skips finished shards and
redoes the one that was interrupted. `spec.json`, written first, pins what the
shards are made from (paths inside the workdir relative to it, so a moved
workdir resumes); resuming with a different spec is refused rather than mixing
two configurations. `manifest.json`, written last, marks the whole artifact
complete and records each shard's record count and SHA-256: readers check them,
so a truncated or edited shard is an error naming the file and the job to re-run
(which remakes just that shard), never a silently smaller result.
"""
import hashlib
import json
import os
import time
from typing import Any, Callable, Sequence

from absl import logging

from ttc_jax import locks, storage
from ttc_jax.provenance import git_commit, read_json, read_jsonl, write_json


def shard_path(out_dir: str, index: int, count: int) -> str:
  return os.path.join(out_dir, f"shard-{index:05d}-of-{count:05d}.jsonl")


def _serialize(records: Sequence[dict]) -> bytes:
  return "".join(json.dumps(r) + "\n" for r in records).encode()


def _digest(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _read_shard(path: str) -> list[dict]:
  return read_jsonl(path)


def _shard_entry(path: str, data: bytes) -> dict:
  return {"file": os.path.basename(path), "num_records": data.count(b"\n"), "sha256": _digest(data)}


def _manifest(out_dir: str) -> dict | None:
  path = os.path.join(out_dir, "manifest.json")
  if not storage.exists(path):
    return None
  return read_json(path, f"delete it and re-run the job that wrote {out_dir}")


def _maker(manifest: dict) -> str:
  return manifest.get("job") or "the job that wrote it"


def problems(out_dir: str) -> dict[str, str]:
  """Shard file -> what is wrong with it (missing, record count or digest not the manifest's); {} if sound.

  Artifacts written before the manifest carried counts and digests are checked for missing files only."""
  manifest = _manifest(out_dir)
  if manifest is None:
    return {os.path.join(out_dir, "manifest.json"): "missing"}
  entries = manifest.get("shards") or [{"file": name} for name in manifest.get("files", [])]
  found = {}
  for entry in entries:
    path = os.path.join(out_dir, entry["file"])
    if not storage.exists(path):
      found[path] = "missing"
      continue
    if "sha256" not in entry:
      continue
    data = storage.read_bytes(path)
    count = data.count(b"\n")
    if count != entry["num_records"]:
      found[path] = f"holds {count} records, the manifest says {entry['num_records']}"
    elif _digest(data) != entry["sha256"]:
      found[path] = "its content differs from the manifest's digest"
  return found


def is_complete(out_dir: str) -> bool:
  """The manifest exists and every shard it lists is there with its recorded record count and digest."""
  return not problems(out_dir)


def _check_complete(out_dir: str) -> None:
  """Raises naming the first damaged shard and the job that remakes it."""
  found = problems(out_dir)
  if not found:
    return
  manifest = _manifest(out_dir) or {}
  path, what = next(iter(found.items()))
  more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
  raise ValueError(f"{path}: {what}{more}: {out_dir} is damaged; re-run {_maker(manifest)} "
                   "to remake the damaged shards (finished sound shards are kept)")


def _portable(value: Any, root: str) -> Any:
  """Absolute paths inside `root` (the workdir) as paths relative to it, so a moved workdir still resumes."""
  if isinstance(value, dict):
    return {k: _portable(v, root) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_portable(v, root) for v in value]
  if isinstance(value, str):
    prefix, path = ("hf:", value[3:]) if value.startswith("hf:") else ("", value)
    if storage.isabs(path) and (path == root or path.startswith(root + "/")):
      return prefix + (storage.relpath(path, root) if path != root else ".")
  return value


def _same(old: Any, new: Any) -> bool:
  """Spec equality; an absolute path (written before specs were made portable) matches its relative form."""
  if isinstance(old, dict) and isinstance(new, dict):
    return set(old) == set(new) and all(_same(old[k], new[k]) for k in old)
  if isinstance(old, list) and isinstance(new, list):
    return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new))
  if isinstance(old, str) and isinstance(new, str) and old != new:
    bare_old, bare_new = (old[3:], new[3:]) if old.startswith("hf:") and new.startswith("hf:") else (old, new)
    return storage.isabs(bare_old) and not storage.isabs(bare_new) and bare_old.endswith("/" + bare_new)
  return old == new


def made_from(out_dir: str, inputs: dict) -> bool:
  """Whether the artifact's spec records these `inputs` (or none: made before inputs were recorded)."""
  path = os.path.join(out_dir, "spec.json")
  recorded = read_json(path).get("inputs") if storage.exists(path) else None
  return recorded is None or _same(recorded, json.loads(json.dumps(inputs)))


def changed_inputs(old: dict, new: dict) -> list[str]:
  """The names whose identity differs between two `inputs` records (a name on one side only counts)."""
  return sorted(k for k in set(old) | set(new) if not _same(old.get(k), new.get(k)))


def stale_path(path: str) -> str:
  """The first free `<path>.stale-<n>`: where a result made from other inputs is moved (kept, never deleted)."""
  n = 1
  while storage.exists(f"{path}.stale-{n}"):
    n += 1
  return f"{path}.stale-{n}"


def _check_spec(out_dir: str, spec: dict) -> None:
  path = os.path.join(out_dir, "spec.json")
  spec = json.loads(json.dumps(spec))
  if storage.exists(path):
    old = read_json(path, f"delete {path} to adopt the current config for the shards already there")
    rest = lambda s: {k: v for k, v in s.items() if k != "inputs"}
    if "inputs" in spec and _same(rest(old), rest(spec)) and not _same(old.get("inputs"), spec["inputs"]):
      if "inputs" not in old:  # Written before inputs were recorded: adopt them, keep the shards.
        write_json(path, spec)
        return
      changed = changed_inputs(old["inputs"], spec["inputs"])
      aside = stale_path(out_dir)
      storage.replace(out_dir, aside)
      storage.makedirs(out_dir)
      write_json(path, spec)
      logging.warning("%s was made from other inputs (%s changed): moved to %s, computing it again", out_dir,
                      ", ".join(changed), aside)
      return
    if not _same(old, spec):
      changed = {k: (old.get(k), spec.get(k)) for k in sorted(set(old) | set(spec)) if not _same(old.get(k), spec.get(k))}
      done = sum(1 for name in storage.listdir(out_dir) if name.startswith("shard-") and name.endswith(".jsonl"))
      detail = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
      raise ValueError(f"{out_dir} holds {done} shard(s) made with a different spec (fields {list(changed)} differ: {detail}): set those values "
                       "back to resume them, or write to another output directory (deleting this one throws "
                       "the finished shards away)")
  else:
    write_json(path, spec)


def run_sharded(out_dir: str, num_shards: int, compute_shard: Callable[[int], list[dict]], *, spec: dict,
                summarize: Callable[[list[dict]], dict] | None = None, desc: str = "shards",
                write: bool = True, job: str = "", workdir: str | None = None, inputs: dict | None = None,
                split_over_processes: bool = False) -> dict:
  """Computes every missing shard, then writes the manifest; returns the manifest.

  Args:
    compute_shard: shard index -> its records (must be deterministic in the index).
    spec: what the artifact is made from (config, sources); a mismatch on resume raises.
    summarize: all records -> extra manifest fields (totals such as tokens sampled).
    write: False on non-lead hosts of a multi-host job: they write no spec or manifest (nor, unless
      split_over_processes, shards), and hold no lock.
    split_over_processes: each process computes and writes only its share of the missing shards
      (`parallel.processes.my_share`, on a mesh over its own devices), then every process reads the
      others' from the shared output directory. The manifest is the one a one-process run writes:
      shard i holds the same records whoever computed it. Without it every process computes every
      shard (one mesh over all hosts) and only the lead writes.
    job: the job (and config) that makes this artifact, named in errors about it.
    workdir: paths in `spec` under it are stored relative to it (a moved workdir still resumes).
    inputs: {name: identity} of the models and artifacts the records are computed from
      (`export.model_identity`, `provenance.input_fingerprint`). When only these differ from the
      stored spec's, the old artifact is stale: it is moved to `<out_dir>.stale-<n>` and made again.

  The manifest records each shard's record count and SHA-256; a shard that no longer matches
  (edited, truncated) is moved aside to `<file>.damaged` and computed again.
  """
  if num_shards <= 0:
    raise ValueError(f"{desc}: nothing to compute for {out_dir} (0 shards): the selection of problems or records "
                     "is empty")
  storage.makedirs(out_dir)
  # One writer per artifact (`ttc_jax.locks`): the lock sits beside the folder, which may be moved aside.
  with locks.locked(storage.normpath(out_dir) + ".lock", f"{desc} ({out_dir})", enabled=write):
    return _run_sharded(out_dir, num_shards, compute_shard, spec=spec, summarize=summarize, desc=desc, write=write,
                        job=job, workdir=workdir, inputs=inputs, split=split_over_processes)


def _run_sharded(out_dir, num_shards, compute_shard, *, spec, summarize, desc, write, job, workdir, inputs,
                 split) -> dict:
  if workdir is not None:
    spec = _portable(spec, storage.abspath(workdir))
  if inputs is not None:
    spec = {**spec, "inputs": inputs}
  if write:
    _check_spec(out_dir, spec)
  _barrier("ttc_jax.shards.spec")  # The lead may move a stale artifact aside: look only after it has.
  damaged = problems(out_dir)
  _barrier("ttc_jax.shards.checked")  # Every host has looked before the lead moves anything.
  if not damaged:
    logging.info("%s: complete, skipping (%s)", desc, out_dir)
    return _manifest(out_dir)
  manifest_path = os.path.join(out_dir, "manifest.json")
  if storage.exists(manifest_path):
    for path, what in damaged.items():
      logging.warning("%s: %s: %s; computing it again", desc, path, what)
      if write and storage.exists(path):
        storage.replace(path, path + ".damaged")
    if write:
      storage.remove(manifest_path)
  redo = set(damaged)
  todo = [i for i in range(num_shards)
          if shard_path(out_dir, i, num_shards) in redo or not storage.exists(shard_path(out_dir, i, num_shards))]
  _barrier("ttc_jax.shards.todo")  # Every host must agree on the work (a shared workdir) before any is written.
  if len(todo) < num_shards:
    logging.info("%s: resuming, %d of %d shards already written", desc, num_shards - len(todo), num_shards)
  if split:
    from ttc_jax.parallel import processes  # jax: only multi-process runs split.
    todo = processes.my_share(todo)
  start = time.time()
  computed: dict[int, list[dict]] = {}
  entries: dict[int, dict] = {}
  for n_done, index in enumerate(todo, 1):
    records = compute_shard(index)
    path = shard_path(out_dir, index, num_shards)
    data = _serialize(records)
    entries[index] = _shard_entry(path, data)
    if write or split:
      storage.write_bytes(path, data)
    computed[index] = records  # Non-lead hosts keep theirs: the lead's files may not be there yet.
    rate = (time.time() - start) / n_done
    logging.info("%s: shard %d/%d done (%d records) | ETA %.0fs", desc, index + 1, num_shards, len(records),
                 rate * (len(todo) - n_done))
  if split:
    _barrier("ttc_jax.shards.written")  # Every process's shards are on disk before any is read back.
  records = []
  for i in range(num_shards):
    if i not in computed:
      path = shard_path(out_dir, i, num_shards)
      data = storage.read_bytes(path)
      entries[i] = _shard_entry(path, data)
      computed[i] = read_jsonl(path)
    records.extend(computed[i])
  manifest = {"num_shards": num_shards, "num_records": len(records), "git_commit": git_commit(), "spec": spec,
              "job": job, "files": [os.path.basename(shard_path(out_dir, i, num_shards)) for i in range(num_shards)],
              "shards": [entries[i] for i in range(num_shards)]}
  if summarize is not None:
    manifest.update(summarize(records))
  if write:
    write_json(manifest_path, manifest)
  if split:
    _barrier("ttc_jax.shards.manifest")  # No process moves on (and reads the artifact) before it is complete.
  return manifest


def read_records(out_dir: str, *, num_shards: int | None = None, require_manifest: bool = True) -> list[dict]:
  """All records in shard order. Raises naming the directory if the artifact is incomplete."""
  if num_shards is None:
    manifest_path = os.path.join(out_dir, "manifest.json")
    if not storage.exists(manifest_path):
      raise FileNotFoundError(f"{manifest_path} is missing: the job that writes {out_dir} has not finished")
    num_shards = _manifest(out_dir)["num_shards"]
    _check_complete(out_dir)
  elif require_manifest and not storage.exists(os.path.join(out_dir, "manifest.json")):
    raise FileNotFoundError(f"{out_dir}/manifest.json is missing: the job that writes it has not finished")
  elif require_manifest:
    _check_complete(out_dir)
  records = []
  for i in range(num_shards):
    path = shard_path(out_dir, i, num_shards)
    if not storage.exists(path):
      raise FileNotFoundError(f"{path} is missing from a complete artifact")
    records.extend(_read_shard(path))
  return records


def require_complete(out_dir: str, field: str, maker: str) -> None:
  """Raises naming the config field that points at `out_dir` and the job that makes it."""
  if not storage.exists(os.path.join(out_dir, "manifest.json")):
    raise FileNotFoundError(f"{field}: {out_dir} is not a finished artifact (no manifest.json); run {maker} first")
  try:
    _check_complete(out_dir)
  except ValueError as e:
    raise ValueError(f"{field}: {e}") from None


def _barrier(name: str) -> None:
  from ttc_jax.parallel.processes import barrier  # jax: only needed once the job has started it.
  barrier(name)
