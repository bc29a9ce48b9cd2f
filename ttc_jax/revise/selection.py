"""Choosing one answer from a grid of revision chains (P chains x L attempts).

  answers[c][t]: the extracted answer of attempt t of chain c (None: no answer)
  scores[c][t]:  a verifier score of that attempt (ORM with the chain's context), or None

Flat selection treats all P*L attempts as one pool (as best-of-N does). Hierarchical
selection (the paper's) first picks one answer per chain, then combines the P picks.
Everything ends in `search.aggregation`: None answers never win, ties go to the answer
seen first (chains in order, attempts oldest first), no answer at all gives None.

Also the chain statistics of the paper's revision analysis: pass@1 at every revision
step, and how often a correct attempt is revised into an incorrect one (and back).
"""
import math
from typing import Sequence

from ttc_jax.search.aggregation import majority_vote, weighted_vote

Grid = Sequence[Sequence]


def ratio_label(parallel: int, revisions: int) -> str:
  """The sequential:parallel ratio L:P, reduced (16x1 -> "1:16", 4x4 -> "1:1", 1x16 -> "16:1")."""
  g = math.gcd(parallel, revisions)
  return f"{revisions // g}:{parallel // g}"
WITHIN = ("majority", "weighted", "last")
ACROSS = ("majority", "weighted")


def _flat(grid: Grid) -> list:
  return [x for row in grid for x in row]


def _check(answers: Grid, scores: Grid | None) -> None:
  if scores is None:
    return
  if len(scores) != len(answers) or any(len(s) != len(a) for s, a in zip(scores, answers)):
    raise ValueError(f"scores shape {[len(s) for s in scores]} != answers shape {[len(a) for a in answers]}")


def flat_majority(answers: Grid) -> str | None:
  """The most frequent answer over all P*L attempts."""
  return majority_vote(_flat(answers))


def flat_weighted(answers: Grid, scores: Grid) -> str | None:
  """Best-of-N weighted over all P*L attempts: the answer with the largest summed score."""
  _check(answers, scores)
  return weighted_vote(_flat(answers), _flat(scores))


def _within(chain: Sequence[str | None], chain_scores: Sequence[float] | None, how: str) -> tuple[str | None, float]:
  """One chain's pick and its score (the best score among the chain's attempts with that answer; 0 if none)."""
  if how == "majority":
    pick = majority_vote(chain)
  elif how == "weighted":
    pick = weighted_vote(chain, chain_scores)
  else:  # "last": the chain's final attempt
    pick = chain[-1] if chain else None
  if pick is None or chain_scores is None:
    return pick, 0.0
  return pick, max(float(s) for a, s in zip(chain, chain_scores) if a == pick)


def hierarchical(answers: Grid, scores: Grid | None = None, *, within: str = "majority",
                 across: str = "majority") -> str | None:
  """Pick one answer per chain (`within`), then one across the P picks (`across`).

  within: "majority" (most frequent in the chain), "weighted" (largest summed score in the
    chain) or "last" (the chain's final attempt).
  across: "majority" over the picks, or "weighted": the pick with the largest sum of the picks'
    scores (a pick's score is the best score among its chain's attempts giving that answer).
  """
  if within not in WITHIN or across not in ACROSS:
    raise ValueError(f"within={within!r} must be one of {WITHIN}, across={across!r} one of {ACROSS}")
  if scores is None and "weighted" in (within, across):
    raise ValueError("weighted hierarchical selection needs verifier scores")
  _check(answers, scores)
  picks = [_within(chain, None if scores is None else scores[c], within) for c, chain in enumerate(answers)]
  if across == "majority":
    return majority_vote([a for a, _ in picks])
  return weighted_vote([a for a, _ in picks], [s for _, s in picks])


# name -> (needs scores, function(answers, scores) -> answer). The evaluation reports every
# method whose inputs it has.
METHODS = {
    "majority_flat": (False, lambda a, s: flat_majority(a)),
    "majority_hierarchical": (False, lambda a, s: hierarchical(a, within="majority", across="majority")),
    "last_majority": (False, lambda a, s: hierarchical(a, within="last", across="majority")),
    "weighted_flat": (True, flat_weighted),
    "weighted_hierarchical": (True, lambda a, s: hierarchical(a, s, within="weighted", across="weighted")),
}


def methods(with_scores: bool) -> list[str]:
  return [m for m, (needs, _) in METHODS.items() if with_scores or not needs]


def select(method: str, answers: Grid, scores: Grid | None = None) -> str | None:
  if method not in METHODS:
    raise ValueError(f"selection {method!r} must be one of {tuple(METHODS)}")
  return METHODS[method][1](answers, scores)


def pass_at_step(correct_grids: Sequence[Grid]) -> list[float]:
  """pass@1 at each revision step t: mean over problems and chains of correct[c][t].

  correct_grids: one P x L grid of bools per problem (all with the same L).
  """
  totals: list[float] = []
  counts: list[int] = []
  for grid in correct_grids:
    for chain in grid:
      for t, ok in enumerate(chain):
        if t == len(totals):
          totals.append(0.0)
          counts.append(0)
        totals[t] += bool(ok)
        counts[t] += 1
  return [s / c for s, c in zip(totals, counts)]


def transition_rates(correct_grids: Sequence[Grid]) -> dict:
  """Over consecutive attempt pairs (t, t+1) of every chain:

  correct_to_incorrect = #(t correct, t+1 incorrect) / #(t correct)
  incorrect_to_correct = #(t incorrect, t+1 correct) / #(t incorrect)
  (None when there is no such pair), with the pair counts.
  """
  n = {(a, b): 0 for a in (True, False) for b in (True, False)}
  for grid in correct_grids:
    for chain in grid:
      for a, b in zip(chain, chain[1:]):
        n[(bool(a), bool(b))] += 1
  from_correct = n[(True, True)] + n[(True, False)]
  from_incorrect = n[(False, True)] + n[(False, False)]
  return {"correct_to_incorrect": n[(True, False)] / from_correct if from_correct else None,
          "incorrect_to_correct": n[(False, True)] / from_incorrect if from_incorrect else None,
          "pairs_from_correct": from_correct, "pairs_from_incorrect": from_incorrect}
