"""Runs one function on several local processes joined by `jax.distributed`: multi-host on one CPU.

  results = launch("tests.test_multihost:scenario", {"workdir": d}, num_processes=2, devices_per_process=2)
  # results[i]: what process i's `scenario(**args)` returned (JSON)

Every process gets `devices_per_process` fake CPU devices, the CPU backend's cross-process
collectives (gloo) and a coordinator on a free localhost port, then calls
`module:function(**args)`. This is what a multi-host TPU slice or several GPU hosts look like
to JAX (`jax.process_count()` > 1, `jax.devices()` spanning every process), at test size.
A process that fails or outlasts `timeout_s` fails the launch with every process's log tail.
"""
import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def launch(target: str, args: dict, *, num_processes: int = 2, devices_per_process: int = 2,
           timeout_s: float = 300.0) -> list:
  """Starts the processes, waits for all of them and returns their results in process order."""
  port = free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}",
         "PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)}
  with tempfile.TemporaryDirectory(prefix="multihost-") as out_dir:
    procs, logs = [], []
    for i in range(num_processes):
      log = open(os.path.join(out_dir, f"process-{i}.log"), "w+")
      logs.append(log)
      procs.append(subprocess.Popen(
          [sys.executable, "-m", "ttc_jax.testing.multihost_run", f"--target={target}", f"--args={json.dumps(args)}",
           f"--coordinator=localhost:{port}", f"--num_processes={num_processes}", f"--process_id={i}",
           f"--out={os.path.join(out_dir, f'process-{i}.json')}"],
          cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    failed = []
    try:  # Poll all: one failed process leaves the others waiting at a barrier, so stop them then.
      deadline = time.monotonic() + timeout_s
      while any(p.poll() is None for p in procs) and not failed:
        failed = [f"process {i} exited with {p.returncode}" for i, p in enumerate(procs) if p.poll() not in (None, 0)]
        if time.monotonic() > deadline:
          failed = [f"processes ran past {timeout_s:.0f}s"]
        time.sleep(0.2)
      failed = failed or [f"process {i} exited with {p.returncode}" for i, p in enumerate(procs) if p.returncode]
    finally:
      for p in procs:
        if p.poll() is None:
          p.kill()
          p.wait()
    if failed:
      tails = []
      for i, log in enumerate(logs):
        log.seek(0)
        tails.append(f"--- process {i} ---\n" + log.read()[-4000:])
      raise RuntimeError("; ".join(failed) + "\n" + "\n".join(tails))
    for log in logs:
      log.close()
    results = []
    for i in range(num_processes):
      with open(os.path.join(out_dir, f"process-{i}.json")) as f:
        results.append(json.load(f))
    return results


def _main() -> None:
  parser = argparse.ArgumentParser()
  for flag in ("target", "args", "coordinator", "out"):
    parser.add_argument(f"--{flag}", required=True)
  parser.add_argument("--num_processes", type=int, required=True)
  parser.add_argument("--process_id", type=int, required=True)
  flags = parser.parse_args()
  import jax

  jax.distributed.initialize(flags.coordinator, flags.num_processes, flags.process_id)
  module, function = flags.target.split(":")
  result = getattr(importlib.import_module(module), function)(**json.loads(flags.args))
  with open(flags.out, "w") as f:
    json.dump(result, f)
  jax.distributed.shutdown()


if __name__ == "__main__":
  _main()
