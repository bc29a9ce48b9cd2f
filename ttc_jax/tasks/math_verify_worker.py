"""math_verify calls with a timeout that holds in any thread.

math_verify times out with SIGALRM, which only the main thread can use: graded from another
thread (a host-fed verifier, a thread pool) a pathological answer (a 1 MB `\\boxed{...}`) ran
for minutes. Off the main thread, `MathVerifyGrader` therefore sends each call to a helper
process (one per calling thread, started on first use): there math_verify runs on its main
thread with its own timeouts, and the caller kills the process (and starts a new one on the
next call) if even those do not return in time (a long call inside C code that no signal
interrupts). On the main thread the calls stay in-process: no round trip for the common case.

Run as a script (`python math_verify_worker.py`), this file is the helper: one JSON request
per stdin line, one JSON reply per stdout line. It imports nothing of ttc_jax.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time

_READY = "ready"
_STARTUP_S = 120.0  # Importing sympy on a loaded machine can take a while; not charged to any call.


def extract(text: str, timeout: int | None) -> str | None:
  """The answer of `text` as written (math_verify's matched string), or None; never raises."""
  import math_verify  # Lazy: sympy + latex parser are slow to import.
  try:
    parsed = math_verify.parse(text, parsing_timeout=timeout)
  except Exception:  # Never raise on model output.
    return None
  if not parsed:
    return None
  # parse() returns [sympy_expr, matched_string]; the string is the answer as written.
  return str(parsed[-1]) if len(parsed) > 1 else str(parsed[0])


def correct(text: str, reference: str, timeout: int | None) -> bool:
  """Whether the answer of `text` equals `reference`; never raises."""
  import math_verify
  try:
    # A bare reference like "\frac{1}{2}" has no delimiters for the extractor to find.
    gold = math_verify.parse(reference if "$" in reference or "\\boxed" in reference else f"${reference}$",
                             parsing_timeout=timeout)
    pred = math_verify.parse(text, parsing_timeout=timeout)
    if not gold or not pred:
      return False
    return bool(math_verify.verify(gold, pred, timeout_seconds=timeout))
  except Exception:  # Never raise on model output.
    return False


class _Worker:
  """One helper process; `call` returns None when it had to be killed (the caller grades that as wrong)."""

  def __init__(self):
    self.proc = subprocess.Popen([sys.executable, "-u", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    self.buffer = b""
    if self._read_line(_STARTUP_S) != _READY:
      self.kill()
      raise RuntimeError("the math_verify helper process did not start")

  def _read_line(self, timeout: float):
    deadline = time.monotonic() + timeout
    while b"\n" not in self.buffer:
      remaining = deadline - time.monotonic()
      if remaining <= 0 or not select.select([self.proc.stdout], [], [], remaining)[0]:
        return None
      chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
      if not chunk:  # The helper died.
        return None
      self.buffer += chunk
    line, self.buffer = self.buffer.split(b"\n", 1)
    return json.loads(line)

  def call(self, request: dict, timeout: float):
    try:
      self.proc.stdin.write((json.dumps(request) + "\n").encode())
    except (BrokenPipeError, OSError):
      return None
    reply = self._read_line(timeout)
    return None if reply is None else reply["result"]

  def alive(self) -> bool:
    return self.proc.poll() is None

  def kill(self) -> None:
    if self.proc.poll() is None:
      self.proc.kill()
    self.proc.wait()


_local = threading.local()
_all: list[_Worker] = []
_all_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
  with _all_lock:
    for worker in _all:
      worker.kill()
    _all.clear()


def call_isolated(op: str, timeout: int, **args):
  """Runs `extract` or `correct` in this thread's helper process; None if it ran past its time limit.

  math_verify's own timeouts (`timeout` seconds per parse or verify, three calls at most) end
  most slow calls inside the helper; past 3 x timeout + 2 s the helper is killed."""
  worker = getattr(_local, "worker", None)
  if worker is None or not worker.alive():
    worker = _Worker()
    _local.worker = worker
    with _all_lock:
      _all.append(worker)
  result = worker.call({"op": op, "timeout": timeout, **args}, 3 * timeout + 2.0)
  if result is None:
    worker.kill()
    _local.worker = None
    with _all_lock:
      if worker in _all:
        _all.remove(worker)
  return result


def _serve() -> None:
  import math_verify  # noqa: F401  Imported before "ready", so no call pays for it.
  out, sys.stdout = sys.stdout, sys.stderr  # Anything the library prints must not corrupt the replies.
  out.write(json.dumps(_READY) + "\n")
  out.flush()
  for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "extract":
      result = extract(request["text"], request["timeout"])
    else:
      result = correct(request["text"], request["reference"], request["timeout"])
    out.write(json.dumps({"result": result}) + "\n")
    out.flush()


if __name__ == "__main__":
  _serve()
