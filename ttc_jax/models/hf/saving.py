"""Writes params as a Hugging Face model directory that transformers loads.

  OUT/config.json, OUT/generation_config.json, OUT/model.safetensors (or shards + index),
  and the tokenizer files found in `tokenizer_dir`.

One HF tensor at a time is gathered to the host (a layer's slice of a stacked
parameter), so host memory stays near the largest single tensor.
Our PRM/ORM scalar head is written as `score.weight` [1, D] / `score.bias` [1]
(the layout of transformers' *ForSequenceClassification heads); config.json
keeps the CausalLM architecture, so transformers reports them as unused, and
our own import reads them back (config.json's "ttc_jax" block sets scalar_head).
"""
import json
import os
import shutil

import jax
import numpy as np

from ttc_jax.models.config import ModelConfig
from ttc_jax.models.hf import families
from ttc_jax.models.hf import params as pmap
from ttc_jax.models.hf import safetensors_io

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "tokenizer.model")


def _leaf(params: dict, path: str):
  node = params["params"] if "params" in params else params
  for key in path.split("/"):
    node = node[key]
  return node


def _host(x) -> np.ndarray:
  return np.asarray(jax.device_get(x))


def save_hf_checkpoint(out_dir: str, params: dict, cfg: ModelConfig, tokenizer_dir: str | None = None, *,
                       model_type: str = "", dtype: str | None = None, bos_id: int | None = None,
                       eos_id: int | list[int] | None = None, max_shard_bytes: int = 5 << 30) -> list[str]:
  """Writes the directory; returns the safetensors files written. dtype: default cfg.param_dtype."""
  dtype = dtype or cfg.param_dtype
  np_dtype = np.dtype(jax.numpy.dtype(dtype))
  hf_config = families.hf_config_from_model(cfg, model_type, dtype=dtype, bos_id=bos_id, eos_id=eos_id)
  os.makedirs(out_dir, exist_ok=True)
  specs, sources = [], {}
  for row in pmap.rows(cfg):
    leaf = _leaf(params, row.path)
    want = pmap.stacked_shape(row, cfg)
    if tuple(leaf.shape) != want:
      raise ValueError(f"params[{row.path!r}] has shape {list(leaf.shape)}, the config implies {list(want)}")
    for i, name in enumerate(pmap.hf_names(row, cfg, "model.", "")):
      shape = row.to_hf(np.empty(row.shape(cfg), np.int8), cfg).shape
      specs.append((name, np_dtype, shape))
      sources[name] = (row, leaf, i if row.layer else None)

  def produce(name):
    row, leaf, i = sources[name]
    ours = _host(leaf[i]) if i is not None else _host(leaf)  # One layer's slice leaves the devices.
    return np.ascontiguousarray(row.to_hf(ours, cfg)).astype(np_dtype)

  for stale in os.listdir(out_dir):  # A previous export's shards would shadow or confuse the index.
    if stale.endswith(".safetensors") or stale == safetensors_io.INDEX_FILE:
      os.remove(os.path.join(out_dir, stale))
  files = safetensors_io.write_checkpoint(out_dir, specs, produce, max_shard_bytes)
  generation = {k: v for k, v in (("bos_token_id", bos_id), ("eos_token_id", eos_id)) if v is not None}
  if tokenizer_dir and os.path.exists(os.path.join(tokenizer_dir, "generation_config.json")):
    with open(os.path.join(tokenizer_dir, "generation_config.json")) as f:
      generation = {**json.load(f), **generation}
  _write_json(os.path.join(out_dir, "generation_config.json"), generation)
  if tokenizer_dir:
    for name in TOKENIZER_FILES:
      src = os.path.join(tokenizer_dir, name)
      if os.path.exists(src) and os.path.abspath(src) != os.path.abspath(os.path.join(out_dir, name)):
        shutil.copyfile(src, os.path.join(out_dir, name))
  _write_json(os.path.join(out_dir, "config.json"), hf_config)  # Last: its presence marks a complete directory.
  return files


def _write_json(path: str, payload: dict) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(payload, f, indent=2)
  os.replace(path + ".tmp", path)
