"""Export a model (stage, export directory or hf: reference) as a Hugging Face directory.

  python -m ttc_jax.main --config=configs/export_hf.py --workdir=workdirs/demo
  python -m ttc_jax.main --config=configs/export_hf.py --workdir=workdirs/demo \
      --config.export_hf.source=prm --config.export_hf.dtype=bfloat16

Writes WORKDIR/hf/<name>/{config.json, generation_config.json, model*.safetensors, tokenizer
files}; `transformers.AutoModelForCausalLM.from_pretrained(dir)` loads it. Argument "smoke"
is accepted (nothing to shrink) so every config takes it.
"""
import ml_collections

from ttc_jax import config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_defaults.check_arg(arg, ("", "smoke"), "configs/export_hf.py")
  c = ml_collections.ConfigDict()
  c.job = "export_hf"
  c.export_hf = ml_collections.ConfigDict()
  c.export_hf.source = "export/policy"
  c.export_hf.out_dir = ""
  c.export_hf.model_type = ""  # "" = recorded at import, else inferred ("llama" for this project's models).
  c.export_hf.dtype = ""  # "" = the parameters' dtype.
  c.export_hf.max_shard_gb = 5.0
  c.mesh = config_defaults.mesh()
  c.distributed = config_defaults.distributed()
  return c
