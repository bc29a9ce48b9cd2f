"""Revision training trajectories: k incorrect attempts, then a correct one.

For each correct sample of a problem (the target), `per_correct` trajectories of k
in `ks` previous attempts are built from the problem's incorrect samples only (the
paper trains with no correct attempt in context). The attempt right before the
target is the incorrect one closest to it by character edit distance, so the model
learns to fix correlated mistakes; the other k - 1 are random incorrect samples.
Samples are compared and deduplicated by their `attempt_text`, the form they take
in a context. k cannot exceed the number of distinct incorrect samples.

k = 0 (the question alone, the first attempt of a chain) gets its own share,
`first_attempt_fraction` of each target's trajectories (when 0 is in `ks`): a reviser
trained only to revise forgets how to solve, and every chain starts with a first
attempt. The k > 0 trajectories cycle through the feasible values in a shuffled
order. A target with no feasible k > 0 (no incorrect sample, or `ks` = (0,)) gets one
k = 0 trajectory: copies of it would only repeat the same example.

Randomness comes from `random.Random(f"{seed}:{problem_id}")`: a problem's
trajectories depend on nothing but its record and the config, so any shard of a
dataset can be rebuilt bit for bit.
"""
import collections
import dataclasses
import math
import random
from typing import Iterable, Sequence

import editdistance

from ttc_jax.revise.format import MAX_CONTEXT, attempt_text


@dataclasses.dataclass(frozen=True)
class TrajectoryConfig:
  ks: tuple[int, ...] = (0, 1, 2, 3, 4)  # Numbers of previous (incorrect) attempts to build.
  per_correct: int = 3  # Trajectories per correct sample (each trains on the same target text).
  # Share of each target's trajectories with k = 0 (when 0 is in ks): round(fraction x per_correct), rounded
  # up or down at random so the dataset's share is the fraction in expectation.
  first_attempt_fraction: float = 1 / 3
  distinct_targets: bool = True  # One target per distinct correct text (duplicates would repeat a trajectory).
  seed: int = 0

  def __post_init__(self):
    if not self.ks or any(not 0 <= k <= MAX_CONTEXT for k in self.ks) or len(set(self.ks)) != len(self.ks):
      raise ValueError(f"revision.ks={self.ks} must be distinct values in [0, {MAX_CONTEXT}]")
    if self.per_correct <= 0:
      raise ValueError(f"revision.per_correct={self.per_correct} must be positive")
    if not 0 <= self.first_attempt_fraction <= 1:
      raise ValueError(f"revision.first_attempt_fraction={self.first_attempt_fraction} must be in [0, 1]")

  def first_attempts(self, rng: random.Random) -> int:
    """k = 0 trajectories of one target that also has k > 0 ones: fraction x per_correct, randomly rounded."""
    if 0 not in self.ks:
      return 0
    expected = self.first_attempt_fraction * self.per_correct
    whole = math.floor(expected + 1e-9)  # 1/3 x 3 is exactly 1 but need not be in general.
    rest = expected - whole
    return min(self.per_correct, whole + (rest > 1e-9 and rng.random() < rest))


def _distinct(texts: Iterable[str]) -> list[str]:
  return list(dict.fromkeys(texts))


def closest(target: str, candidates: Sequence[str]) -> int:
  """Index of the candidate with the smallest character edit distance to `target` (first on ties)."""
  distances = [editdistance.eval(target, c) for c in candidates]
  return distances.index(min(distances))


def problem_trajectories(record: dict, cfg: TrajectoryConfig) -> list[dict]:
  """Trajectories of one samples record: [{problem_id, question, previous, target, k}, ...].

  `previous` holds attempt texts oldest first (the closest incorrect one last);
  `target` is the correct attempt; a target's k = 0 trajectories come first. No
  correct sample gives no trajectory; no incorrect sample leaves one k = 0 per target.
  """
  rng = random.Random(f"{cfg.seed}:{record['problem_id']}")
  texts = [(attempt_text(s["text"]), bool(s["correct"])) for s in record["samples"]]
  correct = [t for t, ok in texts if ok]
  if cfg.distinct_targets:
    correct = _distinct(correct)
  correct_set = set(correct)
  # A text graded both ways cannot happen with one grader, but never put a correct text in context.
  incorrect = [t for t in _distinct(t for t, ok in texts if not ok) if t not in correct_set]
  revising = sorted(k for k in cfg.ks if 0 < k <= len(incorrect))
  out = []
  for target in correct:
    near = closest(target, incorrect) if incorrect else -1
    others = [t for i, t in enumerate(incorrect) if i != near]
    if revising:
      ks = list(revising)
      rng.shuffle(ks)
      first = cfg.first_attempts(rng)
      plan = [0] * first + [ks[j % len(ks)] for j in range(cfg.per_correct - first)]
    else:
      plan = [0] if 0 in cfg.ks else []
    for k in plan:
      previous = []
      if k:
        previous = rng.sample(others, k - 1) + [incorrect[near]]
      out.append({"problem_id": record["problem_id"], "question": record["question"], "previous": previous,
                  "target": target, "k": k})
  return out


def build_trajectories(records: Sequence[dict], cfg: TrajectoryConfig) -> list[dict]:
  """Trajectories of every record, in record order."""
  return [t for r in records for t in problem_trajectories(r, cfg)]


def k_distribution(trajectories: Sequence[dict]) -> dict:
  """{"trajectories_by_k": {k: count}, "first_attempt_fraction": share with k = 0 (None if empty)}."""
  by_k = collections.Counter(t["k"] for t in trajectories)
  return {"trajectories_by_k": {str(k): by_k[k] for k in sorted(by_k)},
          "first_attempt_fraction": by_k[0] / len(trajectories) if trajectories else None}


def summarize(records: Sequence[dict], trajectories: Sequence[dict]) -> dict:
  """Counts for a dataset manifest: trajectories by k, problems lacking correct / incorrect samples."""
  return {"num_problems": len(records), "num_trajectories": len(trajectories), **k_distribution(trajectories),
          "problems_without_correct": sum(not any(s["correct"] for s in r["samples"]) for r in records),
          "problems_without_incorrect": sum(all(s["correct"] for s in r["samples"]) for r in records),
          "problems_with_trajectories": len({t["problem_id"] for t in trajectories})}
