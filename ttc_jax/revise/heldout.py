"""Held-out checks of the revision model against the policy it started from.

Loss: trajectories of the last problems are kept out of training (by problem, so a
held-out target answers a question never trained on). Both the trained reviser and the
policy are scored with the training loss, next-token cross-entropy on the final
(correct) attempt, over those trajectories, overall and by k (previous attempts in the
context). k = 0 is the policy's own prompt; for k > 0 the policy has never seen the
revision layout, so a reviser that beats it there has learned to use the context.

First attempt (the gate): every chain starts with an attempt from the question alone,
so a reviser whose first attempt is worse than the policy's starts every chain behind.
Both models sample S first attempts (`revision_prompt(question, [])`, as a chain's
attempt 0, with the same keys) for problems neither trained on, graded by the task's
grader; the per-problem difference of pass@1 (reviser minus policy) gets a paired
bootstrap interval (`analysis/paired.py`), and `first_attempt_gate` reads it:

  worse         the whole interval below 0
  better        the whole interval above 0
  not worse     the interval at or above -paired.MARGIN (within 2 points of the policy, or better)
  inconclusive  otherwise, or fewer than paired.MIN_QUESTIONS problems

eval_revisions copies the result into its results.json (`read_gate`) and the report warns at
the top of its revisions section when the gate is `worse` or `inconclusive`, or when there
is no check to read.
"""
import json
import os
from typing import Sequence

import jax

from ttc_jax import storage
from ttc_jax.analysis import paired
from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.revise.chains import run_chains
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


EVAL_FILE = "reviser_eval.json"
WORSE, BETTER, NOT_WORSE, INCONCLUSIVE = "worse", "better", "not worse", "inconclusive"
WARN = (WORSE, INCONCLUSIVE)  # Gates the report warns about.


def first_attempt_gate(low: float, high: float, n: int, margin: float = paired.MARGIN) -> str:
  """The gate of a paired interval of reviser minus policy first-attempt accuracy (module docstring)."""
  if n < paired.MIN_QUESTIONS:
    return INCONCLUSIVE
  if high < 0:
    return WORSE
  if low > 0:
    return BETTER
  return NOT_WORSE if low >= -margin else INCONCLUSIVE


def first_attempt_pass1(model, params, tokenizer, problems: Sequence, grader, rng: jax.Array, *, samples: int,
                        cfg: SamplingConfig, batch_size: int) -> dict[str, float]:
  """{problem id: pass@1 of `samples` first attempts} sampled as attempt 0 of `samples` chains."""
  chains = run_chains(model, params, tokenizer, [p.question for p in problems], rng, parallel=samples, revisions=1,
                      cfg=cfg, batch_size=batch_size)
  return {p.id: sum(bool(grader.is_correct(c[0], p.answer)) for c in out["chains"]) / samples
          for p, out in zip(problems, chains)}


def compare_first_attempts(reviser: dict[str, float], policy: dict[str, float]) -> dict:
  """{"reviser", "policy" (mean pass@1), "difference", "low", "high", "n", "confidence", "gate"} over the
  problems in both; the interval is paired.paired's (reviser minus policy)."""
  p = paired.paired(reviser, policy)
  if p is None:
    return {"reviser": None, "policy": None, "difference": None, "low": None, "high": None, "n": 0,
            "confidence": paired.CONFIDENCE, "gate": INCONCLUSIVE}
  return {"reviser": p["mean_a"], "policy": p["mean_b"], "difference": p["difference"], "low": p["low"],
          "high": p["high"], "n": p["n"], "confidence": paired.CONFIDENCE,
          "gate": first_attempt_gate(p["low"], p["high"], p["n"])}


def gate_summary(check: dict) -> str:
  """One line with the numbers, e.g. "reviser 0.470 vs policy 0.557 on 500 problems: difference -0.087,
  95% interval [-0.112, -0.061]: worse"."""
  if not check.get("n"):
    return f"no problem compared: {check.get('gate', INCONCLUSIVE)}"
  return (f"reviser {check['reviser']:.3f} vs policy {check['policy']:.3f} on {check['n']} problems: difference "
          f"{check['difference']:+.3f}, {100 * check['confidence']:.0f}% interval [{check['low']:+.3f}, "
          f"{check['high']:+.3f}]: {check['gate']}")


def read_gate(reviser_dir: str) -> dict:
  """The first-attempt check of the reviser in `reviser_dir` (a stage directory), for eval_revisions' results:
  {"source": path of reviser_eval.json, **its "first_attempt" less the per-problem pass@1}, or {"source",
  "missing": why} when the file or its check is absent (an export, an `hf:` model, a reviser trained before the
  check, or reviser.check_problems=0)."""
  path = os.path.join(reviser_dir, EVAL_FILE)
  if not storage.exists(path):
    return {"source": path, "missing": f"{path} does not exist (a reviser not trained by train_reviser here)"}
  with storage.open(path) as f:
    check = json.load(f).get("first_attempt")
  if check is None:
    return {"source": path, "missing": f"{path} holds no first-attempt check (written before it existed, or "
                                       "reviser.check_problems=0)"}
  return {"source": path, **{k: v for k, v in check.items() if k != "pass1"}}
