"""A verifier as one object: model, parameters, tokenizer and format (`verify.formats`).

  prm = load_verifier("hf:/models/Qwen2.5-Math-PRM-7B", mesh, "qwen_prm")
  prm = load_verifier("prm", mesh, "ttc", task.step_format.delimiter)   # this project's, the task's steps
  scores = prm.score(questions, step_lists, batch_size=16)

Jobs name a verifier by reference and format (config: `prm=hf:DIR`, `prm_format=qwen_prm`);
the format defaults to this project's (`ttc`), whose "problem" is the policy's prompt text.
"""
import dataclasses
from typing import Any, Sequence

from ttc_jax import export
from ttc_jax.decode.prompts import DEFAULT_BUCKETS
from ttc_jax.verify.formats import VerifierFormat, get_format
from ttc_jax.verify.scoring import score_steps


@dataclasses.dataclass(frozen=True)
class Verifier:
  model: Any
  params: Any
  tokenizer: Any
  fmt: VerifierFormat
  manifest: dict

  def score(self, problems: Sequence[str], step_lists: Sequence[Sequence[str]], *, batch_size: int,
            buckets: Sequence[int] = DEFAULT_BUCKETS) -> list[list[float]]:
    """P(correct so far) at every step (`verify.scoring.score_steps` in this verifier's format)."""
    return score_steps(self.model, self.params, self.tokenizer, problems, step_lists, batch_size=batch_size,
                       buckets=buckets, fmt=self.fmt)

  def search_kwargs(self, problems: Sequence[str]) -> dict:
    """The verifier arguments of `search.run.run_search` (its format, tokenizer and the questions)."""
    return {"verifier_format": self.fmt, "verifier_tokenizer": self.tokenizer, "problems": list(problems)}


def load_verifier(ref: str, mesh, fmt: str = "ttc", delimiter: str | None = None) -> Verifier:
  """A stage / export directory or `hf:DIR`, read with format `fmt`; raises if the model lacks its head.

  `delimiter`: the task's step delimiter, written after every step by the `ttc` format (None: "\\n").
  """
  loaded = export.load_model(ref, mesh)
  form = get_format(fmt, delimiter)
  form.reader(loaded.tokenizer).check_model(loaded.model.cfg)
  return Verifier(model=loaded.model, params=loaded.params, tokenizer=loaded.tokenizer, fmt=form,
                  manifest=loaded.manifest)
