"""Model and artifact references in configs: a stage directory, an export directory, or `hf:/path`.

Relative paths name artifacts under WORKDIR; absolute paths and gs:// URLs are used as they are.
The `hf:` prefix marks a Hugging Face model directory and survives resolution
(`hf:models/x` -> `hf:WORKDIR/models/x`).
"""
import os

from ttc_jax import storage

HF_PREFIX = "hf:"


def is_hf(ref: str) -> bool:
  return ref.startswith(HF_PREFIX)


def hf_path(ref: str) -> str:
  """The directory of an `hf:` reference (the reference itself if it has no prefix)."""
  return ref[len(HF_PREFIX):] if is_hf(ref) else ref


def resolve(workdir: str, path: str) -> str:
  """Relative paths in configs name artifacts under WORKDIR; absolute paths are used as they are."""
  prefix, rest = (HF_PREFIX, hf_path(path)) if is_hf(path) else ("", path)
  return prefix + (rest if storage.isabs(rest) else os.path.join(storage.abspath(workdir), rest))
