"""Chat templates rendered the way `transformers` renders them, with a fixed date.

transformers compiles a template in a sandboxed jinja2 environment with trim_blocks,
lstrip_blocks and loop controls, a `tojson` filter that does not HTML-escape, and the
globals `raise_exception` and `strftime_now`; special tokens (bos_token, eos_token, ...)
are passed as variables next to `messages` and `add_generation_prompt`. This module does
the same with one change: `strftime_now` reads a fixed date (Llama 3.2's template writes
"Today Date: ..." from it), so a prompt is the same bytes on every day it is built.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Mapping, Sequence

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The date Llama 3.1's template falls back to; any fixed date keeps prompts byte-stable.
DEFAULT_DATE = datetime.datetime(2024, 7, 26)


class _GenerationTag(jinja2.ext.Extension):
  """`{% generation %}...{% endgeneration %}` renders its body (transformers uses it only to
  mark assistant spans for masks; templates with it must still render)."""
  tags = {"generation"}

  def parse(self, parser):
    lineno = next(parser.stream).lineno
    body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
    return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

  def _body(self, caller):
    return caller()


def _raise_exception(message):
  raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
  # jinja's own tojson HTML-escapes ("<" -> "\u003c"); templates expect plain JSON.
  return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@functools.lru_cache(maxsize=16)
def _compile(template: str, date: datetime.datetime) -> jinja2.Template:
  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=[_GenerationTag, jinja2.ext.loopcontrols])
  env.filters["tojson"] = _tojson
  env.globals["raise_exception"] = _raise_exception
  env.globals["strftime_now"] = date.strftime
  return env.from_string(template)


def render_chat(template: str, messages: Sequence[Mapping], *, add_generation_prompt: bool = True,
                special_tokens: Mapping[str, str] | None = None, date: datetime.datetime = DEFAULT_DATE,
                **kwargs) -> str:
  """Renders `messages` ([{"role", "content"}, ...]) with `template`.

  Args:
    special_tokens: {"bos_token": ..., "eos_token": ...} as the template sees them.
    date: what `strftime_now` formats (fixed, so prompts are byte-stable).
    kwargs: more template variables (tools, documents, date_string, ...); they override
      special tokens of the same name, as in transformers.
  """
  variables = {**(special_tokens or {}), **kwargs}
  # transformers always defines `tools` and `documents` (None when not given).
  variables.setdefault("tools", None)
  variables.setdefault("documents", None)
  return _compile(template, date).render(messages=[dict(m) for m in messages],
                                         add_generation_prompt=add_generation_prompt, **variables)
