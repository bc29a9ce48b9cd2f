"""Expands a config file's `sweep()` into runs of the main module, then prints or runs them.

    python -m launch.sweep --config=configs/prm.py:smoke --workdir=workdirs/prm_sweep

A config file may define `sweep(arg=None) -> list[dict]`, one dict of dotted overrides per
run, e.g. {"train.learning_rate": 1e-3, "seed": 0}. That run gets the workdir
`<workdir>/learning_rate=0.001,seed=0`: the name comes from the overrides alone, so a
re-launched sweep puts every run back on its own workdir and the job resumes there.

Modes (--mode):
  print  (default) the commands, one per line, shell-quoted.
  local  run them here one after another; stop at the first failure and name it.
  tpu    hand them to launch/tpu_vm.py, whose flags follow `--`; they run one after another
         on the VM:  python -m launch.sweep --config=configs/prm.py --workdir=gs://b/prm \\
                         --mode=tpu -- copy run --name=my-v4 --zone=us-central2-b
  gpu    run each through launch/multi_gpu.py, whose flags follow `--`:
         python -m launch.sweep --config=configs/prm.py --workdir=/tmp/prm --mode=gpu -- \\
             --mode=process_per_gpu --num_processes=4
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shlex
import subprocess
import sys
import types
from collections.abc import Sequence

if __package__ in (None, ""):  # run as `python launch/sweep.py`: make `launch` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from launch import common

_MAX_NAME = 100  # longer run names are cut and made unique by a hash of the full name


def _split_spec(spec: str) -> tuple[str, tuple[str, ...]]:
    """'configs/x.py:smoke' -> ('configs/x.py', ('smoke',)); ml_collections' rule: first colon."""
    path, sep, arg = spec.partition(":")
    return path, ((arg,) if sep else ())


def load_module(path: str) -> types.ModuleType:
    """Imports a config file from its path (it need not be on sys.path)."""
    if not os.path.isfile(path):
        raise common.LaunchError(f"config file not found: {path}")
    name = "_sweep_config_" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sweep(config: str) -> list[dict[str, object]]:
    """Calls the config file's sweep(arg) and checks every entry names real config keys."""
    path, args = _split_spec(config)
    module = load_module(path)
    if not callable(getattr(module, "sweep", None)):
        raise common.LaunchError(
            f"{path} defines no sweep() function; add `def sweep(arg=None) -> list[dict]` "
            "returning one dict of dotted overrides per run")
    entries = module.sweep(*args)
    if not isinstance(entries, (list, tuple)) or not entries:
        raise common.LaunchError(f"{path}: sweep() must return a non-empty list of dicts, "
                                 f"got {entries!r}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(k, str) for k in entry):
            raise common.LaunchError(
                f"{path}: sweep() entry {i} is {entry!r}; expected a dict of dotted "
                "overrides such as {'train.learning_rate': 1e-3}")
    if callable(getattr(module, "get_config", None)):
        _check_keys(path, module.get_config(*args), entries)
    return [dict(e) for e in entries]


def _check_keys(path: str, config, entries: Sequence[dict]) -> None:
    """Fails here, not on a remote host after setup, when an override names no config field."""
    for i, entry in enumerate(entries):
        for key in entry:
            node = config
            for part in key.split("."):
                try:
                    node = node[part]
                except (KeyError, TypeError, AttributeError):
                    raise common.LaunchError(
                        f"{path}: sweep() entry {i} overrides {key!r}, which get_config() "
                        "does not define") from None


def _name_value(value: object) -> str:
    if isinstance(value, (tuple, list)):  # (4, 8) -> 4-8, not "(4, 8)" mangled to 4,_8
        return "-".join(_name_value(v) for v in value)
    return common.safe_name(common.format_value(value))


def run_name(overrides: dict[str, object]) -> str:
    """{"train.learning_rate": 1e-3, "seed": 0} -> "learning_rate=0.001,seed=0".

    Keys are shortened to their last component unless two of them would then clash.
    """
    if not overrides:
        return "base"
    leaves = [key.rsplit(".", 1)[-1] for key in overrides]
    parts = []
    for key, leaf in zip(overrides, leaves):
        label = leaf if leaves.count(leaf) == 1 else key
        parts.append(f"{label}={_name_value(overrides[key])}")
    name = common.safe_name(",".join(parts))
    if len(name) > _MAX_NAME:
        name = name[:_MAX_NAME - 9] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def expand(config: str, workdir: str, module: str = common.DEFAULT_MODULE) -> list[common.Job]:
    """One Job per sweep entry, each with its own workdir under `workdir`."""
    jobs, seen = [], {}
    for i, overrides in enumerate(load_sweep(config)):
        name = run_name(overrides)
        if name in seen:
            raise common.LaunchError(f"sweep() entries {seen[name]} and {i} both map to the run "
                                     f"name {name!r}; make their overrides differ")
        seen[name] = i
        jobs.append(common.Job(config=config, workdir=f"{workdir.rstrip('/')}/{name}",
                               flags=tuple(common.override_flags(overrides)), module=module,
                               name=name))
    return jobs


def run_local(jobs: Sequence[common.Job], python: str) -> int:
    for i, job in enumerate(jobs, 1):
        argv = job.argv(python)
        print(f"[sweep] run {i}/{len(jobs)} {job.name}: {shlex.join(argv)}", file=sys.stderr,
              flush=True)
        code = subprocess.run(argv, check=False).returncode
        if code:
            raise common.LaunchError(f"run {i}/{len(jobs)} {job.name!r} failed with exit code "
                                     f"{code}; {len(jobs) - i} later run(s) not started")
    print(f"[sweep] all {len(jobs)} runs finished", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.sweep", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True,
                        help="config file defining sweep(arg=None), optionally with :arg")
    parser.add_argument("--workdir", required=True, help="base workdir; run i uses WORKDIR/NAME")
    parser.add_argument("--mode", choices=("print", "local", "tpu", "gpu"), default="print")
    parser.add_argument("--module", default=common.DEFAULT_MODULE,
                        help="main module run with `python -m` (default: %(default)s)")
    parser.add_argument("--python", help="interpreter for print/local (default: `python` when "
                        "printing, this interpreter when running locally)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    own, rest = common.split_passthrough(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    if rest and args.mode in ("print", "local"):
        raise common.LaunchError(f"arguments after `--` are for --mode=tpu/gpu, got {rest}")
    jobs = expand(args.config, args.workdir, args.module)
    if args.mode == "print":
        for job in jobs:
            print(shlex.join(job.argv(args.python or "python")))
        return 0
    if args.mode == "local":
        return run_local(jobs, args.python or sys.executable)
    if args.mode == "tpu":
        from launch import tpu_vm
        launcher_args = tpu_vm.build_parser().parse_args(rest)
        if launcher_args.config or launcher_args.workdir:
            raise common.LaunchError("the sweep sets --config/--workdir; don't pass them after --")
        if "run" not in launcher_args.steps:
            raise common.LaunchError("--mode=tpu needs the run step after --, e.g. `-- run ...`")
        return tpu_vm.execute(launcher_args, jobs)
    from launch import multi_gpu
    launcher_args = multi_gpu.build_parser().parse_args(rest)
    if launcher_args.config or launcher_args.workdir:
        raise common.LaunchError("the sweep sets --config/--workdir; don't pass them after --")
    for i, job in enumerate(jobs, 1):
        code = multi_gpu.launch(launcher_args, job)
        if code:
            raise common.LaunchError(f"run {i}/{len(jobs)} {job.name!r} failed with exit code "
                                     f"{code}; {len(jobs) - i} later run(s) not started")
    return 0


if __name__ == "__main__":
    common.cli(main)
