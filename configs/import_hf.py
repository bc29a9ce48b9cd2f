"""Import a Hugging Face model directory as this project's export directory.

  python -m ttc_jax.main --config=configs/import_hf.py --workdir=workdirs/real \
      --config.import_hf.source=/models/Llama-3.2-1B-Instruct

Writes WORKDIR/export/<name>/{params/, model_config.json, tokenizer files, manifest.json};
jobs then take `export/<name>` (fast Orbax restore on any mesh) where they would take
`hf:/models/...` (safetensors read each time). Argument "smoke" is accepted (nothing
to shrink) so every config takes it.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_defaults.check_arg(arg, ("", "smoke"), "configs/import_hf.py")
  c = ml_collections.ConfigDict()
  c.job = "import_hf"
  c.import_hf = ml_collections.ConfigDict()
  c.import_hf.source = ""
  c.import_hf.out_dir = ""
  c.import_hf.param_dtype = ""  # "" = the checkpoint's dtype.
  c.import_hf.dtype = ""
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  return c
