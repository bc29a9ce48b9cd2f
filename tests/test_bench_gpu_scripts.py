"""bench/*_gpu.sh with DRY_RUN=1 (bench/gpu_common.sh): each script's commands, printed without a GPU."""
import glob
import os
import shlex
import subprocess

import pytest

from ttc_jax.testing.tiny import REPO_ROOT

SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, "bench", "*_gpu.sh")))


@pytest.mark.parametrize("script", SCRIPTS)
def test_dry_run_prints_commands_writing_into_out(script, tmp_path):
  out = tmp_path / "out"
  env = dict(os.environ, DRY_RUN="1", OUT=str(out), WORKDIR=str(tmp_path / "wd"), BENCH_COMMIT="abc")
  done = subprocess.run(["bash", os.path.join("bench", script)], cwd=REPO_ROOT, env=env, capture_output=True,
                        text=True, timeout=60)
  assert done.returncode == 0 and not done.stderr, done.stderr  # Scripts without `set -e` go on after errors.
  commands = [shlex.split(line[2:]) for line in done.stdout.splitlines()]
  assert all(line.startswith("+ ") for line in done.stdout.splitlines()), done.stdout  # Printed, not run.
  benches = [c for c in commands if "python3" in c and any(w.startswith("bench/") for w in c)]
  assert benches or script == "pipeline_gpu.sh", done.stdout
  for words in benches:  # Every result file lands in $OUT, where the device call's files come back from.
    assert os.path.dirname(words[words.index("--out") + 1]) == str(out), words
