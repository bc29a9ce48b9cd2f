"""Monte Carlo step labels: which prefixes are rolled out, how labels and compute are counted."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from ttc_jax.decode.sampling import SamplingConfig
from ttc_jax.models import Transformer
from ttc_jax.tasks.tokenizer import load_tokenizer
from ttc_jax.testing.tiny import tiny_model_config
from ttc_jax.verify import rollouts


class _Grader:
  """Marks a rollout correct iff the answer-free prefix it started from contains `marker`."""

  def __init__(self, marker):
    self.marker = marker
    self.seen = []

  def extract_answer(self, text):
    return None

  def is_correct(self, text, reference):
    self.seen.append(text)
    return self.marker in text


def _record(steps_per_sample):
  return {"problem_id": "p0", "question": "Start with 2. Add 3. What is the result?", "answer": "5", "num_steps": 1,
          "max_operand": 9, "ops": "+",
          "samples": [{"text": "\n".join(steps), "steps": steps, "correct": correct}
                      for steps, correct in steps_per_sample]}


@pytest.fixture(scope="module")
def policy():
  tokenizer = load_tokenizer()
  cfg = tiny_model_config(vocab_size=tokenizer.vocab_size)
  model = Transformer(cfg)
  params = nn.unbox(model.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  return model, params, tokenizer


def test_prefix_prompt_keeps_generated_newlines():
  assert rollouts.prefix_prompt("Q\nSolution:\n", ["a", "b", "c"], 2) == "Q\nSolution:\na\nb\n"
  assert rollouts.prefix_prompt("Q\nSolution:\n", ["a"], 0) == "Q\nSolution:\n"
  assert rollouts.prefix_prompt("P:\n", ["a", "b", "c"], 2, "\n\n") == "P:\na\n\nb\n\n"  # the task's delimiter


def test_labels_fraction_of_correct_rollouts_per_prefix(policy):
  model, params, tokenizer = policy
  records = [_record([(["2 + 3 = 5", "The answer is 5."], True),
                      (["2 + 3 = 6", "6 + 0 = 6", "The answer is 6."], False),
                      ([], False)])]
  grader = _Grader(marker="= 5\n")  # Only rollouts after the right first step count as correct.
  out = rollouts.label_records(model, params, tokenizer, grader, records, jax.random.key(1), rollouts=3,
                               cfg=SamplingConfig(temperature=1.0, max_new_tokens=8), batch_size=2)
  s_right, s_wrong, s_empty = out[0]["samples"]
  assert s_right["step_labels"] == [1.0, 1.0]  # prefix 1 rolled out (3/3 correct), last = own correctness
  assert s_wrong["step_labels"] == [0.0, 0.0, 0.0]
  assert s_empty["step_labels"] == []
  # One rollout batch of 3 per non-final prefix: 1 + 2 prefixes.
  assert len(grader.seen) == 3 * 3
  # The grader sees the solution (the step prefix, then the rollout), never the prompt.
  assert sorted({t.split("\n")[0] for t in grader.seen}) == ["2 + 3 = 5", "2 + 3 = 6"]
  assert s_right["rollouts_per_step"] == 3
  assert 0 < s_right["rollout_tokens"] <= 3 * 8 and s_empty["rollout_tokens"] == 0
  assert records[0]["samples"][0].get("step_labels") is None  # inputs are not mutated


def test_labels_are_deterministic_for_a_key(policy):
  model, params, tokenizer = policy
  records = [_record([(["1 + 1 = 2", "2 + 2 = 4", "The answer is 4."], False)])]
  run = lambda: rollouts.label_records(model, params, tokenizer, _Grader("4"), records, jax.random.key(7),
                                       rollouts=4, cfg=SamplingConfig(max_new_tokens=6), batch_size=4)
  assert run() == run()
