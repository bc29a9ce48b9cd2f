"""Metrics sinks: DIR/metrics.jsonl, TensorBoard event files and console progress; the input-wait timer.

On object storage (a gs:// workdir) nothing can be appended to: metrics.jsonl is kept in memory and
uploaded whole, and TensorBoard writes into a local mirror folder that is uploaded; both before every
checkpoint (`flush`), every `_UPLOAD_EVERY_S` seconds and on close. A kill loses only lines of steps
after the last checkpoint, which the resumed run re-runs and re-logs anyway.
"""
import contextlib
import json
import os
import time

from absl import logging

from ttc_jax import storage
from ttc_jax.provenance import CorruptFileError

_UPLOAD_EVERY_S = 60.0


class MetricsWriter:
  """Appends one JSON object per logged step; on resume drops lines past the restored step."""

  def __init__(self, workdir: str, *, resume_step: int, total_steps: int, tensorboard: bool = True):
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._remote = storage.is_remote(workdir)
    self._lines = self._lines_up_to(resume_step)
    self._file = None
    if not self._remote:
      with open(self._path, "w") as f:
        f.writelines(self._lines)
      self._file = open(self._path, "a")
    self._tb = None
    self._tb_dir = os.path.join(workdir, "tensorboard")
    self._opened = time.time()
    self._uploaded = time.time()
    if tensorboard and _is_lead_host():
      from tensorboardX import SummaryWriter  # Lazy: only the training loop needs it.
      self._tb = SummaryWriter(storage.local_mirror(self._tb_dir))
    if self._remote:
      self._upload()
    self._total = total_steps
    self._start_step = resume_step
    self._start_time = time.time()

  def _lines_up_to(self, step: int) -> list[str]:
    # Steps logged after the last checkpoint were lost with the process; they are
    # re-run and re-logged, so keeping them would duplicate lines.
    # A kill mid-write can leave a torn last line: it is dropped (its step is re-logged); a bad line
    # anywhere else is damage this must not paper over.
    if not storage.exists(self._path):
      return []
    lines = [line for line in storage.read_text(self._path).splitlines(keepends=True) if line.strip()]
    kept = []
    for number, line in enumerate(lines, 1):
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        if number == len(lines):
          logging.warning("%s:%d: dropping a torn last line (%s) before resuming", self._path, number, e)
          break
        raise CorruptFileError(f"{self._path}:{number}: invalid JSON line ({e}); only a torn last line is "
                               "dropped on resume: fix or delete the file") from None
      if record["step"] <= step:
        kept.append(line if line.endswith("\n") else line + "\n")
    return kept

  def _upload(self) -> None:
    """The whole metrics.jsonl in one object, and the TensorBoard files written since this writer opened."""
    if not _is_lead_host():
      return
    storage.write_text(self._path, "".join(self._lines))
    if self._tb is not None:
      self._tb.flush()
      storage.upload_tree(storage.local_mirror(self._tb_dir), self._tb_dir, newer_than=self._opened)
    self._uploaded = time.time()

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not _is_lead_host():
      return
    record = {"step": step, **{k: float(v) for k, v in metrics.items()}}
    line = json.dumps(record) + "\n"
    if self._remote:
      self._lines.append(line)
    else:
      self._file.write(line)
      self._file.flush()
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(k, float(v), step)
    if self._remote and time.time() - self._uploaded > _UPLOAD_EVERY_S:
      self._upload()
    elapsed = time.time() - self._start_time
    done = step - self._start_step
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (self._total - step) / rate if rate > 0 else float("inf")
    logging.info("step %d/%d loss %.4f | %.2f steps/s, ETA %s", step, self._total, metrics.get("loss", float("nan")),
                 rate, format_seconds(eta))

  def flush(self) -> None:
    """Makes every line written so far durable: flushed to disk, or uploaded to the bucket."""
    if self._remote:
      self._upload()
    else:
      self._file.flush()

  def close(self) -> None:
    if self._remote:
      self._upload()
    else:
      self._file.close()
    if self._tb is not None:
      self._tb.close()


def _is_lead_host() -> bool:
  import jax
  return jax.process_index() == 0


def format_seconds(s: float) -> str:
  if s == float("inf"):
    return "?"
  s = int(s)
  return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


TIMING_METRICS = ("input_wait", "step_time_s")  # Wall-clock measures: a rerun logs other values.


class InputWaitTimer:
  """The share of the loop's wall time spent waiting for batches, per logging window.

  The loop dispatches a step and reads the step before's metrics, so its wall time
  per step is the device's step time unless the host is slower; time inside
  `waiting()` (reading and placing the next batch) is the part the input costs.
  """

  def __init__(self):
    self._reset()

  def _reset(self):
    self._start, self._wait, self._steps = time.perf_counter(), 0.0, 0

  @contextlib.contextmanager
  def waiting(self):
    start = time.perf_counter()
    try:
      yield
    finally:
      self._wait += time.perf_counter() - start
      self._steps += 1

  def take(self) -> dict[str, float]:
    """{"input_wait": fraction of wall time waiting for input, "step_time_s": wall seconds per step}
    since the last call (the first window includes compilation), {} if no batch was read in it
    (the last step's, logged after the loop); starts a new window."""
    if not self._steps:
      return {}
    elapsed = max(time.perf_counter() - self._start, 1e-9)
    out = {"input_wait": self._wait / elapsed, "step_time_s": elapsed / max(self._steps, 1)}
    self._reset()
    return out
