"""Accuracy as a function of the number of samples N, by subsampling K samples per problem.

For each N (<= K) and problem, `num_subsets` random subsets of N samples are
drawn without replacement (one subset when N = K); a selector picks an answer
from each subset; accuracy is the mean over problems and subsets. pass@N (any
sample correct) is the ceiling, not an accuracy a selector can reach.
"""
from typing import Callable, Mapping, Sequence

import numpy as np

# (answers, scores) -> chosen answer; scores may be ignored (majority vote).
Selector = Callable[[Sequence[str | None], Sequence[float]], str | None]


def budgets_up_to(k: int) -> list[int]:
  """1, 2, 4, ... up to k (k included even if not a power of two)."""
  ns, n = [], 1
  while n < k:
    ns.append(n)
    n *= 2
  return ns + [k]


def accuracy_by_problem(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]],
                        scores: Mapping[str, Sequence[Sequence[float]]],
                        selectors: Mapping[str, tuple[str | None, Selector]], ns: Sequence[int], num_subsets: int = 32,
                        seed: int = 0) -> dict[str, dict[int, list[float]]]:
  """Per problem, the fraction of its subsets of N samples on which each selector picks a correct
  answer (and "pass@N": any sample correct): {name: {N: [one value per problem]}}. The paired
  comparisons of selectors (`analysis.verifier_selection`) work on these; `accuracy_vs_n` averages them.

  Args:
    answers[p][i], correct[p][i]: extracted answer and correctness of sample i of problem p.
    scores: name -> per-problem, per-sample scores (e.g. "prm_last").
    selectors: curve name -> (name of the score it uses or None, selector).
  """
  out: dict[str, dict[int, list[float]]] = {name: {} for name in [*selectors, "pass@N"]}
  for n in ns:
    per_problem = {name: [] for name in out}
    for p, (ans_p, cor_p) in enumerate(zip(answers, correct)):
      k = len(ans_p)
      if n > k:
        raise ValueError(f"N={n} is larger than the {k} samples of problem {p}")
      rng = np.random.default_rng([seed, n, p])
      subsets = [np.arange(k)] if n == k else [rng.choice(k, size=n, replace=False) for _ in range(num_subsets)]
      answer_correct = {a: c for a, c in zip(ans_p, cor_p) if a is not None}
      hits = {name: [] for name in out}
      for idx in subsets:
        sub_answers = [ans_p[i] for i in idx]
        for name, (score_name, select) in selectors.items():
          sub_scores = [scores[score_name][p][i] for i in idx] if score_name else [1.0] * n
          chosen = select(sub_answers, sub_scores)
          hits[name].append(chosen is not None and answer_correct.get(chosen, False))
        hits["pass@N"].append(any(cor_p[i] for i in idx))
      for name in out:
        per_problem[name].append(float(np.mean(hits[name])))
    for name in out:
      out[name][n] = per_problem[name]
  return out


def accuracy_vs_n(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]],
                  scores: Mapping[str, Sequence[Sequence[float]]], selectors: Mapping[str, tuple[str | None, Selector]],
                  ns: Sequence[int], num_subsets: int = 32, seed: int = 0) -> dict[str, dict[int, float]]:
  """Curves for every selector, plus "pass@N": the mean over problems (and their subsets; every
  problem has the same number of subsets) of `accuracy_by_problem`."""
  return mean_curves(accuracy_by_problem(answers, correct, scores, selectors, ns, num_subsets=num_subsets, seed=seed))


def mean_curves(by_problem: Mapping[str, Mapping[int, Sequence[float]]]) -> dict[str, dict[int, float]]:
  """{name: {N: accuracy}}: the mean over problems of `accuracy_by_problem`."""
  return {name: {n: float(np.mean(v)) for n, v in c.items()} for name, c in by_problem.items()}
