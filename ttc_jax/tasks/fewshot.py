"""Worked exemplars of the few-shot prompt for base models (written for this project, MATH style).

Each is (question, steps); the prompt joins the steps with the task's step delimiter, and
the last step ends with the `\\boxed{}` answer, as the zero-shot instruction asks of chat models.
"""

EXEMPLARS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the value of $\\sqrt{36} + 2^3$?",
     ("We have $\\sqrt{36} = 6$ and $2^3 = 8$.",
      "So the value is $6 + 8 = \\boxed{14}$.")),
    ("Solve for $x$: $3x - 7 = 11$.",
     ("Adding 7 to both sides gives $3x = 18$.",
      "Dividing both sides by 3 gives $x = \\boxed{6}$.")),
    ("A bag holds 3 red and 5 blue marbles. One marble is drawn at random. What is the probability that it "
     "is red? Express your answer as a common fraction.",
     ("There are $3 + 5 = 8$ marbles, each equally likely to be drawn.",
      "Three of them are red, so the probability is $\\boxed{\\frac{3}{8}}$.")),
    ("What is the sum of the interior angles of a hexagon, in degrees?",
     ("The interior angles of a polygon with $n$ sides sum to $180(n - 2)$ degrees.",
      "A hexagon has $n = 6$ sides, so the sum is $180 \\cdot 4 = \\boxed{720}$ degrees.")),
)
