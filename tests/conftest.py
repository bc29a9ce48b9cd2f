"""Every test sees 8 fake CPU devices; single-device cases use a 1-device mesh.

XLA_FLAGS must be set before jax is imported anywhere, hence here.
"""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
