"""Choosing one final answer from many candidates.

Candidates without a parseable answer (None) never win; if no candidate has
an answer, the choice is None (graded wrong). Ties go to the answer seen first,
so results are deterministic.
"""
from typing import Sequence


def _tally(answers: Sequence[str | None], weights: Sequence[float]) -> str | None:
  totals: dict[str, float] = {}
  for answer, weight in zip(answers, weights):
    if answer is not None:
      totals[answer] = totals.get(answer, 0.0) + float(weight)
  if not totals:
    return None
  best = max(totals.values())
  return next(a for a in totals if totals[a] == best)  # dicts keep first-seen order


def majority_vote(answers: Sequence[str | None]) -> str | None:
  """The most frequent answer."""
  return _tally(answers, [1.0] * len(answers))


def weighted_vote(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
  """Best-of-N weighted (the paper's aggregation): the answer with the largest summed verifier score."""
  return _tally(answers, scores)


def best_score(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
  """Plain best-of-N: the answer of the single highest-scoring candidate that has one."""
  ranked = sorted((s, -i) for i, (a, s) in enumerate(zip(answers, scores)) if a is not None)
  return answers[-ranked[-1][1]] if ranked else None
