"""Looking inside traced programs, for tests that pin what a program computes, not only its result."""
from typing import Iterator

from jax.extend import core


def equations(jaxpr: core.Jaxpr | core.ClosedJaxpr) -> Iterator[core.JaxprEqn]:
  """Every equation of `jaxpr` and of the jaxprs nested in it (jit, scan, while, shard_map, Pallas kernels)."""
  jaxpr = jaxpr.jaxpr if isinstance(jaxpr, core.ClosedJaxpr) else jaxpr
  for eqn in jaxpr.eqns:
    yield eqn
    for sub in core.jaxprs_in_params(eqn.params):
      yield from equations(sub)


def output_shapes(jaxpr: core.Jaxpr | core.ClosedJaxpr, primitive: str) -> list[tuple[int, ...]]:
  """The shapes of the first output of every `primitive` equation (e.g. "dot_general": every matmul)."""
  return [tuple(eqn.outvars[0].aval.shape) for eqn in equations(jaxpr) if eqn.primitive.name == primitive]
