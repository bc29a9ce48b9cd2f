"""ttc_jax: compute-optimal test-time scaling of LLMs (Snell et al., 2024) in JAX/Flax."""

__version__ = "0.1.0"
