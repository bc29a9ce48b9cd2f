"""PRM step labels from sources other than Monte Carlo rollouts, as label records.

A label record is what `label_rollouts` writes and `verify.data.prm_examples` reads:

  {"problem_id", "question", "answer", "metadata", "prompt",
   "samples": [{"steps": [str, ...], "step_labels": [float | None, ...], ...}, ...]}

with one label per step (None: no target at that step's end). Two sources:

  prm800k  PRM800K's human ratings (Lightman et al. 2023), the paper's comparison for its MC
           labels. Rating 1 -> 1.0, -1 -> 0.0, 0 (neutral) -> `neutral` (1.0 by default:
           Lightman et al. count neutral steps as correct when they score at test time). A
           trajectory ends at its first -1 step (kept: it is the error; later steps carry no
           information) or before its first unrated step.
  exact    The built-in arith task's exact line labels: a line is right iff it equals the
           reference computation's line at its position (`tasks.synthetic.reference_steps`), and
           every line after the first wrong one is wrong. Noise-free labels of the same sampled
           solutions the MC labels are computed on: label quality apart from model capacity.
"""
from __future__ import annotations

import collections
from collections.abc import Sequence

from ttc_jax.tasks import synthetic
from ttc_jax.tasks.loaders.prm800k import SOURCE as PRM800K, LabelledSolution, LabelledStep
from ttc_jax.tasks.problem import SOURCE, Problem
from ttc_jax.tokenization.steps import StepFormat

SOURCES = ("rollouts", "prm800k", "exact")


def rated_steps(steps: Sequence[LabelledStep], neutral: float) -> tuple[list[tuple[str, float]], str]:
  """The labelled prefix of a PRM800K trajectory as (text, label) pairs, and why it ends.

  Returns:
    (pairs, end): end is "error" (the last pair is the first -1 step; what followed is dropped),
    "unrated" (a step without a rating ends it, that step dropped) or "complete".
  """
  out = []
  for step in steps:
    if step.rating is None:
      return out, "unrated"
    out.append((step.text, {1: 1.0, 0: neutral, -1: 0.0}[step.rating]))
    if step.rating == -1:
      return out, "error"
  return out, "complete"


def lay_out(pairs: Sequence[tuple[str, float]], step_format: StepFormat) -> tuple[list[str], list[float | None]]:
  """(steps, labels) in the task's step format: a text holding the delimiter (PRM800K's
  "# Answer\\n\\n5") is the steps the task's splitter makes of it, as a scorer sees them; its label
  sits at the last one's end and the pieces before it get none (an error may be in any piece)."""
  steps, labels = [], []
  for text, label in pairs:
    pieces = step_format.split_text(text)
    if pieces:  # An empty text is nothing a scorer would see.
      steps += pieces
      labels += [None] * (len(pieces) - 1) + [label]
  return steps, labels


def prm800k_records(solutions: Sequence[LabelledSolution], task, tokenizer, *,
                    neutral: float) -> tuple[list[dict], dict]:
  """Label records of PRM800K trajectories, one record per question (first-seen order), prompted
  and delimited as `task` lays out its problems; and counts of what was kept (for the summary)."""
  records, stats = {}, collections.Counter()
  for solution in solutions:
    pairs, end = rated_steps(solution.steps, neutral)
    stats[f"ends_{end}"] += 1
    stats["steps_dropped"] += len(solution.steps) - len(pairs)
    stats["neutral_steps"] += sum(s.rating == 0 for s in solution.steps[:len(pairs)])
    if solution.problem_id not in records:
      problem = Problem(id=solution.problem_id, question=solution.question, answer=solution.answer,
                        metadata={SOURCE: PRM800K})
      records[solution.problem_id] = {"problem_id": problem.id, "question": problem.question,
                                      "answer": problem.answer, "metadata": dict(problem.metadata),
                                      "prompt": task.prompt(problem, tokenizer), "samples": []}
    steps, labels = lay_out(pairs, task.step_format)
    stats["steps_labelled"] += sum(label is not None for label in labels)
    records[solution.problem_id]["samples"].append({"id": solution.id, "steps": steps, "step_labels": labels,
                                                    "finish_reason": solution.finish_reason})
  return list(records.values()), {"trajectories": len(solutions), **stats}


def exact_step_labels(question: str, steps: Sequence[str]) -> list[float]:
  """1.0 for each line equal to the reference's line at its position, until the first that is not;
  0.0 from there on (a line past the reference's end is wrong)."""
  reference = synthetic.reference_steps(question)
  labels, right = [], True
  for i, step in enumerate(steps):
    right = right and i < len(reference) and step == reference[i]
    labels.append(float(right))
  return labels


def exact_records(records: Sequence[dict]) -> tuple[list[dict], dict]:
  """Samples records (job sample_solutions, arith) with exact `step_labels` on every sample; and
  counts (for the summary). A record whose question is not arith's raises naming it."""
  out, lines, right = [], 0, 0
  for record in records:
    try:
      synthetic.reference_steps(record["question"])
    except ValueError as e:
      raise ValueError(f"verifier.labels='exact' needs samples of the built-in arith task; problem "
                       f"{record.get('problem_id')!r}: {e}") from None
    samples = []
    for sample in record["samples"]:
      labels = exact_step_labels(record["question"], sample["steps"])
      lines, right = lines + len(labels), right + sum(labels)
      samples.append({**sample, "step_labels": labels})
    out.append({**record, "samples": samples})
  return out, {"steps_labelled": lines, "steps_right": int(right)}
