"""The last `\\boxed{...}` / `\\fbox{...}` of a LaTeX solution, braces matched (MATH's answer rule)."""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def last_boxed(text: str) -> str | None:
  """Content of the last `\\boxed{...}` or `\\fbox{...}` in `text`, or None.

  Nested braces are kept (`\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`). A few MATH solutions
  write `\\boxed 5$` without braces: the content then runs to the next `$`. None when there is
  no box, or when the last one's braces never close (the last box is the answer; an earlier
  one is not a stand-in).
  """
  matches = list(_BOX.finditer(text))
  if not matches:
    return None
  rest = text[matches[-1].end():]
  stripped = rest.lstrip()
  if not stripped.startswith("{"):
    content = stripped.split("$")[0].strip()
    return content if rest[:1].isspace() and content else None
  start = len(rest) - len(stripped) + 1
  depth = 1
  for i in range(start, len(rest)):
    if rest[i] == "{":
      depth += 1
    elif rest[i] == "}":
      depth -= 1
      if depth == 0:
        return rest[start:i]
  return None
