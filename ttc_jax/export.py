"""Self-contained model directories for evaluation jobs.

  OUT/params/            Orbax checkpoint of the parameters alone
  OUT/model_config.json  models.ModelConfig fields
  OUT/tokenizer.model    the SentencePiece model it was trained with
  OUT/manifest.json      param count, training step, source workdir, git commit

`load_exported` restores onto any mesh: shardings come from the parameters'
logical axis names on the loading side, not from how they were saved.
"""
import dataclasses
import datetime
import json
import os
import shutil
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from jax.sharding import Mesh

from ttc_jax.models import ModelConfig, Transformer
from ttc_jax.models.flops import tree_param_count
from ttc_jax.parallel import RULES, logical_shardings
from ttc_jax.provenance import git_commit, write_json
from ttc_jax.tasks.tokenizer import Tokenizer

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ExportedModel:
  model: Transformer
  params: Any
  tokenizer: Tokenizer
  manifest: dict


def read_model_config(path: str) -> ModelConfig:
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} is missing: is this a training stage or export directory?")
  with open(path) as f:
    return ModelConfig(**json.load(f))


def abstract_params(cfg: ModelConfig, mesh: Mesh, rules=RULES) -> Any:
  """Parameter ShapeDtypeStructs carrying their shardings on `mesh`."""
  model = Transformer(cfg)
  boxed = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 1), jnp.int32))
  shardings = logical_shardings(boxed, mesh, rules)
  return jax.tree_util.tree_map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                nn.unbox(boxed), shardings)


def export_model(out_dir: str, params: Any, cfg: ModelConfig, tokenizer_path: str, *, step: int,
                 source: str) -> dict:
  """Writes the export directory; the manifest is written last, so its presence means complete."""
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir):
    shutil.rmtree(out_dir)  # A stale or half-written export; the source checkpoint is untouched.
  os.makedirs(out_dir)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(out_dir, "params"), params)
  write_json(os.path.join(out_dir, "model_config.json"), dataclasses.asdict(cfg))
  shutil.copyfile(tokenizer_path, os.path.join(out_dir, "tokenizer.model"))
  manifest = {"format_version": FORMAT_VERSION, "param_count": tree_param_count(params), "step": step,
              "source_workdir": os.path.abspath(source), "git_commit": git_commit(),
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat()}
  write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest


def load_exported(export_dir: str, mesh: Mesh, rules=RULES) -> ExportedModel:
  """Restores an export onto `mesh` (any device count or axis sizes)."""
  manifest_path = os.path.join(export_dir, "manifest.json")
  if not os.path.exists(manifest_path):
    raise FileNotFoundError(f"{manifest_path} is missing: {export_dir} is not a complete export")
  with open(manifest_path) as f:
    manifest = json.load(f)
  if manifest.get("format_version") != FORMAT_VERSION:
    raise ValueError(f"{manifest_path}: format_version {manifest.get('format_version')} != {FORMAT_VERSION}")
  cfg = read_model_config(os.path.join(export_dir, "model_config.json"))
  with ocp.StandardCheckpointer() as ckptr:
    params = ckptr.restore(os.path.join(os.path.abspath(export_dir), "params"), abstract_params(cfg, mesh, rules))
  return ExportedModel(model=Transformer(cfg), params=params,
                       tokenizer=Tokenizer(os.path.join(export_dir, "tokenizer.model")), manifest=manifest)


def load_stage(stage_dir: str, mesh: Mesh, step: int | None = None, rules=RULES) -> ExportedModel:
  """Loads a training stage directory (its latest checkpoint's params) like an export."""
  from ttc_jax.train import checkpoint_dir  # Training-side import, only for this path.
  from ttc_jax.train.checkpoint import restore_params

  cfg = read_model_config(os.path.join(stage_dir, "model_config.json"))
  params, step = restore_params(checkpoint_dir(stage_dir), abstract_params(cfg, mesh, rules), step)
  tokenizer_path = os.path.join(stage_dir, "tokenizer.model")
  if not os.path.exists(tokenizer_path):
    raise FileNotFoundError(f"{tokenizer_path} is missing: was {stage_dir} written by a training job?")
  return ExportedModel(model=Transformer(cfg), params=params, tokenizer=Tokenizer(tokenizer_path),
                       manifest={"step": step, "source_workdir": os.path.abspath(stage_dir)})


def load_model(path: str, mesh: Mesh) -> ExportedModel:
  """An export directory (has manifest.json) or a training stage directory (has checkpoints/)."""
  if os.path.exists(os.path.join(path, "manifest.json")):
    return load_exported(path, mesh)
  if os.path.isdir(os.path.join(path, "checkpoints")):
    return load_stage(path, mesh)
  raise FileNotFoundError(f"{path} is neither an export (manifest.json) nor a training stage (checkpoints/)")
