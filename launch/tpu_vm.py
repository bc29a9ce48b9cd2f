"""Cloud TPU VM launcher: create a VM (slice), copy the repo, install, run jobs, delete.

    python -m launch.tpu_vm create copy setup run --name=ttc-v4 --zone=us-central2-b \\
        --accelerator_type=v4-8 --config=configs/prm.py --workdir=gs://my-bucket/prm \\
        --no-dry_run -- --config.train.learning_rate=3e-4

Steps (positional, run in the order given, stopping at the first failure):
  create  gcloud compute tpus tpu-vm create (runtime --version picked from the accelerator
          type unless given; --spot for spot capacity).
  copy    tar the files `git ls-files --cached --others --exclude-standard` lists (tracked and
          not ignored: no .venv, no workdirs) and unpack them into ~/ttc_jax on every worker.
  setup   on every worker: make ~/ttc_jax/.venv with Python 3.11 (TPU runtime images ship
          3.10; uv fetches 3.11) and `pip install -c constraints.txt -e '.[tpu]'` into it.
  run     on every worker: the main module with --config.distributed.initialize=True (needed
          on multi-host slices, harmless on one host), output to ~/logs/<run>.log. In the
          background (nohup, own session; default) or, with --no-background, streamed.
  stop    kill the background job (its whole process group) on every worker.
  delete  delete the VM.

--dry_run is on by default, because these commands spend money: it prints the commands.
Pass --no-dry_run to execute them. Flags after `--` go to the main module. On a multi-host
slice, use a gs:// workdir: every worker must see the same files.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence

if __package__ in (None, ""):  # run as `python launch/tpu_vm.py`: make `launch` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import common

STEPS = ("create", "copy", "setup", "run", "stop", "delete")
REMOTE_DIR = "~/ttc_jax"  # unquoted in remote commands so the remote shell expands ~
REMOTE_TAR = "ttc_jax.tar.gz"  # scp destinations are relative to the remote home
PID_FILE = "~/logs/ttc_jax.pid"
DISTRIBUTED_FLAG = "--config.distributed.initialize=True"

# Runtime image per TPU generation (cloud.google.com/tpu/docs/runtimes, JAX row).
RUNTIME_BY_PREFIX = (
    ("v6e", "v2-alpha-tpuv6e"),
    ("v5p", "v2-alpha-tpuv5"),
    ("v5litepod", "v2-alpha-tpuv5-lite"),
    ("v5e", "v2-alpha-tpuv5-lite"),
    ("v4", "tpu-ubuntu2204-base"),
    ("v3", "tpu-ubuntu2204-base"),
    ("v2", "tpu-ubuntu2204-base"),
)


def runtime_version(accelerator_type: str) -> str:
    for prefix, version in RUNTIME_BY_PREFIX:
        if accelerator_type.startswith(prefix):
            return version
    raise common.LaunchError(f"no default runtime for {accelerator_type!r}; pass --version")


def _gcloud(args: argparse.Namespace, verb: str, *positional: str) -> list[str]:
    argv = ["gcloud", "compute", "tpus", "tpu-vm", verb, *positional, f"--zone={args.zone}"]
    return argv + ([f"--project={args.project}"] if args.project else [])


def ssh(args: argparse.Namespace, command: str) -> list[str]:
    """`command` runs in the remote login shell of every worker at once."""
    return _gcloud(args, "ssh", args.name) + ["--worker=all", f"--command={command}"]


def local_tarball(name: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"ttc_jax-{name}.tar.gz")


def write_tarball(path: str, root: str = common.REPO_ROOT) -> int:
    """Tars the files git would keep (tracked or untracked-not-ignored); returns their count."""
    listing = subprocess.run(
        ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout.decode()
    # Deleted-but-still-tracked files are listed too; skip what is not on disk.
    files = sorted({f for f in listing.split("\0") if f and os.path.isfile(os.path.join(root, f))})
    with tarfile.open(path, "w:gz") as tar:
        for f in files:
            tar.add(os.path.join(root, f), arcname=f)
    return len(files)


def remote_run_command(jobs: Sequence[common.Job], *, python: str, background: bool,
                       env: dict[str, str]) -> str:
    """The shell command each worker runs: the jobs one after another, stopping at a failure."""
    segments = []
    for job in jobs:
        line = common.shell_line(job.argv(python, (DISTRIBUTED_FLAG,)))
        if env:
            line = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + line
        log = f"~/logs/{job.log_name}.log"
        segments.append(f"{line} > {log} 2>&1" if background else f"{line} 2>&1 | tee {log}")
    script = shlex.quote(" && ".join(segments))
    if not background:
        return f"mkdir -p ~/logs && cd {REMOTE_DIR} && bash -o pipefail -c {script}"
    # setsid: the job gets its own session and process group, so closing ssh leaves it
    # running and `stop` can kill the group; $! is that group's id.
    return (f"mkdir -p ~/logs && cd {REMOTE_DIR} || exit 1; "
            f"if [ -f {PID_FILE} ] && kill -0 -- -$(cat {PID_FILE}) 2>/dev/null; then "
            f"echo 'a job is still running; use the stop step first' >&2; exit 1; fi; "
            f"setsid nohup bash -o pipefail -c {script} > /dev/null 2>&1 < /dev/null & "
            f"echo $! > {PID_FILE}")


def commands(args: argparse.Namespace, jobs: Sequence[common.Job]) -> list[list[str] | str]:
    """Every step's commands in order; a str item is a local action done in Python (copy's tar)."""
    out: list[list[str] | str] = []
    for step in args.steps:
        if step == "create":
            if not args.accelerator_type:
                raise common.LaunchError("create needs --accelerator_type, e.g. v4-8")
            version = args.version or runtime_version(args.accelerator_type)
            out.append(_gcloud(args, "create", args.name)
                       + [f"--accelerator-type={args.accelerator_type}", f"--version={version}"]
                       + (["--spot"] if args.spot else []))
        elif step == "copy":
            tar = local_tarball(args.name)
            out.append(tar)
            out.append(_gcloud(args, "scp", tar, f"{args.name}:{REMOTE_TAR}") + ["--worker=all"])
            out.append(ssh(args, f"mkdir -p {REMOTE_DIR} && tar -xzf ~/{REMOTE_TAR} "
                                 f"-C {REMOTE_DIR} && rm ~/{REMOTE_TAR}"))
        elif step == "setup":
            out.append(ssh(args, (
                f"cd {REMOTE_DIR} && python3 -m pip install --user --quiet uv && "
                f"(test -x .venv/bin/python || ~/.local/bin/uv venv --seed "
                f"--python {args.python_version} .venv) && "
                ".venv/bin/python -m pip install --quiet -c constraints.txt -e '.[tpu]'")))
        elif step == "run":
            if not jobs:
                raise common.LaunchError("run needs --config and --workdir (or a sweep)")
            out.append(ssh(args, remote_run_command(
                jobs, python=args.python, background=args.background,
                env=common.parse_env(args.env))))
        elif step == "stop":
            out.append(ssh(args, f"kill -- -$(cat {PID_FILE}) && rm {PID_FILE}"))
        elif step == "delete":
            out.append(_gcloud(args, "delete", args.name) + ["--quiet"])
    return out


def execute(args: argparse.Namespace, jobs: Sequence[common.Job]) -> int:
    """Prints (dry run) or runs the steps' commands; stops at the first failure."""
    if args.dry_run:
        print("# dry run: pass --no-dry_run to execute", file=sys.stderr)
    for cmd in commands(args, jobs):
        if isinstance(cmd, str):
            if args.dry_run:
                print(f"# write {cmd} from `git ls-files --cached --others --exclude-standard` "
                      f"in {common.REPO_ROOT}")
            else:
                print(f"+ wrote {cmd} ({write_tarball(cmd)} files)", file=sys.stderr)
            continue
        code = common.run(cmd, dry_run=args.dry_run)
        if code:
            print(f"error: step command failed with exit code {code}: {shlex.join(cmd)}",
                  file=sys.stderr)
            return code
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.tpu_vm", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="+", choices=STEPS, metavar="STEP",
                        help=f"one or more of {', '.join(STEPS)}")
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True, help="e.g. us-central2-b")
    parser.add_argument("--project", help="GCP project (default: gcloud's configured one)")
    parser.add_argument("--accelerator_type", help="for create, e.g. v4-8, v5p-16, v6e-8")
    parser.add_argument("--version", help="runtime version (default: by accelerator type)")
    parser.add_argument("--spot", action="store_true", help="create on spot capacity")
    parser.add_argument("--python_version", default="3.11", help="setup's Python (%(default)s)")
    parser.add_argument("--python", default=".venv/bin/python",
                        help="interpreter on the workers, relative to ~/ttc_jax (%(default)s)")
    parser.add_argument("--background", action=argparse.BooleanOptionalAction, default=True,
                        help="run detached with logs in ~/logs (default) or stream the output")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the job, e.g. LIBTPU_INIT_ARGS=...; repeatable")
    common.add_job_args(parser)
    common.add_dry_run_arg(parser, default=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    own, main_flags = common.split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    jobs = [common.job_from_args(args, main_flags)] if "run" in args.steps else []
    return execute(args, jobs)


if __name__ == "__main__":
    common.cli(main)
