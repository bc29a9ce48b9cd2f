"""Job `import_hf`: a Hugging Face model directory -> this project's export directory.

Reads import_hf.source (a directory, with or without the `hf:` prefix) and writes
import_hf.out_dir (default WORKDIR/export/<source basename>): Orbax params,
model_config.json, the tokenizer files, and a manifest recording the source and
its model_type (export_hf writes that family back). Later jobs then restore the
Orbax checkpoint onto any mesh instead of re-reading safetensors.
"""
import dataclasses
import os

from absl import logging

from ttc_jax import config_parsing, export, storage
from ttc_jax.jobs import common
from ttc_jax.model_refs import HF_PREFIX, hf_path, resolve

SECTIONS = {"job", "import_hf", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class ImportConfig:
  source: str = ""  # The HF model directory (relative paths are under WORKDIR).
  out_dir: str = ""  # "" = WORKDIR/export/<basename of source>.
  param_dtype: str = ""  # "" = the checkpoint's dtype (config.json), so nothing is rounded.
  dtype: str = ""  # Compute dtype; "" = the checkpoint's.

  def __post_init__(self):
    if not self.source:
      raise ValueError("import_hf.source is empty: set it to a Hugging Face model directory")


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "import_hf")
  cfg = config_parsing.parse_section(ImportConfig, config.get("import_hf"), "import_hf")
  source = hf_path(resolve(workdir, HF_PREFIX + hf_path(cfg.source)))
  out_dir = cfg.out_dir or os.path.join(storage.abspath(workdir), "export", os.path.basename(source.rstrip("/")))
  mesh = common.setup_mesh(config)
  overrides = {k: v for k, v in (("param_dtype", cfg.param_dtype), ("dtype", cfg.dtype)) if v}
  model_cfg, params, info = export.load_params(HF_PREFIX + source, mesh, **overrides)
  manifest = export.export_model(out_dir, params, model_cfg, export.tokenizer_files(source), step=0, source=source,
                                 extra_manifest=info)
  logging.info("Imported %s (%s, %d params) to %s", source, info["hf_model_type"], manifest["param_count"], out_dir)
