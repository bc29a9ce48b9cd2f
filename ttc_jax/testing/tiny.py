"""Tiny model configs and batches for tests (D=32, 2 layers)."""
import importlib.util
import os

import jax
import numpy as np

from ttc_jax.models import ModelConfig


def tiny_model_config(**overrides) -> ModelConfig:
  base = dict(vocab_size=48, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64, max_len=64)
  base.update(overrides)
  return ModelConfig(**base)


def random_lm_batches(n_examples: int, seq_len: int, vocab_size: int, seed: int = 0) -> np.ndarray:
  """int32[n, seq_len] tokens with a learnable pattern (each token = previous + 1 mod vocab)."""
  rng = np.random.RandomState(seed)
  start = rng.randint(3, vocab_size, size=(n_examples, 1))
  return ((start + np.arange(seq_len)[None]) % (vocab_size - 3) + 3).astype(np.int32)


def _lm_example(tokens_T: np.ndarray) -> dict[str, np.ndarray]:
  return {"tokens": tokens_T, "loss_mask": np.ones_like(tokens_T)}  # A function, so worker processes can pickle it.


def grain_lm_iterator(tokens: np.ndarray, batch_size: int, seed: int = 0, workers: int = 0):
  """A checkpointable grain iterator of {"tokens", "loss_mask"} batches over fixed examples."""
  import grain

  from ttc_jax.tasks.grain_pipeline import batch_iterator
  ds = grain.MapDataset.source(tokens).seed(seed).shuffle().repeat()
  return batch_iterator(ds.map(_lm_example).batch(batch_size, drop_remainder=True), workers)


def devices(n: int):
  return jax.devices()[:n]


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_file_module(relpath: str, name: str):
  """The Python file at `relpath` (from the repository root) as a module named `name`: configs,
  bench/ and tools scripts are files, not packages."""
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_ROOT, relpath))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config_module(name: str):
  """configs/<name>.py as a module (config files are loaded by path, as ml_collections does)."""
  return load_file_module(os.path.join("configs", f"{name}.py"), f"{name}_config")


def export_tiny_model(out_dir: str, tokenizer, *, seed: int = 0, **overrides) -> None:
  """A tiny random Transformer (tiny_model_config + overrides) written as an export directory."""
  import flax.linen as nn
  import jax.numpy as jnp

  from ttc_jax import export
  from ttc_jax.models import Transformer

  cfg = tiny_model_config(vocab_size=tokenizer.vocab_size, **overrides)
  params = nn.unbox(Transformer(cfg).init(jax.random.key(seed), jnp.zeros((1, 4), jnp.int32)))
  export.export_model(out_dir, params, cfg, tokenizer.model_path, step=0, source=os.path.dirname(out_dir))
