"""Every test sees 8 fake CPU devices; single-device cases use a 1-device mesh.

XLA_FLAGS must be set before jax is imported anywhere, hence here.
"""
import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# One JAX compilation cache per test run, shared by both xdist workers and every subprocess they
# start (training runs killed and resumed, main.py, the multi-host processes): those compile the
# same tiny programs again and again, and on CI's two cores compiling is most of their time (a
# cold cache halved tests/test_train_loop.py). Per run, so every CI run starts cold as a user's
# would; an entry torn by a killed writer is read as a miss (JAX warns and compiles).
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"ttc_jax_tests_jax_cache_{_RUN}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
