"""Job `export`: a training stage's checkpoint -> a self-contained model directory.

Reads WORKDIR/<export.stage> (checkpoints/, model_config.json, tokenizer.model)
and writes export.out_dir (default WORKDIR/export/<stage>). See ttc_jax/export.py.
"""
import dataclasses
import os

from absl import logging

from ttc_jax import config_parsing, export, storage
from ttc_jax.jobs import common
from ttc_jax.train import checkpoint_dir
from ttc_jax.train.checkpoint import restore_params

SECTIONS = {"job", "export", "mesh", "distributed"}


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  stage: str = "policy"  # Training stage directory under WORKDIR.
  source: str = ""  # Explicit stage directory; overrides WORKDIR/<stage>.
  out_dir: str = ""  # "" = WORKDIR/export/<stage>.
  step: int = -1  # -1 = latest committed checkpoint.


def run(config, workdir: str) -> None:
  config_parsing.check_sections(config, SECTIONS, "export")
  cfg = config_parsing.parse_section(ExportConfig, config.get("export"), "export")
  source = cfg.source or os.path.join(storage.abspath(workdir), cfg.stage)
  out_dir = cfg.out_dir or os.path.join(storage.abspath(workdir), "export", cfg.stage)
  model_cfg = export.read_model_config(os.path.join(source, "model_config.json"))
  tokenizer_files = export.tokenizer_files(source)
  mesh = common.setup_mesh(config)
  params, step = restore_params(checkpoint_dir(source), export.abstract_params(model_cfg, mesh),
                                None if cfg.step < 0 else cfg.step)
  manifest = export.export_model(out_dir, params, model_cfg, tokenizer_files, step=step, source=source)
  logging.info("Exported step %d (%d params) of %s to %s", step, manifest["param_count"], source, out_dir)
