"""Held-out check of the revision model: does it predict a correct revision better than the policy?

Trajectories of the last problems are kept out of training (by problem, so a held-out
target answers a question never trained on). Both the trained reviser and the policy it
started from are scored with the training loss, next-token cross-entropy on the final
(correct) attempt, over those trajectories, overall and by k (previous attempts in the
context). k = 0 is the policy's own prompt; for k > 0 the policy has never seen the
revision layout, so a reviser that beats it there has learned to use the context, and
one that loses to it at k = 0 has forgotten how to solve.
"""
from typing import Sequence

from ttc_jax.revise.data import revision_examples
from ttc_jax.train.evaluate import loss_sums
from ttc_jax.train.losses import LossFn
from ttc_jax.verify.data import split_heldout


def split_trajectories(trajectories: Sequence[dict], fraction: float) -> tuple[list[dict], list[dict], int]:
  """(train, held-out trajectories, held-out problems): the last ceil(fraction * problems) problems held out.

  Trajectories arrive grouped by problem (revision_data writes them in record order).
  """
  groups: dict[str, list[dict]] = {}
  for t in trajectories:
    groups.setdefault(t["problem_id"], []).append(t)
  train, heldout = split_heldout(list(groups.values()), fraction)
  return [t for g in train for t in g], [t for g in heldout for t in g], len(heldout)


def _means(sums: dict[str, float]) -> dict[str, float | None]:
  n = sums["weight"]
  if not n:
    return {"loss": None}  # Nothing held out fits train.seq_len.
  return {"loss": sums["loss_sum"] / n, **{k: v / n for k, v in sums.items() if k not in ("loss_sum", "weight")}}


def evaluate_heldout(loss_fn: LossFn, params_by_model: dict, trajectories: Sequence[dict], tokenizer, *,
                     seq_len: int, batch_size: int) -> dict:
  """Mean next-token loss (and token accuracy) per target token of every model in `params_by_model`.

  Returns {"examples", "skipped" (longer than seq_len), "targets", <model>: {"loss", "token_accuracy"},
  "by_k": {k: {"examples", "targets", <model>: {...}}}}.
  """
  by_k: dict[int, list[dict]] = {}
  for t in trajectories:
    by_k.setdefault(t["k"], []).append(t)
  totals = {name: {"loss_sum": 0.0, "weight": 0.0} for name in params_by_model}
  result: dict = {"examples": 0, "skipped": 0, "targets": 0, "by_k": {}}
  for k in sorted(by_k):
    examples, stats = revision_examples(by_k[k], tokenizer, seq_len)
    result["skipped"] += stats["skipped"]
    if not examples:
      continue
    row = {"examples": len(examples), "targets": stats["target_tokens"]}
    for name, params in params_by_model.items():
      sums = loss_sums(loss_fn, params, examples, batch_size=batch_size)
      for key, value in sums.items():
        totals[name][key] = totals[name].get(key, 0.0) + value
      row[name] = _means(sums)
    result["by_k"][str(k)] = row
    result["examples"] += row["examples"]
    result["targets"] += row["targets"]
  result.update({name: _means(s) for name, s in totals.items()})
  return result
