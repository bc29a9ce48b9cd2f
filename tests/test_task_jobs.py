"""Jobs on a benchmark task: sample_solutions and label_rollouts read MATH-500 fixture rows through the
Task interface, with its few-shot prompt, grader, step delimiter and metadata (a tiny random policy)."""
import json
import pathlib

from ttc_jax import shards
from ttc_jax.jobs import label_rollouts, sample_solutions
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import export_tiny_model, load_config_module

MATH500 = pathlib.Path(__file__).parent / "data" / "tasks" / "math500"


def _task(c):
  c.task.update(name="math500", path=str(MATH500))


def test_sample_then_label_a_benchmark_task(tmp_path):
  export_tiny_model(str(tmp_path / "policy"), load_tokenizer(), max_len=1056)
  c = load_config_module("samples").get_config("smoke")
  _task(c)
  c.sampling.update(split="test", num_problems=-1, samples_per_problem=2, max_new_tokens=8)
  sample_solutions.run(c, str(tmp_path))
  out = tmp_path / "samples" / "test"
  records = shards.read_records(str(out))
  assert [r["problem_id"] for r in records] == ["test/precalculus/1.json", "test/prealgebra/7.json",
                                               "test/algebra/30.json"]
  assert records[2]["metadata"] == {"source": "math500", "level": 5, "subject": "Algebra"}
  # The shipped SentencePiece tokenizer has no chat template: the few-shot prompt, steps "\n\n".
  assert records[0]["prompt"].startswith("Problem:\n") and records[0]["prompt"].endswith("\n\nSolution:\n")
  assert all(s["steps"] == [x for x in s["text"].split("\n\n") if x] for r in records for s in r["samples"])
  spec = json.loads((out / "spec.json").read_text())
  assert spec["task"]["name"] == "math500" and spec["task"]["path"] == str(MATH500)

  # Steps ending in "\n\n" as label_rollouts rebuilds them; a random policy rarely writes any.
  for r in records:
    r["samples"][0]["steps"] = ["We compute.", "So $\\boxed{0}$."]
  shards.run_sharded(str(tmp_path / "samples" / "stepped"), 1, lambda k: records, spec={})
  c = load_config_module("labels").get_config("smoke")
  _task(c)
  # The sampling shapes above (batch 4, 2 per prompt, 8 tokens): the compiled sampler is reused.
  c.labels.update(samples="samples/stepped", rollouts=2, max_new_tokens=8, batch_size=4)
  label_rollouts.run(c, str(tmp_path))
  labelled = shards.read_records(str(tmp_path / "labels" / "train"))
  first = labelled[0]["samples"][0]
  assert len(first["step_labels"]) == 2 and first["rollout_tokens"] > 0
  assert first["step_labels"][-1] == float(first["correct"])
