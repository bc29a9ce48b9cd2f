"""Graders: answer extraction and correctness on hand-made cases."""
import pytest

from ttc_jax.tasks import grading, synthetic

SOLUTION = "7 + 5 = 12\n12 * 3 = 36\n36 - 4 = 32\nThe answer is 32."


@pytest.mark.parametrize("text, answer", [
    (SOLUTION, "32"),
    ("The answer is 7.", "7"),
    ("The answer is 007.", "7"),  # canonical integer
    ("The answer is 3.\n1 + 1 = 2\nThe answer is 2.", "2"),  # the last line counts
    ("The answer is 5.  \n", "5"),  # trailing spaces tolerated
    ("The answer is 5", None),  # truncated: no period
    ("So The answer is 5.", None),  # must be a whole line
    ("The answer is five.", None),
    ("The answer is 5.5.", None),
    ("", None),
    ("7 + 5 = 12\n12 * 3 = 36", None),  # no answer line yet
])
def test_exact_extract(text, answer):
  assert grading.ExactAnswerGrader().extract_answer(text) == answer


def test_exact_is_correct():
  g = grading.ExactAnswerGrader()
  assert g.is_correct(SOLUTION, "32")
  assert g.is_correct(SOLUTION, " 32 ")
  assert not g.is_correct(SOLUTION, "33")
  assert not g.is_correct("The answer is 32", "32")
  assert not g.is_correct("garbage \x00 \\boxed{", "32")
  assert not g.is_correct(SOLUTION, "not a number")


def test_exact_grades_every_reference_solution():
  g = grading.ExactAnswerGrader()
  for p in synthetic.generate_splits(synthetic.TaskConfig(), {"test": 300})["test"]:
    assert g.extract_answer(p.solution) == p.answer
    assert g.is_correct(p.solution, p.answer)


@pytest.mark.parametrize("text, reference, correct", [
    (r"so $x = \boxed{\frac{1}{2}}$", r"\frac{1}{2}", True),
    (r"The answer is $\boxed{0.5}$", r"\frac12", True),
    (r"Therefore $\boxed{2\sqrt{3}}$.", r"\sqrt{12}", True),
    (r"$\boxed{3}$", "4", False),
    ("no answer here", "4", False),
    ("", "4", False),
    (r"$\boxed{\frac{1}{2", "1/2", False),  # unbalanced: wrong, no exception
])
def test_math_verify(text, reference, correct):
  pytest.importorskip("math_verify")
  assert grading.MathVerifyGrader().is_correct(text, reference) is correct


def test_math_verify_extract():
  pytest.importorskip("math_verify")
  g = grading.MathVerifyGrader()
  assert g.extract_answer(r"thus $\boxed{\frac{1}{2}}$") == r"\frac{1}{2}"
  assert g.extract_answer("no math at all") is None


def test_get_grader():
  assert isinstance(grading.get_grader("exact"), grading.ExactAnswerGrader)
  assert isinstance(grading.get_grader("math_verify"), grading.MathVerifyGrader)
  assert isinstance(grading.get_grader("exact"), grading.Grader)
  assert isinstance(grading.get_grader("countdown"), grading.Grader)
  with pytest.raises(ValueError, match=r"valid names: \['countdown', 'exact', 'math_verify'\]"):
    grading.get_grader("regex")
