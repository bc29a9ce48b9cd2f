"""Splitting evaluation work over the processes of a multi-host run, and gathering it back.

Evaluation jobs do not need one mesh over every host: each process takes its own share of the
problems (whole shards, `my_share`), runs them on a mesh over its local devices
(`common.setup_mesh(config, per_process=True)`) and writes its own shards; the lead process
merges. A process's share never changes what a problem gets: seeds are derived from the shard
and chunk a problem sits in, which the job's spec fixes, not from the process that runs it.
"""
import itertools
import json
from typing import Any, Sequence, TypeVar

import jax
import numpy as np

T = TypeVar("T")


def my_share(items: Sequence[T]) -> list[T]:
  """This process's items: items p, p+P, p+2P, ... (round robin balances a resumed run's leftovers too)."""
  return list(items[jax.process_index()::jax.process_count()])


def my_block(n: int) -> range:
  """This process's contiguous block of range(n) (blocks concatenated in process order give range(n))."""
  p, count = jax.process_index(), jax.process_count()
  return range(n * p // count, n * (p + 1) // count)


_BARRIER_TIMEOUT_S = 24 * 3600  # A lead building task data or merging a large artifact may take hours.
_barriers = itertools.count()  # Every process passes its barriers in the same order: one name each.


def barrier(name: str) -> None:
  """Waits for every process (nothing to wait for in a one-process run).

  Waits at the coordination service, not in a device collective: a collective gives up after 30 s
  on CPU (gloo) when the processes reach it far apart, e.g. while the lead alone builds data.
  """
  if jax.process_count() == 1:
    return
  from jax._src import distributed  # The client jax.distributed.initialize made (orbax reads it so too).
  distributed.global_state.client.wait_at_barrier(f"{name}.{next(_barriers)}", _BARRIER_TIMEOUT_S * 1000)


def gather_json(value: Any) -> list[Any]:
  """Every process's `value` (JSON-serialisable), in process order; [value] in a one-process run.

  Goes through the devices (no shared filesystem needed): each process's JSON bytes are padded to
  the longest and all-gathered.
  """
  if jax.process_count() == 1:
    return [value]
  from jax.experimental import multihost_utils
  data = np.frombuffer(json.dumps(value).encode(), np.uint8)
  lengths = np.asarray(multihost_utils.process_allgather(np.int32(len(data)))).reshape(-1)
  padded = np.zeros(int(lengths.max()), np.uint8)
  padded[:len(data)] = data
  gathered = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(lengths), -1)
  return [json.loads(bytes(row[:n]).decode()) for row, n in zip(gathered, lengths)]
