"""Tasks as data: the published file formats load to the right problems and answers, malformed rows
name file, line and field, prompts keep the step delimiter, and arith through `Task` is unchanged."""
import dataclasses
import json
import pathlib

import pytest

from ttc_jax.tasks import fewshot, prompts, registry, synthetic
from ttc_jax.tasks.base import Task
from ttc_jax.tasks.boxed import last_boxed
from ttc_jax.tasks.loaders import aime2024, aime2025, gsm8k, hendrycks_math, math500, prm800k
from ttc_jax.tasks.loaders.rows import DataFormatError
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing import chat_fixtures
from ttc_jax.tokenization import load_tokenizer as load_any_tokenizer
from ttc_jax.tokenization.steps import LINE_STEPS, PARAGRAPH_STEPS

DATA = pathlib.Path(__file__).parent / "data" / "tasks"


def _task(name, path, **kw):
  return registry.make_task(registry.TaskSpec(name=name, path=str(DATA / path), **kw), data_dir="")


# ----------------------------------------------------------------------------- answers


@pytest.mark.parametrize("text, answer", [
    (r"so $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
    (r"\boxed{1} then \boxed{2}", "2"),  # the last box
    (r"\fbox{4} sides", "4"),
    (r"\boxed{\left\{ 1, 2 \right\}}", r"\left\{ 1, 2 \right\}"),  # escaped braces still nest
    (r"$\boxed 5$.", "5"),  # MATH's brace-less form
    (r"\boxed{\frac{1}{2}", None),  # unclosed
    ("no box", None),
    (r"\boxedx{3}", None),
])
def test_last_boxed(text, answer):
  assert last_boxed(text) == answer


# ----------------------------------------------------------------------------- loaders


def test_math500():
  ps = math500.load(DATA / "math500", "test")
  assert [p.id for p in ps] == ["test/precalculus/1.json", "test/prealgebra/7.json", "test/algebra/30.json"]
  assert [p.answer for p in ps] == [r"\frac{1}{2}", "12", "-1, 1"]
  assert ps[0].metadata == {"source": "math500", "level": 1, "subject": "Precalculus"}
  assert math500.load(DATA / "math500" / "test.jsonl", "test") == ps  # the file itself
  with pytest.raises(ValueError, match="only a test split"):
    math500.load(DATA / "math500", "train")


def test_hendrycks_math():
  ps = hendrycks_math.load(DATA / "math", "test")
  # Numbered files in numeric order (2 before 10), ids as MATH-500's unique_id.
  assert [p.id for p in ps] == ["test/algebra/2.json", "test/algebra/10.json", "test/geometry/3.json"]
  assert [p.answer for p in ps] == [r"\frac{1}{2}", "4", "4"]  # nested braces; the last box; \fbox
  assert [p.metadata["level"] for p in ps] == [1, 3, 2] and ps[2].metadata["subject"] == "Geometry"
  (train,) = hendrycks_math.load(DATA / "math", "train")
  assert train.answer == "2" and "level" not in train.metadata  # "Level ?" as published


def test_gsm8k():
  ps = gsm8k.load(DATA / "gsm8k", "test")
  assert [p.id for p in ps] == ["test.jsonl:1", "test.jsonl:2"]
  assert [p.answer for p in ps] == ["1234", "2"]  # thousands comma removed
  assert ps[0].solution == "Monday and Tuesday: 617+617=1234 pens."  # calculator notes removed
  assert [p.answer for p in gsm8k.load(DATA / "gsm8k", "train")] == ["42"]


def test_aime():
  ps = aime2024.load(DATA / "aime2024", "test")
  assert [(p.id, p.answer) for p in ps] == [("60", "3"), ("61", "10")]
  assert ps[0].metadata["year"] == "2024" and ps[0].solution.endswith(r"$\boxed{3}$.")
  ps = aime2025.load(DATA / "aime2025", "test")
  assert [(p.id, p.answer) for p in ps] == [("aime2025-I.jsonl:1", "24"), ("aime2025-I.jsonl:2", "1"),
                                           ("aime2025-II.jsonl:1", "9")]


def test_prm800k_problems_and_step_labels():
  ps = prm800k.load(DATA / "prm800k", "train")
  # Distinct questions in first-seen order (phase 1 file first); the repeat in phase 2 is the same problem.
  assert [(p.id, p.answer) for p in ps] == [("phase1_train.jsonl:1", "5"), ("phase2_train.jsonl:1", r"\frac{1}{2}")]
  sols = prm800k.labelled_solutions(DATA / "prm800k", "train")
  assert [s.problem_id for s in sols] == ["phase1_train.jsonl:1", "phase2_train.jsonl:1", "phase1_train.jsonl:1"]
  first = sols[0]
  assert [st.text for st in first.steps] == ["I add the numbers.", "So $2 + 3 = 5$.", "# Answer\n\n5"]
  assert [st.rating for st in first.steps] == [0, None, 1]  # chosen, human (unrated), chosen
  assert first.steps[1].human and first.steps[0].completions[1] == (r"I multiply: $2 \cdot 3 = 6$.", -1)
  # Phase 2 stops at the first error: nothing chosen, the single candidate carries the -1.
  assert [(st.text, st.rating) for st in sols[1].steps] == [("Divide top and bottom by 4.", 1),
                                                             (r"That gives $\frac{1}{3}$.", -1)]
  assert sols[1].finish_reason == "found_error" and sols[2].steps[-1].rating is None
  assert [p.id for p in prm800k.load(DATA / "prm800k", "test")] == ["phase2_test.jsonl:1"]


# ----------------------------------------------------------------------------- malformed rows


def _jsonl(tmp_path, name, rows):
  path = tmp_path / name
  path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
  return path


GOOD_MATH500 = {"problem": "p", "solution": "s", "answer": "1", "subject": "Algebra", "level": 1,
                "unique_id": "test/algebra/1.json"}


@pytest.mark.parametrize("load, name, rows, where", [
    (math500.load, "test.jsonl", [GOOD_MATH500, {**GOOD_MATH500, "unique_id": "u2", "answer": None}],
     r"test.jsonl:2: field 'answer': missing"),
    (math500.load, "test.jsonl", [GOOD_MATH500, {**GOOD_MATH500, "unique_id": "u2", "level": "5"}],
     r"test.jsonl:2: field 'level': expected int"),
    (math500.load, "test.jsonl", [GOOD_MATH500, GOOD_MATH500], r"test.jsonl:2: field 'unique_id': .* repeats line 1"),
    (math500.load, "test.jsonl", [GOOD_MATH500, "{not json"], r"test.jsonl:2: not valid JSON"),
    (gsm8k.load, "test.jsonl", [{"question": "q", "answer": "no final line"}], r"test.jsonl:1: field 'answer': no final"),
    (gsm8k.load, "test.jsonl", [{"question": "q", "answer": "x\n#### 3"}, {"answer": "#### 2"}],
     r"test.jsonl:2: field 'question': missing"),
    (aime2025.load, "aime2025-I.jsonl", [{"question": "q", "answer": ""}], r"aime2025-I.jsonl:1: field 'answer': empty"),
])
def test_malformed_jsonl_rows_name_file_line_and_field(tmp_path, load, name, rows, where):
  path = _jsonl(tmp_path, name, rows)
  with pytest.raises(DataFormatError, match=where):
    load(path, "test")


def _prm_row(steps, answer="5"):
  return {"question": {"problem": "q", "ground_truth_answer": answer}, "label": {"steps": steps}}


@pytest.mark.parametrize("row, where", [
    (_prm_row([{"completions": [{"text": "a", "rating": 2}], "chosen_completion": 0}]),
     r"field 'label.steps\[0\].completions\[0\].rating': expected -1, 0, 1 or null, got 2"),
    (_prm_row([{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 0},
               {"completions": [{"text": "b", "rating": 1}], "chosen_completion": 3}]),
     r"field 'label.steps\[1\].chosen_completion': 3 is not an index"),
    (_prm_row([{"completions": [{"rating": 1}], "chosen_completion": 0}]),
     r"field 'label.steps\[0\].completions\[0\].text'"),
    (_prm_row([], answer=None), r"field 'question.ground_truth_answer': missing"),
    ({"question": {"problem": "q", "ground_truth_answer": "1"}}, r"field 'label.steps': missing"),
])
def test_malformed_prm800k_rows(tmp_path, row, where):
  good = _prm_row([{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 0}])
  path = _jsonl(tmp_path, "phase2_test.jsonl", [good, row])
  with pytest.raises(DataFormatError, match=rf"phase2_test.jsonl:2: {where}"):
    prm800k.labelled_solutions(path, "test")


def test_malformed_math_files_and_parquet(tmp_path):
  bad = tmp_path / "test" / "algebra" / "1.json"
  bad.parent.mkdir(parents=True)
  bad.write_text(json.dumps({"problem": "p", "level": "Level 2", "type": "Algebra", "solution": r"\boxed{\frac{1}{2}"}))
  with pytest.raises(DataFormatError, match=r"test/algebra/1.json: field 'solution': no \\boxed"):
    hendrycks_math.load(tmp_path, "test")
  bad.write_text(json.dumps({"problem": "p", "level": "hard", "type": "Algebra", "solution": r"\boxed{1}"}))
  with pytest.raises(DataFormatError, match=r"1.json: field 'level': expected 'Level N'"):
    hendrycks_math.load(tmp_path, "test")
  import pyarrow as pa
  import pyarrow.parquet as pq
  table = pa.table({"id": [1, 2], "problem": ["a", "b"], "solution": ["", ""], "answer": ["3", None],
                    "url": ["", ""], "year": ["2024", "2024"]})
  pq.write_table(table, tmp_path / "aime.parquet")
  with pytest.raises(DataFormatError, match=r"aime.parquet:2: field 'answer': missing"):
    aime2024.load(tmp_path / "aime.parquet", "test")
  (tmp_path / "junk.parquet").write_text("not parquet")
  with pytest.raises(DataFormatError, match=r"junk.parquet: not a parquet file"):
    aime2024.load(tmp_path / "junk.parquet", "test")


def test_missing_files_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="test.jsonl missing"):
    math500.load(tmp_path, "test")
  with pytest.raises(FileNotFoundError, match=r"no file matches .*phase\*_train.jsonl"):
    prm800k.load(tmp_path, "train")


# ----------------------------------------------------------------------------- registry and config


def test_registry_builds_each_benchmark_with_its_grader_and_steps():
  for name, path in (("math500", "math500"), ("math", "math"), ("gsm8k", "gsm8k"), ("aime2024", "aime2024"),
                     ("aime2025", "aime2025"), ("prm800k", "prm800k")):
    task = _task(name, path)
    assert isinstance(task, Task) and task.name == name and task.step_format == PARAGRAPH_STEPS
    split = "train" if name == "prm800k" else "test"
    assert task.problems(split, limit=1)[0].answer
  task = _task("gsm8k", "gsm8k", grader="exact", step_delimiter="\n")
  assert task.step_format == LINE_STEPS and task.grader.inner == registry.get_grader("exact")


@pytest.mark.parametrize("fields, message", [
    ({"name": "math-500"}, r"task.name='math-500' \(did you mean 'math500'\?\)"),
    ({"name": "math500"}, r"task.path: the math500 task reads local files"),
    ({"name": "gsm8k", "path": "x", "prompt": "zero_shot"}, r"task.prompt='zero_shot'"),
    ({"name": "gsm8k", "path": "x", "grader": "sympy"}, r"task.grader='sympy'"),
    ({"name": "arith", "path": "x"}, r"task.path='x': the arith task generates"),
    ({"name": "arith", "step_delimiter": "\n\n"}, r"one step per line"),
])
def test_task_spec_errors_name_the_field(fields, message):
  with pytest.raises(ValueError, match=message):
    registry.TaskSpec(**fields)


def test_benchmark_grader_reads_the_answer_not_a_few_shot_continuation():
  task = _task("math500", "math500")
  text = "So $x = \\boxed{12}$." + prompts.FEW_SHOT_SEPARATOR + "Solve $y$.\n\nSolution:\n$y = \\boxed{7}$."
  assert task.grader.is_correct(text, "12") and not task.grader.is_correct(text, "7")
  assert task.grader.is_correct("The value is $\\boxed{0.5}$.", r"\frac{1}{2}")  # math_verify equivalence


# ----------------------------------------------------------------------------- prompts


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
  return load_any_tokenizer(chat_fixtures.llama3_dir(tmp_path_factory.mktemp("llama3")))


def test_chat_prompt_asks_for_the_delimiter_and_boxed_and_feeds_one_bos(llama3):
  task = _task("math500", "math500")
  problem = task.problems("test")[0]
  text = task.prompt(problem, llama3)
  assert problem.question in text and 'Separate the steps with a blank line ("\\n\\n")' in text
  assert "Put your final answer within \\boxed{}." in text
  messages = [{"role": "user", "content": f"{problem.question}\n\n{prompts.instruction(PARAGRAPH_STEPS)}"}]
  # prompt_ids puts back the BOS the template wrote: the ids are exactly the template's, BOS once.
  assert llama3.prompt_ids(text) == llama3.encode_chat(messages)
  assert llama3.prompt_ids(text).count(llama3.bos_id) == 1
  line = _task("math500", "math500", step_delimiter="\n").prompt(problem, llama3)
  assert "Write each step on its own line." in line and "blank line" not in line


def test_few_shot_prompt_for_a_base_model_keeps_the_delimiter(llama3):
  sp = load_tokenizer()  # no chat template: "auto" is few-shot
  task = _task("gsm8k", "gsm8k")
  problem = task.problems("test")[0]
  text = task.prompt(problem, sp)
  assert text.startswith("Problem:\n") and text.endswith(f"Problem:\n{problem.question}\n\nSolution:\n")
  q, steps = fewshot.EXEMPLARS[0]
  assert f"{q}\n\nSolution:\n{steps[0]}\n\n{steps[1]}" in text  # exemplar steps joined by "\n\n"
  lined = _task("gsm8k", "gsm8k", step_delimiter="\n").prompt(problem, sp)
  assert f"{q}\n\nSolution:\n{steps[0]}\n{steps[1]}" in lined
  forced = _task("gsm8k", "gsm8k", prompt="few_shot").prompt(problem, llama3)
  assert forced == text  # a chat model can be prompted few-shot on request
  with pytest.raises(ValueError, match="no chat template"):
    _task("gsm8k", "gsm8k", prompt="chat").prompt(problem, sp)


# ----------------------------------------------------------------------------- the synthetic task


def test_arith_through_the_task_interface_is_unchanged(tmp_path):
  sizes = {"train": 30, "validation": 5, "test": 5}
  generator = synthetic.TaskConfig(seed=3)
  spec = registry.TaskSpec(train_size=30, validation_size=5, test_size=5)
  task = registry.make_task(spec, str(tmp_path), generator)
  tok = load_tokenizer()
  assert task.grader == registry.get_grader("exact") and task.step_format == LINE_STEPS
  expected = synthetic.generate_splits(generator, sizes)
  for split in sizes:
    got = task.problems(split)
    assert [p.id for p in got] == [p.id for p in expected[split]]
    assert [task.prompt(p, tok) for p in got] == [synthetic.prompt_text(p) for p in expected[split]]
    assert [(p.answer, p.solution) for p in got] == [(p.answer, p.solution) for p in expected[split]]
    assert [p.metadata for p in got] == [{**p.metadata, "source": "arith"} for p in expected[split]]
  assert len(task.problems("test", limit=2)) == 2


# ----------------------------------------------------------------------------- records


def test_sample_records_keep_prompt_metadata_and_the_tasks_steps(monkeypatch, llama3):
  from ttc_jax.decode import generate as gen_module
  from ttc_jax.decode import solutions
  seen = {}

  def fake_generate(model, params, tokenizer, prompts_, rng, *, num_samples, cfg, batch_size, step_format, shared_prefix):
    seen.update(prompts=prompts_, step_format=step_format, shared_prefix=shared_prefix)
    text = "We have $3 \\cdot 4$.\n\nSo it is $\\boxed{12}$."
    return [[gen_module.Generation(text=text, num_tokens=9, stop_reason=1)] * num_samples for _ in prompts_]

  monkeypatch.setattr(solutions, "generate", fake_generate)
  task = _task("math500", "math500")
  problems = task.problems("test")[1:2]
  (record,) = solutions.sample_solutions(None, None, llama3, task, problems, None, num_samples=2, cfg=None,
                                         batch_size=1)
  assert seen["shared_prefix"] is True  # sampling.shared_prefix's default reaches the sampler.
  assert seen["step_format"] == PARAGRAPH_STEPS and seen["prompts"] == [task.prompt(problems[0], llama3)]
  assert record["prompt"] == seen["prompts"][0] and record["problem_id"] == "test/prealgebra/7.json"
  assert record["metadata"] == {"source": "math500", "level": 2, "subject": "Prealgebra"}
  assert "num_steps" not in record
  s = record["samples"][0]
  assert s["steps"] == ["We have $3 \\cdot 4$.", "So it is $\\boxed{12}$."] and s["correct"] and s["extracted"]
  assert solutions.problem_from_record(record) == dataclasses.replace(problems[0], solution="")
  # A record written before records had metadata still reads back (arith's flat fields).
  old = {"problem_id": "p", "question": "q", "answer": "1", "num_steps": 2, "max_operand": 9, "ops": "+"}
  assert solutions.problem_from_record(old).metadata == {"num_steps": 2, "max_operand": 9, "ops": "+"}

  from ttc_jax.verify.scored_text import record_prompt
  assert record_prompt(record) == record["prompt"]  # verifiers and rollouts read the prompt the policy saw
  assert record_prompt(old) == "Question: q\nSolution:\n"


def test_a_job_grader_field_names_its_new_place(tmp_path):
  from ttc_jax.jobs import sample_solutions
  from ttc_jax.testing.tiny import load_config_module
  c = load_config_module("samples").get_config("smoke")
  c.sampling.grader = "math_verify"
  with pytest.raises(ValueError, match=r"sampling.grader moved to task.grader"):
    sample_solutions.run(c, str(tmp_path))
