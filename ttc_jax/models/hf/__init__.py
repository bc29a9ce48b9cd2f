"""Hugging Face checkpoints: safetensors I/O, config.json per family, the parameter map."""
from ttc_jax.models.hf.families import SUPPORTED, hf_config_from_model, model_config_from_hf, read_hf_config
from ttc_jax.models.hf.loading import LoadStats, abstract_hf_params, load_hf_params
from ttc_jax.models.hf.safetensors_io import Checkpoint
from ttc_jax.models.hf.saving import save_hf_checkpoint
