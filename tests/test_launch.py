"""Pins the launch scripts' behaviour in dry-run mode, plus real local runs of fake jobs.

    python -m pytest -n 2 tests/test_launch.py
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # launch/ is a package of the repo, not of the installed ttc_jax
    sys.path.insert(0, REPO)

from launch import common, multi_gpu, sweep, tpu_vm  # noqa: E402

# A stand-in for ttc_jax.main: parses --config/--workdir like it does (absl + ml_collections),
# writes the resulting config to WORKDIR/config.json and exits 3 when config.fail is set.
ABSL_MAIN = """
import json, os, sys
from absl import app, flags
from ml_collections import config_flags
_CONFIG = config_flags.DEFINE_config_file("config")
_WORKDIR = flags.DEFINE_string("workdir", None, "")
def main(_):
    os.makedirs(_WORKDIR.value, exist_ok=True)
    with open(os.path.join(_WORKDIR.value, "config.json"), "w") as f:
        json.dump(_CONFIG.value.to_dict(), f)
    sys.exit(3 if _CONFIG.value.fail else 0)
app.run(main)
"""

# A stand-in without absl: records argv and environment; sleeps or fails when asked to.
PLAIN_MAIN = """
import json, os, sys, time
args = sys.argv[1:]
workdir = [a.split("=", 1)[1] for a in args if a.startswith("--workdir=")][0]
os.makedirs(workdir, exist_ok=True)
keys = ("CUDA_VISIBLE_DEVICES", "NCCL_NVLS_ENABLE", "XLA_FLAGS", "FOO")
name = "record_%s.json" % os.environ.get("CUDA_VISIBLE_DEVICES", "all")
with open(os.path.join(workdir, name), "w") as f:
    json.dump({"argv": args, "env": {k: os.environ.get(k) for k in keys}}, f)
print("hello from", workdir, flush=True)
if "--config.sleep=True" in args:
    time.sleep(60)
sys.exit(int(([a.split("=")[1] for a in args if a.startswith("--config.exit_code=")] or [0])[-1]))
"""

CONFIG = """
import ml_collections

def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.fail = False
    c.name = "base"
    c.train = ml_collections.ConfigDict(
        {"learning_rate": 1e-3, "remat": False, "buckets": (64, 128)})
    return c

def sweep(arg=None):
    if arg == "bad_key":
        return [{"train.lr": 1.0}]
    if arg == "not_dict":
        return [{"seed": 1}, ("seed", 2)]
    if arg == "dup":
        return [{"seed": 1}, {"seed": 1}]
    if arg == "fail_second":
        return [{"seed": 0}, {"seed": 1, "fail": True}, {"seed": 2}]
    return [{"train.learning_rate": lr, "seed": s} for lr in (1e-3, 3e-4) for s in (0, 1)] + [
        {"train.remat": True, "train.buckets": (32, 256), "name": "a b"}]
"""


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def config_file(tmp_path):
    return _write(tmp_path / "cfg.py", CONFIG)


def _stdout_lines(capsys):
    return capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------- common


@pytest.mark.parametrize("value, text", [
    (True, "True"), (False, "False"), (3, "3"), (1e-3, "0.001"), (3e-5, "3e-05"),
    ("a b", "a b"), ((1, 2), "(1, 2)"), ([1], "(1,)"), ({"x": 1}, "{'x': 1}")])
def test_format_value(value, text):
    assert common.format_value(value) == text


def test_format_value_rejects_none():
    with pytest.raises(common.LaunchError, match="None"):
        common.format_value(None)


# ---------------------------------------------------------------- sweep


def test_sweep_prints_one_command_per_entry(config_file, capsys):
    assert sweep.main([f"--config={config_file}:smoke", "--workdir=gs://my-bucket/sw"]) == 0
    lines = _stdout_lines(capsys)
    assert len(lines) == 5
    assert lines[0] == (f"python -m ttc_jax.main --config={config_file}:smoke "
                        "--workdir=gs://my-bucket/sw/learning_rate=0.001,seed=0 "
                        "--config.train.learning_rate=0.001 --config.seed=0")
    assert lines[3].endswith("--workdir=gs://my-bucket/sw/learning_rate=0.0003,seed=1 "
                             "--config.train.learning_rate=0.0003 --config.seed=1")
    assert lines[4].endswith("--workdir=gs://my-bucket/sw/remat=True,buckets=32-256,name=a_b "
                             "--config.train.remat=True '--config.train.buckets=(32, 256)' "
                             "'--config.name=a b'")
    workdirs = [a for line in lines for a in shlex.split(line) if a.startswith("--workdir=")]
    assert len(set(workdirs)) == 5


def test_sweep_values_parse_back_through_ml_collections(tmp_path, config_file, monkeypatch):
    _write(tmp_path / "fake_absl_main.py", ABSL_MAIN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    base = tmp_path / "runs"
    assert sweep.main([f"--config={config_file}", f"--workdir={base}", "--mode=local",
                       "--module=fake_absl_main"]) == 0
    got = json.loads((base / "remat=True,buckets=32-256,name=a_b" / "config.json").read_text())
    assert got["train"] == {"learning_rate": 1e-3, "remat": True, "buckets": [32, 256]}
    assert got["name"] == "a b"
    got = json.loads((base / "learning_rate=0.0003,seed=1" / "config.json").read_text())
    assert (got["train"]["learning_rate"], got["seed"]) == (3e-4, 1)


def test_sweep_local_stops_at_first_failure(tmp_path, config_file, monkeypatch):
    _write(tmp_path / "fake_absl_main.py", ABSL_MAIN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    base = tmp_path / "runs"
    with pytest.raises(common.LaunchError,
                       match=r"run 2/3 'seed=1,fail=True' failed with exit code 3; 1 later"):
        sweep.main([f"--config={config_file}:fail_second", f"--workdir={base}",
                    "--mode=local", "--module=fake_absl_main"])
    assert (base / "seed=0" / "config.json").exists()
    assert (base / "seed=1,fail=True" / "config.json").exists()
    assert not (base / "seed=2").exists()


def test_sweep_missing_sweep_function_is_a_clear_error(tmp_path):
    path = _write(tmp_path / "nosweep.py", "def get_config(arg=None):\n    return {}\n")
    with pytest.raises(common.LaunchError, match=r"nosweep.py defines no sweep\(\) function"):
        sweep.main([f"--config={path}", "--workdir=/tmp/x"])


@pytest.mark.parametrize("arg, message", [
    ("not_dict", r"entry 1 is \('seed', 2\); expected a dict"),
    ("bad_key", r"entry 0 overrides 'train.lr', which get_config\(\) does not define"),
    ("dup", r"entries 0 and 1 both map to the run name 'seed=1'"),
])
def test_sweep_rejects_bad_entries(config_file, arg, message):
    with pytest.raises(common.LaunchError, match=message):
        sweep.main([f"--config={config_file}:{arg}", "--workdir=/tmp/x"])


def test_run_name_uses_full_key_only_when_leaves_clash():
    assert sweep.run_name({"a.lr": 1, "b.lr": 2, "seed": 0}) == "a.lr=1,b.lr=2,seed=0"
    assert sweep.run_name({}) == "base"
    long = sweep.run_name({"x": "y" * 300})
    assert len(long) == 100 and long != sweep.run_name({"x": "y" * 301})


def test_sweep_tpu_mode_chains_runs_in_one_ssh(config_file, capsys):
    sweep.main([f"--config={config_file}", "--workdir=gs://my-bucket/sw", "--mode=tpu", "--",
                "run", "--name=v4", "--zone=z"])
    (line,) = _stdout_lines(capsys)
    command = shlex.split(line)[-1]
    assert command.count("--config.distributed.initialize=True") == 5
    assert command.count(" && .venv/bin/python -m ttc_jax.main") == 4
    assert "> ~/logs/learning_rate=0.0003,seed=1.log 2>&1" in command


def test_sweep_gpu_mode_runs_each_through_multi_gpu(config_file, capsys, monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    sweep.main([f"--config={config_file}", "--workdir=/tmp/sw", "--mode=gpu", "--",
                "--mode=process_per_gpu", "--gpus=0,1", "--dry_run"])
    lines = _stdout_lines(capsys)
    assert lines.count("wait") == 5 and sum("process_id=1" in x for x in lines) == 5
    assert "mkdir -p /tmp/sw/learning_rate=0.001,seed=1/launch_logs" in lines


# ---------------------------------------------------------------- tpu_vm

TPU_FLAGS = ["--name=ttc-v4", "--zone=us-central2-b"]
SSH = "gcloud compute tpus tpu-vm ssh ttc-v4 --zone=us-central2-b --worker=all"


def test_tpu_create_setup_run_exact_commands(capsys):
    assert tpu_vm.main(["create", "setup", "run", *TPU_FLAGS, "--accelerator_type=v4-8",
                        "--spot", "--config=configs/prm.py:smoke", "--workdir=gs://my-bucket/prm",
                        "--", "--config.seed=1"]) == 0
    assert _stdout_lines(capsys) == [
        "gcloud compute tpus tpu-vm create ttc-v4 --zone=us-central2-b "
        "--accelerator-type=v4-8 --version=tpu-ubuntu2204-base --spot",
        f"{SSH} '--command=cd ~/ttc_jax && python3 -m pip install --user --quiet uv && "
        "(test -x .venv/bin/python || ~/.local/bin/uv venv --seed --python 3.11 .venv) && "
        ".venv/bin/python -m pip install --quiet -c constraints.txt -e '\"'\"'.[tpu]'\"'\"''",
        f"{SSH} '--command=mkdir -p ~/logs && cd ~/ttc_jax || exit 1; "
        "if [ -f ~/logs/ttc_jax.pid ] && kill -0 -- -$(cat ~/logs/ttc_jax.pid) 2>/dev/null; "
        "then echo '\"'\"'a job is still running; use the stop step first'\"'\"' >&2; exit 1; "
        "fi; setsid nohup bash -o pipefail -c '\"'\"'.venv/bin/python -m ttc_jax.main "
        "--config=configs/prm.py:smoke --workdir=gs://my-bucket/prm --config.seed=1 "
        "--config.distributed.initialize=True > ~/logs/prm.log 2>&1'\"'\"' "
        "> /dev/null 2>&1 < /dev/null & echo $! > ~/logs/ttc_jax.pid'",
    ]


def test_tpu_copy_stop_delete_exact_commands(capsys):
    tpu_vm.main(["copy", "stop", "delete", *TPU_FLAGS, "--project=proj"])
    tar = os.path.join(tempfile.gettempdir(), "ttc_jax-ttc-v4.tar.gz")
    ssh = SSH.replace("--worker=all", "--project=proj --worker=all")
    assert _stdout_lines(capsys) == [
        f"# write {tar} from `git ls-files --cached --others --exclude-standard` in {REPO}",
        f"gcloud compute tpus tpu-vm scp {tar} ttc-v4:ttc_jax.tar.gz --zone=us-central2-b "
        "--project=proj --worker=all",
        f"{ssh} '--command=mkdir -p ~/ttc_jax && tar -xzf ~/ttc_jax.tar.gz -C ~/ttc_jax "
        "&& rm ~/ttc_jax.tar.gz'",
        f"{ssh} '--command=kill -- -$(cat ~/logs/ttc_jax.pid) && rm ~/logs/ttc_jax.pid'",
        "gcloud compute tpus tpu-vm delete ttc-v4 --zone=us-central2-b --project=proj --quiet",
    ]


@pytest.mark.parametrize("accelerator, version", [
    ("v4-32", "tpu-ubuntu2204-base"), ("v5litepod-16", "v2-alpha-tpuv5-lite"),
    ("v5p-8", "v2-alpha-tpuv5"), ("v6e-8", "v2-alpha-tpuv6e")])
def test_tpu_runtime_by_accelerator(accelerator, version):
    assert tpu_vm.runtime_version(accelerator) == version


def test_tpu_run_needs_a_job():
    with pytest.raises(common.LaunchError, match="--config and --workdir"):
        tpu_vm.main(["run", *TPU_FLAGS])


@pytest.mark.parametrize("workdir, message", [
    ("gs:/my-bucket/prm", "malformed scheme"),  # os.path would make it a local folder 'gs:' on every worker
    ("s3://my-bucket/prm", "not supported"),
    ("gs://B/prm", "not a bucket name"),
])
def test_tpu_run_refuses_a_workdir_url_that_cannot_work(workdir, message):
    with pytest.raises(common.LaunchError, match=f"--workdir='{workdir}'.*{message}"):
        tpu_vm.main(["run", *TPU_FLAGS, "--config=configs/prm.py:smoke", f"--workdir={workdir}"])


def test_tpu_tarball_holds_tracked_and_unignored_files(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".venv").mkdir(parents=True)
    for name, text in [("a.py", "1"), (".gitignore", ".venv/\n"), (".venv/x", "2"),
                       ("new.py", "3"), ("gone.py", "4")]:
        (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "a.py", ".gitignore", "gone.py"], check=True)
    (repo / "gone.py").unlink()
    out = str(tmp_path / "src.tar.gz")
    assert tpu_vm.write_tarball(out, str(repo)) == 3
    assert sorted(tarfile.open(out).getnames()) == [".gitignore", "a.py", "new.py"]


@pytest.fixture
def fake_vm_home(tmp_path):
    """A home directory laid out as `copy` and `setup` leave it on a worker."""
    repo = tmp_path / "ttc_jax"
    (repo / ".venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, repo / ".venv" / "bin" / "python")
    _write(repo / "fake_main.py", PLAIN_MAIN)
    return tmp_path


def _on_vm(home, command):
    return subprocess.run(["bash", "-c", command], env={**os.environ, "HOME": str(home)},
                          capture_output=True, text=True, timeout=30)


def test_tpu_remote_command_runs_in_a_shell(fake_vm_home):
    """The quoting survives a real shell: jobs run in order, logs land, failure stops the chain."""
    jobs = [common.Job("configs/x.py", str(fake_vm_home / "w" / n), (f"--config.exit_code={c}",),
                       module="fake_main", name=n) for n, c in [("a=1", 0), ("b", 5), ("c", 0)]]
    command = tpu_vm.remote_run_command(jobs, python=".venv/bin/python", background=False,
                                        env={"FOO": "x y"})
    result = _on_vm(fake_vm_home, command)
    assert result.returncode == 5, result.stderr
    record = json.loads((fake_vm_home / "w" / "a=1" / "record_all.json").read_text())
    assert record["env"]["FOO"] == "x y"
    assert record["argv"][-1] == "--config.distributed.initialize=True"
    assert "hello from" in (fake_vm_home / "logs" / "b.log").read_text()
    assert not (fake_vm_home / "w" / "c").exists()


def test_tpu_background_run_then_stop(fake_vm_home):
    job = common.Job("configs/x.py", str(fake_vm_home / "w"), ("--config.sleep=True",),
                     module="fake_main", name="sleepy")
    start = tpu_vm.remote_run_command([job], python=".venv/bin/python", background=True, env={})
    assert _on_vm(fake_vm_home, start).returncode == 0
    pgid = int((fake_vm_home / "logs" / "ttc_jax.pid").read_text())
    try:
        deadline = time.monotonic() + 10
        while not (fake_vm_home / "w" / "record_all.json").exists():
            assert time.monotonic() < deadline, "the background job never started"
            time.sleep(0.05)
        again = _on_vm(fake_vm_home, start)
        assert again.returncode == 1 and "still running" in again.stderr
        stop = tpu_vm.commands(tpu_vm.build_parser().parse_args(["stop", *TPU_FLAGS]), [])
        assert _on_vm(fake_vm_home, stop[0][-1].removeprefix("--command=")).returncode == 0
        assert not (fake_vm_home / "logs" / "ttc_jax.pid").exists()
        deadline = time.monotonic() + 10
        while _group_alive(pgid):
            assert time.monotonic() < deadline, "stop left the job running"
            time.sleep(0.05)
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid):
    """True while a non-zombie process of the group exists (zombies may never be reaped here)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# ---------------------------------------------------------------- multi_gpu

JOB_FLAGS = ["--config=configs/prm.py", "--workdir=/tmp/prm"]


def test_process_per_gpu_dry_run_gives_each_process_its_gpu_and_id(capsys, monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert multi_gpu.main(["--mode=process_per_gpu", "--gpus=2,3,5", "--port=9999",
                           "--mem_fraction=0.8", "--dry_run", *JOB_FLAGS,
                           "--", "--config.seed=1"]) == 0
    lines = _stdout_lines(capsys)
    assert lines[0] == "mkdir -p /tmp/prm/launch_logs" and lines[-1] == "wait"
    for i, (gpu, line) in enumerate(zip(("2", "3", "5"), lines[1:-1])):
        assert line == (
            f"CUDA_VISIBLE_DEVICES={gpu} "
            "XLA_FLAGS=--xla_gpu_enable_latency_hiding_scheduler=true "
            f"XLA_PYTHON_CLIENT_MEM_FRACTION=0.8 NCCL_NVLS_ENABLE=0 {sys.executable} "
            "-m ttc_jax.main --config=configs/prm.py --workdir=/tmp/prm --config.seed=1 "
            "--config.distributed.initialize=True "
            "--config.distributed.coordinator_address=localhost:9999 "
            "--config.distributed.num_processes=3 "
            f"--config.distributed.process_id={i} > /tmp/prm/launch_logs/process_{i}.log 2>&1 &")


def test_single_process_dry_run(capsys, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/d")
    multi_gpu.main(["--gpus=0,1", "--env=NCCL_NVLS_ENABLE=1", "--env=FOO=a b", "--dry_run",
                    "--python=python", *JOB_FLAGS])
    assert _stdout_lines(capsys) == [
        "CUDA_VISIBLE_DEVICES=0,1 NCCL_NVLS_ENABLE=0 FOO='a b' "
        "XLA_FLAGS='--xla_dump_to=/tmp/d --xla_gpu_enable_latency_hiding_scheduler=true' "
        "python -m ttc_jax.main --config=configs/prm.py --workdir=/tmp/prm"]


def test_tpu_slice_and_gpu_host_run_the_same_job_command():
    """A TPU worker and a GPU process run one command: the main module, the job's flags and
    distributed.initialize; a GPU host adds only what a TPU slice finds itself (coordinator, count, id)."""
    job = common.Job(config="configs/samples.py:test", workdir="/mnt/w", flags=("--config.seed=2",))
    tpu = tpu_vm.remote_run_command([job], python="python", background=False, env={})
    tpu_argv = shlex.split(shlex.split(tpu.split(" -c ", 1)[1])[0].split(" 2>&1")[0])
    args = multi_gpu.build_parser().parse_args(["--mode=process_per_gpu", "--num_processes=2", "--python=python",
                                                "--config=configs/samples.py:test", "--workdir=/mnt/w"])
    for i, process in enumerate(multi_gpu.plan(args, job)):
        assert process.argv[:len(tpu_argv)] == tpu_argv == [
            "python", "-m", "ttc_jax.main", "--config=configs/samples.py:test", "--workdir=/mnt/w",
            "--config.seed=2", "--config.distributed.initialize=True"]
        assert process.argv[len(tpu_argv):] == [
            "--config.distributed.coordinator_address=localhost:12355", "--config.distributed.num_processes=2",
            f"--config.distributed.process_id={i}"]


def test_process_per_gpu_count_must_match():
    with pytest.raises(common.LaunchError, match="--num_processes=3 but --gpus lists 2"):
        multi_gpu.main(["--mode=process_per_gpu", "--gpus=0,1", "--num_processes=3",
                        "--dry_run", *JOB_FLAGS])


def test_process_per_gpu_runs_all_and_logs_each(tmp_path, monkeypatch):
    _write(tmp_path / "fake_main.py", PLAIN_MAIN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    workdir = tmp_path / "w"
    assert multi_gpu.main(["--mode=process_per_gpu", "--num_processes=2", "--module=fake_main",
                           "--config=c.py", f"--workdir={workdir}"]) == 0
    for i in range(2):
        record = json.loads((workdir / f"record_{i}.json").read_text())
        assert record["env"]["NCCL_NVLS_ENABLE"] == "0"
        assert f"--config.distributed.process_id={i}" in record["argv"]
        assert "hello from" in (workdir / "launch_logs" / f"process_{i}.log").read_text()


def test_process_per_gpu_failure_stops_the_others(tmp_path, monkeypatch, capsys):
    _write(tmp_path / "fake_main.py", PLAIN_MAIN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(multi_gpu, "_GRACE_S", 2)
    # Process 0 would sleep 60 s; process 1 fails with 4 once process 0 has started.
    job = common.Job("c.py", str(tmp_path / "w"), module="fake_main")
    args = multi_gpu.build_parser().parse_args(["--mode=process_per_gpu", "--num_processes=2"])
    procs = multi_gpu.plan(args, job)
    procs[0].argv.append("--config.sleep=True")
    procs[1].argv.append("--config.exit_code=4")
    start = time.monotonic()
    assert multi_gpu._run_all(procs) == 4
    assert time.monotonic() - start < 10
    assert "process 1 of 2 exited with code 4" in capsys.readouterr().err


# ---------------------------------------------------------------- entry points


@pytest.mark.parametrize("entry", [["-m", "launch.sweep"], ["launch/sweep.py"]])
def test_sweep_runs_as_module_and_as_file(entry, config_file):
    result = subprocess.run([sys.executable, *entry, f"--config={config_file}",
                             "--workdir=/tmp/sw"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5


@pytest.mark.parametrize("script", ["launch/tpu_vm.py", "launch/multi_gpu.py"])
def test_launchers_run_as_files(script):
    result = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "--dry_run" in result.stdout, result.stderr


def test_cli_error_is_one_line(tmp_path):
    path = _write(tmp_path / "nosweep.py", "")
    result = subprocess.run([sys.executable, "-m", "launch.sweep", f"--config={path}",
                             "--workdir=/tmp/x"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
