"""What the launch scripts share: the main command, override formatting, quoting, running.

Every job is `python -m ttc_jax.main --config=FILE[:ARG] --workdir=DIR [--config.k=v ...]`;
the scripts in this package only decide where, how many times and with which environment
that command runs. Example of the pieces:

    job = Job(config="configs/prm.py:smoke", workdir="/tmp/prm",
              flags=tuple(override_flags({"train.learning_rate": 1e-3})))
    print(shell_line(job.argv(), env={"NCCL_NVLS_ENABLE": "0"}))
    # NCCL_NVLS_ENABLE=0 python -m ttc_jax.main --config=configs/prm.py:smoke \
    #     --workdir=/tmp/prm --config.train.learning_rate=0.001
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import posixpath
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

DEFAULT_MODULE = "ttc_jax.main"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LaunchError(Exception):
    """A mistake in what was asked for (bad flag, bad sweep, failed run); printed, not traced."""


def format_value(value: object) -> str:
    """Formats a config override so ml_collections' `--config.k=v` flag parses it back.

    Strings go verbatim: a str field takes the text as given, so quotes would end up inside
    the value. Bools become True/False, numbers their repr, tuples and lists a tuple literal
    (tuple fields parse with ast.literal_eval), dicts a dict literal (ConfigDict fields).
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar -> Python scalar; repr(np.float64) is not a literal
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return repr(tuple(value))
    if isinstance(value, dict):
        return repr(value)
    if value is None:
        raise LaunchError("None cannot be passed as a --config override; use a placeholder "
                          "field's type (e.g. '') or leave the key out")
    raise LaunchError(f"cannot format {value!r} ({type(value).__name__}) as a --config override")


def override_flags(overrides: Mapping[str, object]) -> list[str]:
    """{"train.learning_rate": 1e-3} -> ["--config.train.learning_rate=0.001"]."""
    return [f"--config.{key}={format_value(value)}" for key, value in overrides.items()]


def safe_name(text: str) -> str:
    """Turns text into one path component that needs no shell quoting: `lr=0.001,seed=0`."""
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).strip("_.") or "run"


@dataclasses.dataclass(frozen=True)
class Job:
    """One run of the main module.

    Attributes:
      config: config file and optional argument, "configs/prm.py:smoke"; relative paths are
        relative to the repository root, where every launcher starts the job.
      workdir: the job's workdir (local path or gs://...).
      flags: further flags for the main module, e.g. "--config.seed=1".
      module: the main module, run with `python -m`.
      name: short path-safe name for log files; defaults to the workdir's last component.
    """

    config: str
    workdir: str
    flags: tuple[str, ...] = ()
    module: str = DEFAULT_MODULE
    name: str = ""

    def __post_init__(self):
        # Spelling only (the bucket is reached where the job runs, with its credentials): a URL
        # that cannot work fails here, before a VM or GPU is spent on it; 'gs:/b' would otherwise
        # become a local folder named 'gs:' (or a log folder under it).
        from ttc_jax import storage
        try:
            storage.check_path(self.workdir, "--workdir", reach=False)
        except storage.StorageError as e:
            raise LaunchError(str(e)) from None

    @property
    def log_name(self) -> str:
        return self.name or safe_name(posixpath.basename(self.workdir.rstrip("/")))

    def argv(self, python: str = "python", extra_flags: Sequence[str] = ()) -> list[str]:
        """The command line; `extra_flags` come last so a launcher's settings win."""
        return [python, "-m", self.module, f"--config={self.config}",
                f"--workdir={self.workdir}", *self.flags, *extra_flags]


def shell_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The command as one line a POSIX shell runs unchanged: `K=V ... cmd args`."""
    assignments = [f"{key}={shlex.quote(value)}" for key, value in (env or {}).items()]
    return " ".join([*assignments, shlex.join(argv)])


def run(argv: Sequence[str], *, dry_run: bool, env: Mapping[str, str] | None = None) -> int:
    """Prints the command (dry run) or runs it with `env` added to ours; returns its exit code."""
    line = shell_line(argv, env)
    if dry_run:
        print(line, flush=True)
        return 0
    print(f"+ {line}", file=sys.stderr, flush=True)
    full_env = {**os.environ, **env} if env else None
    return subprocess.run(list(argv), env=full_env, check=False).returncode


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """["A=1", "B=x y"] -> {"A": "1", "B": "x y"}."""
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LaunchError(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def split_passthrough(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Splits at the first `--`: (the script's own flags, flags passed on)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def add_job_args(parser: argparse.ArgumentParser) -> None:
    """--config, --workdir, --module: what a launcher runs when not driven by a sweep."""
    parser.add_argument("--config", help="config file[:arg], e.g. configs/prm.py:smoke")
    parser.add_argument("--workdir", help="the job's workdir")
    parser.add_argument("--module", default=DEFAULT_MODULE,
                        help="main module run with `python -m` (default: %(default)s)")


def job_from_args(args: argparse.Namespace, flags: Sequence[str]) -> Job:
    if not args.config or not args.workdir:
        raise LaunchError("--config and --workdir are required to run a job")
    return Job(config=args.config, workdir=args.workdir, flags=tuple(flags), module=args.module)


def add_dry_run_arg(parser: argparse.ArgumentParser, default: bool) -> None:
    parser.add_argument(
        "--dry_run", action=argparse.BooleanOptionalAction, default=default,
        help="print the exact commands instead of running them (default: %(default)s; "
             "--no-dry_run runs them)")


def cli(main: Callable[[Sequence[str] | None], int]) -> None:
    """Runs a script's main(argv) and exits with its code; a LaunchError is one line."""
    try:
        code = main(None)
    except LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)
