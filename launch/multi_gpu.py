"""Single-host multi-GPU launcher: one process for all GPUs, or one process per GPU.

    python -m launch.multi_gpu --mode=process_per_gpu --gpus=0,1,2,3 \\
        --config=configs/prm.py --workdir=workdirs/prm -- --config.train.learning_rate=3e-4

Modes:
  single_process   (default) one process sees the GPUs (CUDA_VISIBLE_DEVICES=--gpus when
                   given) and JAX shards over all of them; output goes to the terminal.
  process_per_gpu  N processes, process i sees only GPU i and joins the others through
                   jax.distributed.initialize (coordinator localhost:--port). Each logs to
                   <workdir>/launch_logs/process_<i>.log. If one fails the others are stopped
                   (they would block in their next collective) and its log tail is shown.

Every process gets NCCL_NVLS_ENABLE=0 (NVLink multicast stays off, whatever --env says),
XLA_FLAGS=--xla_flags appended to any XLA_FLAGS already set, and
XLA_PYTHON_CLIENT_MEM_FRACTION=--mem_fraction when given. --dry_run prints the exact
environment and commands as a shell script instead of running them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence

if __package__ in (None, ""):  # run as `python launch/multi_gpu.py`: make `launch` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import common

DEFAULT_XLA_FLAGS = "--xla_gpu_enable_latency_hiding_scheduler=true"
_GRACE_S = 10  # after a failure, how long the other processes get to exit on SIGTERM


@dataclasses.dataclass(frozen=True)
class Process:
    argv: list[str]
    env: dict[str, str]  # only what the launcher sets; added to the inherited environment
    log: str | None  # None: inherit the terminal


def _gpu_ids(args: argparse.Namespace) -> list[str]:
    if args.gpus:
        ids = [g.strip() for g in args.gpus.split(",") if g.strip()]
        if args.num_processes and args.num_processes != len(ids):
            raise common.LaunchError(f"--num_processes={args.num_processes} but --gpus lists "
                                     f"{len(ids)} GPUs")
        return ids
    if args.num_processes:
        return [str(i) for i in range(args.num_processes)]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], check=True, capture_output=True,
                                 text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise common.LaunchError("process_per_gpu needs --gpus or --num_processes "
                                 "(nvidia-smi could not count the GPUs)") from None
    return [str(i) for i, _ in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


def base_env(args: argparse.Namespace) -> dict[str, str]:
    env = common.parse_env(args.env)
    if args.xla_flags:
        env["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS"), args.xla_flags) if f)
    if args.mem_fraction is not None:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = str(args.mem_fraction)
    env["NCCL_NVLS_ENABLE"] = "0"  # set last, so --env cannot turn NVLink multicast on
    return env


def plan(args: argparse.Namespace, job: common.Job) -> list[Process]:
    """The processes to start for `job`, with their environment and log files."""
    env = base_env(args)
    if args.mode == "single_process":
        if args.gpus:
            env = {"CUDA_VISIBLE_DEVICES": args.gpus, **env}
        return [Process(job.argv(args.python), env, None)]
    gpus = _gpu_ids(args)
    if not gpus:
        raise common.LaunchError("no GPUs found")
    if args.log_dir:
        log_dir = os.path.join(args.log_dir, job.log_name)
    elif "://" in job.workdir:
        raise common.LaunchError(f"workdir {job.workdir} is not local; pass --log_dir")
    else:
        log_dir = os.path.join(job.workdir, "launch_logs")
    procs = []
    for i, gpu in enumerate(gpus):
        flags = ("--config.distributed.initialize=True",
                 f"--config.distributed.coordinator_address=localhost:{args.port}",
                 f"--config.distributed.num_processes={len(gpus)}",
                 f"--config.distributed.process_id={i}")
        procs.append(Process(job.argv(args.python, flags), {"CUDA_VISIBLE_DEVICES": gpu, **env},
                             os.path.join(log_dir, f"process_{i}.log")))
    return procs


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _run_all(procs: Sequence[Process]) -> int:
    """Starts every process, waits for all; on the first failure stops the rest."""
    running = []
    try:
        for i, p in enumerate(procs):
            os.makedirs(os.path.dirname(p.log), exist_ok=True)
            print(f"+ process {i}: {common.shell_line(p.argv, p.env)} > {p.log}",
                  file=sys.stderr, flush=True)
            with open(p.log, "w") as log:
                running.append(subprocess.Popen(p.argv, env={**os.environ, **p.env},
                                                stdout=log, stderr=subprocess.STDOUT))
        while True:
            codes = [r.poll() for r in running]
            failed = [i for i, c in enumerate(codes) if c]
            if failed:
                i = failed[0]
                print(f"error: process {i} of {len(procs)} exited with code {codes[i]}; "
                      f"stopping the others. Log {procs[i].log}:\n{_tail(procs[i].log)}",
                      file=sys.stderr)
                return codes[i]
            if all(c == 0 for c in codes):
                print(f"all {len(procs)} processes finished", file=sys.stderr)
                return 0
            time.sleep(0.1)
    finally:
        for r in running:
            if r.poll() is None:
                r.terminate()
        deadline = time.monotonic() + _GRACE_S
        for r in running:
            try:
                r.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                r.kill()
                r.wait()


def launch(args: argparse.Namespace, job: common.Job) -> int:
    """Prints (dry run) or runs `job` as planned; returns the first failing exit code or 0."""
    procs = plan(args, job)
    if procs[0].log is None:
        return common.run(procs[0].argv, dry_run=args.dry_run, env=procs[0].env)
    if args.dry_run:
        print(f"mkdir -p {shlex.quote(os.path.dirname(procs[0].log))}")
        for p in procs:
            print(f"{common.shell_line(p.argv, p.env)} > {shlex.quote(p.log)} 2>&1 &")
        print("wait")
        return 0
    return _run_all(procs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.multi_gpu", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("single_process", "process_per_gpu"),
                        default="single_process")
    parser.add_argument("--gpus", help="GPU ids, e.g. 0,1,2,3 (default: all)")
    parser.add_argument("--num_processes", type=int,
                        help="process_per_gpu: GPUs 0..N-1 (default: --gpus or nvidia-smi)")
    parser.add_argument("--port", type=int, default=12355, help="coordinator port (%(default)s)")
    parser.add_argument("--xla_flags", default=DEFAULT_XLA_FLAGS,
                        help="appended to XLA_FLAGS; '' adds none (default: %(default)s)")
    parser.add_argument("--mem_fraction", type=float,
                        help="XLA_PYTHON_CLIENT_MEM_FRACTION (default: JAX's own)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="more environment for the processes; repeatable")
    parser.add_argument("--log_dir", help="process_per_gpu logs go to LOG_DIR/<run>/ "
                        "(default: <workdir>/launch_logs/)")
    parser.add_argument("--python", default=sys.executable, help="interpreter (%(default)s)")
    common.add_job_args(parser)
    common.add_dry_run_arg(parser, default=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    own, main_flags = common.split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    return launch(args, common.job_from_args(args, main_flags))


if __name__ == "__main__":
    common.cli(main)
