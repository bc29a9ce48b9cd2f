"""Export a trained stage (default: the policy) as a self-contained model directory.

  python -m ttc_jax.main --config=configs/export.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/export.py --workdir=workdirs/demo --config.export.stage=prm

Writes WORKDIR/export/<stage>/{params/, model_config.json, tokenizer.model, manifest.json};
`ttc_jax.export.load_exported(dir, mesh)` restores it on any mesh. Argument
"smoke" is accepted (nothing to shrink) so every config takes it.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_defaults.check_arg(arg, ("", "smoke"), "configs/export.py")
  c = ml_collections.ConfigDict()
  c.job = "export"
  c.export = ml_collections.ConfigDict()
  c.export.stage = "policy"
  c.export.source = ""
  c.export.out_dir = ""
  c.export.step = -1
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  return c
