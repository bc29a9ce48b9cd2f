"""Self-contained model directories for evaluation jobs.

  OUT/params/            Orbax checkpoint of the parameters alone
  OUT/model_config.json  models.ModelConfig fields
  OUT/tokenizer.model    the SentencePiece model it was trained with (or, imported from
                         Hugging Face: tokenizer.json and friends)
  OUT/manifest.json      param count, training step, source workdir, git commit
                         (imports: hf_source, hf_model_type)

`load_exported` restores onto any mesh: shardings come from the parameters'
logical axis names on the loading side, not from how they were saved.
"""
import dataclasses
import datetime
import hashlib
import os
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import Mesh

from ttc_jax import storage
from ttc_jax.models import ModelConfig, Transformer
from ttc_jax.model_refs import HF_PREFIX, hf_path, is_hf
from ttc_jax.models.flops import tree_param_count
from ttc_jax.parallel import RULES, logical_shardings
from ttc_jax.provenance import fingerprint, git_commit, read_json, write_json
from ttc_jax.tasks.tokenizer import Tokenizer, load_tokenizer

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ExportedModel:
  model: Transformer
  params: Any
  tokenizer: Tokenizer
  manifest: dict


def read_model_config(path: str) -> ModelConfig:
  if not storage.exists(path):
    raise FileNotFoundError(f"{path} is missing: is this a training stage or export directory?")
  return ModelConfig(**read_json(path, "re-run the job that wrote this directory"))


def abstract_params(cfg: ModelConfig, mesh: Mesh, rules=RULES) -> Any:
  """Parameter ShapeDtypeStructs carrying their shardings on `mesh`."""
  model = Transformer(cfg)
  boxed = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 1), jnp.int32))
  shardings = logical_shardings(boxed, mesh, rules)
  return jax.tree_util.tree_map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                nn.unbox(boxed), shardings)


def tokenizer_in(directory: str) -> Tokenizer:
  """The tokenizer of a model directory: tokenizer.json (Hugging Face) first, else tokenizer.model.

  tokenizer.json comes first because HF directories that hold both (Llama 2) have a
  SentencePiece model whose special ids are not this project's.
  """
  if storage.exists(os.path.join(directory, "tokenizer.json")):
    return load_tokenizer(directory)
  if storage.exists(os.path.join(directory, "tokenizer.model")):
    return load_tokenizer(os.path.join(directory, "tokenizer.model"))
  raise FileNotFoundError(f"tokenizer missing: {directory} has neither tokenizer.json nor tokenizer.model")


def model_config_of(ref: str, field: str, hint: str = "") -> ModelConfig:
  """The ModelConfig of any model reference (`hf:/dir`, export directory, training stage), no weights read.

  `field` names the config field in errors; `hint` says what makes the missing artifact."""
  if is_hf(ref):
    from ttc_jax.models.hf import read_hf_config
    return read_hf_config(hf_path(ref))[0]
  path = os.path.join(ref, "model_config.json")
  if not storage.exists(path):
    raise FileNotFoundError(f"{field}: {ref} is not a training stage, an export directory (no model_config.json) "
                            f"nor an hf:/dir reference{'; ' + hint if hint else ''}")
  return read_model_config(path)


def tokenizer_files(directory: str) -> list[str]:
  """The files that make a model directory's tokenizer (HF files and generation_config.json, or
  tokenizer.model), to copy into a stage or export trained from it."""
  from ttc_jax.models.hf.saving import TOKENIZER_FILES
  files = [os.path.join(directory, name) for name in TOKENIZER_FILES + ("generation_config.json",)
           if storage.exists(os.path.join(directory, name))]
  if not any(os.path.basename(f) in ("tokenizer.json", "tokenizer.model") for f in files):
    raise FileNotFoundError(f"tokenizer missing: {directory} has neither tokenizer.json nor tokenizer.model")
  return files


def copy_tokenizer(src_dir: str, out_dir: str) -> None:
  for path in tokenizer_files(src_dir):
    storage.copyfile(path, os.path.join(out_dir, os.path.basename(path)))


def params_digest(params: Any) -> str:
  """A fingerprint of parameter values: per leaf, its sum, sum of squares and a position-weighted sum,
  reduced on the device (a few floats per leaf cross to the host, whatever the model's size)."""
  def sums(x):
    x = x.astype(jnp.float32).ravel()
    w = (jnp.arange(x.size, dtype=jnp.int32) % 7 + 1).astype(jnp.float32)
    return jnp.stack([jnp.sum(x), jnp.sum(x * x), jnp.sum(x * w)])
  leaves = jax.tree_util.tree_leaves_with_path(params)
  values = jax.device_get(jax.jit(lambda ls: [sums(v) for v in ls])([v for _, v in leaves]))
  return fingerprint({jax.tree_util.keystr(k): [float(f"{x:.6g}") for x in v] for (k, _), v in zip(leaves, values)})


def export_model(out_dir: str, params: Any, cfg: ModelConfig, tokenizer_path: str | Sequence[str], *, step: int,
                 source: str, extra_manifest: dict | None = None) -> dict:
  """Writes the export directory; the manifest is written last, so its presence means complete.

  tokenizer_path: the SentencePiece model, or a model directory's `tokenizer_files` (copied by name).
  """
  out_dir = storage.abspath(out_dir)
  if storage.exists(out_dir):
    storage.rmtree(out_dir)  # A stale or half-written export; the source checkpoint is untouched.
  storage.makedirs(out_dir)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(out_dir, "params"), params)
  write_json(os.path.join(out_dir, "model_config.json"), dataclasses.asdict(cfg))
  if isinstance(tokenizer_path, str):
    storage.copyfile(tokenizer_path, os.path.join(out_dir, "tokenizer.model"))
  else:
    for path in tokenizer_path:
      storage.copyfile(path, os.path.join(out_dir, os.path.basename(path)))
  manifest = {"format_version": FORMAT_VERSION, "param_count": tree_param_count(params), "step": step,
              "params_digest": params_digest(params), "source_workdir": storage.abspath(source), "git_commit": git_commit(),
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(), **(extra_manifest or {})}
  write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest


def load_exported(export_dir: str, mesh: Mesh, rules=RULES) -> ExportedModel:
  """Restores an export onto `mesh` (any device count or axis sizes)."""
  cfg, params, manifest = _exported_params(export_dir, mesh, rules)
  return ExportedModel(model=Transformer(cfg), params=params, tokenizer=tokenizer_in(export_dir), manifest=manifest)


def _exported_params(export_dir: str, mesh: Mesh, rules=RULES) -> tuple[ModelConfig, Any, dict]:
  manifest_path = os.path.join(export_dir, "manifest.json")
  if not storage.exists(manifest_path):
    raise FileNotFoundError(f"{manifest_path} is missing: {export_dir} is not a complete export")
  manifest = read_json(manifest_path, "export the model again")
  if manifest.get("format_version") != FORMAT_VERSION:
    raise ValueError(f"{manifest_path}: format_version {manifest.get('format_version')} != {FORMAT_VERSION}")
  cfg = read_model_config(os.path.join(export_dir, "model_config.json"))
  with ocp.StandardCheckpointer() as ckptr:
    params = ckptr.restore(os.path.join(storage.abspath(export_dir), "params"), abstract_params(cfg, mesh, rules))
  return cfg, params, manifest


def load_stage(stage_dir: str, mesh: Mesh, step: int | None = None, rules=RULES) -> ExportedModel:
  """Loads a training stage directory (its latest checkpoint's params) like an export."""
  from ttc_jax.train import checkpoint_dir  # Training-side import, only for this path.
  from ttc_jax.train.checkpoint import restore_params

  cfg = read_model_config(os.path.join(stage_dir, "model_config.json"))
  params, step = restore_params(checkpoint_dir(stage_dir), abstract_params(cfg, mesh, rules), step)
  return ExportedModel(model=Transformer(cfg), params=params, tokenizer=tokenizer_in(stage_dir),
                       manifest={"step": step, "source_workdir": storage.abspath(stage_dir)})


def load_hf(model_dir: str, mesh: Mesh, rules=RULES, **config_overrides) -> ExportedModel:
  """A Hugging Face model directory (config.json, safetensors, tokenizer) placed onto `mesh`."""
  cfg, params, manifest = load_params(HF_PREFIX + model_dir, mesh, rules, **config_overrides)
  return ExportedModel(model=Transformer(cfg), params=params, tokenizer=tokenizer_in(model_dir), manifest=manifest)


def load_params(ref: str, mesh: Mesh, rules=RULES, **hf_overrides) -> tuple[ModelConfig, Any, dict]:
  """(config, params, manifest) of any model reference, without its tokenizer.

  The manifest of an `hf:` reference records its source and model_type, so an
  export of it writes the same family back (`hf_model_type`).
  """
  if is_hf(ref):
    from ttc_jax.models import hf  # Only HF references pay for this import.
    model_dir = hf_path(ref)
    cfg, text = hf.read_hf_config(model_dir, **hf_overrides)
    params = hf.load_hf_params(model_dir, cfg, mesh, rules)
    return cfg, params, {"hf_source": storage.abspath(model_dir), "hf_model_type": text["model_type"],
                         "bos_token_id": text.get("bos_token_id"), "eos_token_id": text.get("eos_token_id")}
  if storage.exists(os.path.join(ref, "manifest.json")):
    return _exported_params(ref, mesh, rules)
  if storage.isdir(os.path.join(ref, "checkpoints")):
    from ttc_jax.train import checkpoint_dir  # Training-side import, only for this path.
    from ttc_jax.train.checkpoint import restore_params
    cfg = read_model_config(os.path.join(ref, "model_config.json"))
    params, step = restore_params(checkpoint_dir(ref), abstract_params(cfg, mesh, rules), None)
    return cfg, params, {"step": step, "source_workdir": storage.abspath(ref)}
  raise FileNotFoundError(f"{ref} is neither an export (manifest.json), a training stage (checkpoints/) "
                          f"nor an hf:/path reference")


def load_model(path: str, mesh: Mesh) -> ExportedModel:
  """An export directory (has manifest.json), a training stage directory (has checkpoints/),
  or `hf:/path/to/dir` (a Hugging Face model directory)."""
  if is_hf(path):
    return load_hf(hf_path(path), mesh)
  if storage.exists(os.path.join(path, "manifest.json")):
    return load_exported(path, mesh)
  if storage.isdir(os.path.join(path, "checkpoints")):
    return load_stage(path, mesh)
  raise FileNotFoundError(f"{path} is neither an export (manifest.json), a training stage (checkpoints/) "
                          f"nor an hf:/path reference")


def _file_sample_digest(path: str, chunk: int = 1 << 20) -> str:
  """A digest of a weight file's size, first and last MiB (its header and both ends of the data): reading
  gigabytes to identify a model would cost more than most jobs that check it."""
  size = storage.size(path)
  h = hashlib.sha256(str(size).encode())
  with storage.open(path, "rb") as f:
    h.update(f.read(chunk))
    if size > chunk:
      f.seek(max(chunk, size - chunk))
      h.update(f.read(chunk))
  return h.hexdigest()[:16]


def model_identity(ref: str) -> str:
  """A fingerprint of the model `ref` names (stage, export or `hf:DIR`), read from its files without loading it.

  Artifacts made from a model record it (`shards.run_sharded(inputs=)`, results files), so a retrained or
  replaced model makes them stale instead of silently reusing them. A stage: its training fingerprint
  (train_summary.json) and newest checkpoint step; an export: its manifest (not the time or commit it was
  written at), which holds `params_digest`; `hf:`: config.json and a sample digest of every weight file.
  """
  if is_hf(ref):
    d = hf_path(ref)
    weights = sorted(n for n in storage.listdir(d) if n.endswith((".safetensors", ".bin")))
    return fingerprint({"hf_config": read_json(os.path.join(d, "config.json")),
                        "weights": {n: _file_sample_digest(os.path.join(d, n)) for n in weights}})
  manifest_path = os.path.join(ref, "manifest.json")
  if storage.exists(manifest_path):  # Its params_digest identifies the weights (exports made since it exists).
    manifest = read_json(manifest_path)
    return fingerprint({k: v for k, v in manifest.items() if k not in ("git_commit", "created", "source_workdir")})
  from ttc_jax.train import checkpoint_dir  # Training-side import, only for stage directories.
  from ttc_jax.train.checkpoint import latest_step
  summary_path = os.path.join(ref, "train_summary.json")
  summary = read_json(summary_path) if storage.exists(summary_path) else {}
  config_path = os.path.join(ref, "model_config.json")
  return fingerprint({"model_fingerprint": summary.get("model_fingerprint"),
                      "model_config": read_json(config_path) if storage.exists(config_path) else None,
                      "step": latest_step(checkpoint_dir(ref))})
