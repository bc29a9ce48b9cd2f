"""The ttc verifier layout writes the task's step delimiter: on a "\\n\\n" task (MATH-500) a step holding
a line break is one step with one read position, in scoring jobs and in training examples alike."""
import json
import os

import numpy as np
import pytest

from ttc_jax import shards
from ttc_jax.jobs import difficulty, eval_verifiers
from ttc_jax.tasks import registry
from ttc_jax.tasks.registry import TaskSpec
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import REPO_ROOT, export_tiny_model, load_config_module
from ttc_jax.verify import data as vdata
from ttc_jax.verify.formats import TtcFormat, get_format

MATH500 = os.path.join(REPO_ROOT, "tests", "data", "tasks", "math500", "test.jsonl")
MATH500_TASK = {"name": "math500", "path": MATH500, "prompt": "auto", "grader": "", "step_delimiter": ""}
PROMPT = "Question: What is 2 + 3?\nSolution:\n"
SOLUTION = "2 + 3 = 5\nso 5 it is\n\nThe answer is 5.\n\n"  # Two paragraph steps, three lines.


def test_ttc_encoding_reads_once_per_paragraph_step_of_a_paragraph_task():
  tok = load_tokenizer()
  task = registry.make_task(TaskSpec(**MATH500_TASK), "")
  steps = task.step_format.split_text(SOLUTION)
  assert steps == ["2 + 3 = 5\nso 5 it is", "The answer is 5."]
  fmt = get_format("ttc", task.step_format.delimiter)
  assert fmt == TtcFormat("\n\n")
  ids, reads = fmt.encode(tok, PROMPT, steps)
  assert len(reads) == 2  # Per "\n\n" step, not per line.
  delimiter = tok.encode("\n\n")
  want = tok.prompt_ids(PROMPT) + tok.encode(steps[0]) + delimiter + tok.encode(steps[1]) + delimiter
  assert ids == want and reads == [len(ids) - len(delimiter) - len(tok.encode(steps[1])) - 1, len(ids) - 1]
  # The step-by-step feed (one segment per step) reads the same positions.
  segments = [fmt.step_ids(tok, PROMPT, i, s) for i, s in enumerate(steps)]
  assert tok.prompt_ids(PROMPT) + [x for seg, _ in segments for x in seg] == ids
  # Without the task's delimiter the layout is lines: a paragraph step is refused, not silently cut.
  assert get_format("ttc") == TtcFormat("\n") and get_format("qwen_prm", "\n\n") is get_format("qwen_prm")
  with pytest.raises(ValueError, match="one line"):
    get_format("ttc").encode(tok, PROMPT, steps)


def test_samples_step_format_follows_the_recorded_task(tmp_path):
  def write(name, spec):
    shards.run_sharded(str(tmp_path / name), 1, lambda i: [], spec=spec)
    return str(tmp_path / name)

  assert registry.samples_step_format(write("math", {"task": MATH500_TASK}), str(tmp_path)).delimiter == "\n\n"
  custom = dict(MATH500_TASK, step_delimiter="\n")
  assert registry.samples_step_format(write("custom", {"task": custom}), str(tmp_path)).delimiter == "\n"
  arith = {"task": {"min_steps": 1, "max_steps": 3, "seed": 0}}  # arith's generator alone (task_record).
  assert registry.samples_step_format(write("arith", arith), str(tmp_path)).delimiter == "\n"
  labels = {"labels": {"samples": "math", "rollouts": 4}, "seed": 0}  # label_rollouts: follow its samples.
  assert registry.samples_step_format(write("labels", labels), str(tmp_path)).delimiter == "\n\n"
  assert registry.samples_step_format(write("bare", {}), str(tmp_path)).delimiter == "\n"


def _samples(tmp_path) -> list[dict]:
  steps = [["2 + 3 = 5\nso 5 it is", "The answer is 5."], ["It is 6.\nDone."]]
  records = [{"problem_id": f"p{i}", "question": "What is 2 + 3?", "answer": "5", "prompt": PROMPT,
              "samples": [{"steps": s, "extracted": a, "correct": a == "5", "num_tokens": 9, "step_labels": [0.5] * len(s)}
                          for s, a in zip(steps, ["5", "6"])]} for i in range(2)]
  shards.run_sharded(str(tmp_path / "samples" / "test"), 1, lambda i: records, spec={"task": MATH500_TASK})
  return records


def test_eval_verifiers_and_difficulty_use_the_samples_delimiter(tmp_path):
  tok = load_tokenizer()
  records = _samples(tmp_path)
  export_tiny_model(str(tmp_path / "prm"), tok, scalar_head=True, lm_head=False)
  export_tiny_model(str(tmp_path / "policy"), tok)
  config = load_config_module("verifier_eval").get_config()
  config.verifier_eval.update(prm="prm", orm="prm", batch_size=4)
  eval_verifiers.run(config, str(tmp_path))
  lines = [json.loads(l) for l in (tmp_path / "eval" / "verifiers" / "scores.jsonl").read_text().splitlines()]
  assert [len(s) for s in lines[0]["prm_steps"]] == [2, 1]  # One score per paragraph step.

  import jax
  from ttc_jax import export
  from ttc_jax.parallel import MeshConfig, make_mesh
  from ttc_jax.verify.scoring import score_steps
  prm = export.load_model(str(tmp_path / "prm"), make_mesh(MeshConfig(), jax.devices()[:1]))
  want = score_steps(prm.model, prm.params, prm.tokenizer, [PROMPT] * 2, [s["steps"] for s in records[0]["samples"]],
                     batch_size=4, fmt=TtcFormat("\n\n"))
  np.testing.assert_allclose([x for s in lines[0]["prm_steps"] for x in s], [x for s in want for x in s], atol=1e-6)

  # difficulty counts the ttc layout with the same delimiter.
  config = load_config_module("difficulty").get_config()
  config.difficulty.update(samples="samples/test", policy="policy", num_bins=1)
  difficulty.run(config, str(tmp_path))
  result = json.loads((tmp_path / "difficulty" / "difficulty.json").read_text())
  tokens = sum(len(TtcFormat("\n\n").encode(tok, PROMPT, s["steps"])[0]) for s in records[0]["samples"])
  assert result["cost"]["per_problem"]["verifier_tokens"] == tokens


def test_verifier_training_examples_write_the_tasks_delimiter(tmp_path):
  from ttc_jax.tokenization.steps import PARAGRAPH_STEPS
  tok = load_tokenizer()
  records = _samples(tmp_path)
  prm, skipped = vdata.prm_examples(records[:1], tok, seq_len=96, step_format=PARAGRAPH_STEPS)
  assert skipped == 0
  _, reads = TtcFormat("\n\n").encode(tok, PROMPT, records[0]["samples"][0]["steps"])
  assert np.flatnonzero(prm[0]["value_mask"]).tolist() == reads
  orm, _ = vdata.orm_examples(records[:1], tok, seq_len=96, step_format=PARAGRAPH_STEPS)
  assert np.flatnonzero(orm[0]["value_mask"]).tolist() == reads[-1:]
