"""Job `export_hf`: a stage directory, export directory or hf: reference -> a Hugging Face directory.

Writes export_hf.out_dir (default WORKDIR/hf/<source basename>): config.json,
generation_config.json, model.safetensors (sharded with an index above
export_hf.max_shard_gb) and the source's tokenizer files, loadable by
transformers' AutoModelForCausalLM / AutoTokenizer. The family (model_type) is
the one recorded at import, else inferred from the switches ("llama" for this
project's own models); see ttc_jax/models/hf/saving.py for the reward head.
"""
import dataclasses
import os

from absl import logging

from ttc_jax import config_parsing, export, storage
from ttc_jax.jobs import common
from ttc_jax.model_refs import hf_path, resolve
from ttc_jax.models.hf import save_hf_checkpoint
from ttc_jax.models.hf.saving import TOKENIZER_FILES
from ttc_jax.tasks import tokenizer as sp_tokenizer

SECTIONS = {"job", "export_hf", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class ExportHfConfig:
  source: str = "export/policy"  # Stage dir, export dir or hf:/path (relative paths are under WORKDIR).
  out_dir: str = ""  # "" = WORKDIR/hf/<basename of source>.
  model_type: str = ""  # "" = recorded at import, else inferred from the architecture switches.
  dtype: str = ""  # Tensor dtype written; "" = the parameters' dtype.
  max_shard_gb: float = 5.0

  def __post_init__(self):
    if self.max_shard_gb <= 0:
      raise ValueError(f"export_hf.max_shard_gb={self.max_shard_gb} must be positive")


def _local_tokenizer_dir(source_dir: str) -> str:
  """`source_dir` itself if local; for a bucket, a local folder with just its tokenizer files (not the weights)."""
  if not storage.is_remote(source_dir):
    return source_dir
  local = storage.local_mirror(source_dir)
  for name in (*TOKENIZER_FILES, "generation_config.json"):
    if storage.exists(storage.join(source_dir, name)):
      with open(os.path.join(local, name), "wb") as f:
        f.write(storage.read_bytes(storage.join(source_dir, name)))
  return local


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "export_hf")
  cfg = config_parsing.parse_section(ExportHfConfig, config.get("export_hf"), "export_hf")
  source = resolve(workdir, cfg.source)
  source_dir = hf_path(source)
  out_dir = cfg.out_dir or os.path.join(storage.abspath(workdir), "hf", os.path.basename(source_dir.rstrip("/")))
  mesh = common.setup_mesh(config)
  model_cfg, params, manifest = export.load_params(source, mesh)
  bos, eos = manifest.get("bos_token_id"), manifest.get("eos_token_id")
  if "hf_model_type" not in manifest:  # Our own SentencePiece models: fixed special ids.
    bos, eos = sp_tokenizer.BOS_ID, sp_tokenizer.EOS_ID
  # safetensors and the tokenizer copy write local files: on a bucket they are written into a local
  # mirror and each file is uploaded whole after (a kill leaves no half-written object).
  with storage.mirrored(out_dir, download=False) as local_out:
    files = save_hf_checkpoint(local_out, params, model_cfg, _local_tokenizer_dir(source_dir),
                               model_type=cfg.model_type or manifest.get("hf_model_type", ""),
                               dtype=cfg.dtype or None, bos_id=bos, eos_id=eos,
                               max_shard_bytes=int(cfg.max_shard_gb * (1 << 30)))
  logging.info("Exported %s to %s (%d safetensors files)", source, out_dir, len(files))
