"""Selection over revision chain grids (flat vs hierarchical) and the chain statistics."""
import pytest

from ttc_jax.revise import selection


def test_flat_and_hierarchical_majority_differ():
  # Chain 0 repeats "5"; chains 1 and 2 each settle on "7".
  answers = [["5", "5", "5", "5", "5"], ["7", "1", "7", None, "2"], ["2", "7", "7", "3", "4"]]
  assert selection.flat_majority(answers) == "5"  # 5 x5 beats 7 x4 over the pool
  assert selection.hierarchical(answers) == "7"  # chains pick 5, 7, 7
  assert selection.hierarchical(answers, within="last") == "5"  # last attempts 5, 2, 4: tie -> first seen


def test_flat_and_hierarchical_weighted_differ():
  answers = [["4", "4", "4", "4"], ["6", "1", "1", "1"], ["6", "2", "2", "2"]]
  scores = [[0.5] * 4, [0.9, 0.2, 0.2, 0.2], [0.9, 0.2, 0.2, 0.2]]
  assert selection.flat_weighted(answers, scores) == "4"  # 4: 2.0, 6: 1.8, 1: 0.6, 2: 0.6
  # Within (weighted): 4 (pick score 0.5), 6 (0.9 > 1: 0.6), 6 -> across: 6 with 1.8 vs 4 with 0.5.
  assert selection.hierarchical(answers, scores, within="weighted", across="weighted") == "6"
  assert selection.hierarchical(answers, scores, within="weighted", across="majority") == "6"
  assert selection.hierarchical(answers) == "4"  # majority within: 4, 1, 2 -> tie -> first seen
  assert selection.select("weighted_flat", answers, scores) == "4"
  assert selection.select("weighted_hierarchical", answers, scores) == "6"


def test_hierarchical_weighted_across_uses_the_best_score_of_the_pick():
  answers = [["4", "4", "4", "9"], ["6", "6", "6", "6"]]
  scores = [[0.1, 0.1, 0.8, 0.9], [0.5] * 4]
  assert selection.flat_weighted(answers, scores) == "6"  # 4: 1.0, 9: 0.9, 6: 2.0
  # Majority within: 4 (its best attempt scores 0.8) and 6 (0.5) -> weighted across: 4.
  assert selection.hierarchical(answers, scores, within="majority", across="weighted") == "4"
  assert selection.hierarchical(answers, scores, within="majority", across="majority") == "4"  # tie, first


def test_none_answers_never_win_and_errors():
  assert selection.flat_majority([[None, None], [None]]) is None
  assert selection.hierarchical([[None], [None, None]]) is None
  assert selection.hierarchical([[None, "3"], [None, None]]) == "3"
  assert selection.flat_weighted([[None, "2"]], [[5.0, 0.1]]) == "2"
  with pytest.raises(ValueError, match="needs verifier scores"):
    selection.hierarchical([["1"]], within="weighted")
  with pytest.raises(ValueError, match="within="):
    selection.hierarchical([["1"]], within="best")
  with pytest.raises(ValueError, match="shape"):
    selection.flat_weighted([["1", "2"]], [[0.5]])
  assert selection.methods(False) == ["majority_flat", "majority_hierarchical", "last_majority"]
  assert set(selection.methods(True)) == set(selection.METHODS)


def test_pass_at_step_and_transitions_on_hand_made_chains():
  t, f = True, False
  grids = [[[f, t, t, f], [f, f, t, t]],  # problem 0, two chains
           [[t, f, f, t]]]  # problem 1, one chain
  assert selection.pass_at_step(grids) == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
  rates = selection.transition_rates(grids)
  # Pairs from correct: (t,t)x2 [chain0 1->2, chain1 2->3], (t,f)x2 [chain0 2->3, problem1 0->1] -> 2/4.
  # Pairs from incorrect: (f,t)x3 [chain0 0->1, chain1 1->2, p1 2->3], (f,f)x2 [chain1 0->1, p1 1->2] -> 3/5.
  assert rates == {"correct_to_incorrect": 0.5, "incorrect_to_correct": 0.6, "pairs_from_correct": 4,
                   "pairs_from_incorrect": 5}
  assert selection.transition_rates([[[t]], [[f]]])["correct_to_incorrect"] is None  # no pairs
