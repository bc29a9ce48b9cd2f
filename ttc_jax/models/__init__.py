"""Flax decoder transformer, its KV cache, and FLOPs accounting."""
from ttc_jax.models.config import ModelConfig
from ttc_jax.models.kv_cache import KVCache, gather_rows, init_cache, repeat_rows
from ttc_jax.models.transformer import unstack_layers
from ttc_jax.models.transformer import ModelOutput, Transformer
