"""Revision training trajectories: k incorrect attempts, then a correct one.

For each correct sample of a problem (the target), trajectories of k in `ks`
previous attempts are built from the problem's incorrect samples only (the paper
trains with no correct attempt in context). The attempt right before the target
is the incorrect one closest to it by character edit distance, so the model
learns to fix correlated mistakes; the other k - 1 are random incorrect samples.
Samples are compared and deduplicated by their `attempt_text`, the form they take
in a context. k cannot exceed the number of distinct incorrect samples.

Randomness comes from `random.Random(f"{seed}:{problem_id}")`: a problem's
trajectories depend on nothing but its record and the config, so any shard of a
dataset can be rebuilt bit for bit.
"""
import collections
import dataclasses
import random
from typing import Iterable, Sequence

import editdistance

from ttc_jax.revise.format import MAX_CONTEXT, attempt_text


@dataclasses.dataclass(frozen=True)
class TrajectoryConfig:
  ks: tuple[int, ...] = (0, 1, 2, 3, 4)  # Numbers of previous (incorrect) attempts to build.
  per_correct: int = 5  # Trajectories per correct sample; k cycles through the feasible ks in a shuffled order.
  distinct_targets: bool = True  # One target per distinct correct text (duplicates would repeat a trajectory).
  seed: int = 0

  def __post_init__(self):
    if not self.ks or any(not 0 <= k <= MAX_CONTEXT for k in self.ks) or len(set(self.ks)) != len(self.ks):
      raise ValueError(f"revision.ks={self.ks} must be distinct values in [0, {MAX_CONTEXT}]")
    if self.per_correct <= 0:
      raise ValueError(f"revision.per_correct={self.per_correct} must be positive")


def _distinct(texts: Iterable[str]) -> list[str]:
  return list(dict.fromkeys(texts))


def closest(target: str, candidates: Sequence[str]) -> int:
  """Index of the candidate with the smallest character edit distance to `target` (first on ties)."""
  distances = [editdistance.eval(target, c) for c in candidates]
  return distances.index(min(distances))


def problem_trajectories(record: dict, cfg: TrajectoryConfig) -> list[dict]:
  """Trajectories of one samples record: [{problem_id, question, previous, target, k}, ...].

  `previous` holds attempt texts oldest first (the closest incorrect one last);
  `target` is the correct attempt. No correct sample gives no trajectory; no
  incorrect sample leaves only k = 0.
  """
  rng = random.Random(f"{cfg.seed}:{record['problem_id']}")
  texts = [(attempt_text(s["text"]), bool(s["correct"])) for s in record["samples"]]
  correct = [t for t, ok in texts if ok]
  if cfg.distinct_targets:
    correct = _distinct(correct)
  correct_set = set(correct)
  # A text graded both ways cannot happen with one grader, but never put a correct text in context.
  incorrect = [t for t in _distinct(t for t, ok in texts if not ok) if t not in correct_set]
  feasible = sorted(k for k in cfg.ks if k <= len(incorrect))
  out = []
  for target in correct:
    near = closest(target, incorrect) if incorrect else -1
    others = [t for i, t in enumerate(incorrect) if i != near]
    ks = list(feasible)
    rng.shuffle(ks)
    for j in range(cfg.per_correct if ks else 0):
      k = ks[j % len(ks)]
      previous = []
      if k:
        previous = rng.sample(others, k - 1) + [incorrect[near]]
      out.append({"problem_id": record["problem_id"], "question": record["question"], "previous": previous,
                  "target": target, "k": k})
  return out


def build_trajectories(records: Sequence[dict], cfg: TrajectoryConfig) -> list[dict]:
  """Trajectories of every record, in record order."""
  return [t for r in records for t in problem_trajectories(r, cfg)]


def summarize(records: Sequence[dict], trajectories: Sequence[dict]) -> dict:
  """Counts for a dataset manifest: trajectories by k, problems lacking correct / incorrect samples."""
  by_k = collections.Counter(t["k"] for t in trajectories)
  return {"num_problems": len(records), "num_trajectories": len(trajectories),
          "trajectories_by_k": {str(k): by_k[k] for k in sorted(by_k)},
          "problems_without_correct": sum(not any(s["correct"] for s in r["samples"]) for r in records),
          "problems_without_incorrect": sum(all(s["correct"] for s in r["samples"]) for r in records),
          "problems_with_trajectories": len({t["problem_id"] for t in trajectories})}
