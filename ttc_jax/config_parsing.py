"""The edge between ml_collections configs and the library's frozen dataclasses.

Library code never sees a ConfigDict. Jobs call `parse_section` for each
section they use and `check_sections` for the top level, so a mistyped or
unknown field fails with its dotted name before anything compiles.
"""
import dataclasses
import difflib
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def _as_dict(section: Any) -> dict[str, Any]:
  if section is None:
    return {}
  if hasattr(section, "to_dict"):
    return section.to_dict()
  if isinstance(section, Mapping):
    return dict(section)
  raise TypeError(f"expected a config section, got {type(section).__name__}")


def _suggest(name: str, valid: list[str]) -> str:
  close = difflib.get_close_matches(name, valid, n=1)
  return f" (did you mean '{close[0]}'?)" if close else ""


def parse_section(cls: type[T], section: Any, prefix: str) -> T:
  """Builds dataclass `cls` from a config section; unknown fields raise naming `prefix.field`."""
  values = _as_dict(section)
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = [k for k in values if k not in fields]
  if unknown:
    valid = sorted(fields)
    details = ", ".join(f"'{prefix}.{k}'{_suggest(k, valid)}" for k in unknown)
    raise ValueError(f"Unknown config field(s) {details}; valid fields of '{prefix}': {', '.join(valid)}")
  hints = typing.get_type_hints(cls)
  kwargs = {}
  for name, value in values.items():
    kwargs[name] = _coerce(value, hints.get(name), f"{prefix}.{name}")
  return cls(**kwargs)


def _coerce(value: Any, hint: Any, name: str) -> Any:
  """Lists become tuples (frozen dataclasses stay hashable); obvious type slips raise."""
  if isinstance(value, list):
    value = tuple(value)
  origin = typing.get_origin(hint)
  if hint in (int, float, bool, str) and value is not None:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
      return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
      raise ValueError(f"Config field '{name}' must be {hint.__name__}, got {value!r}")
  if origin is tuple and not isinstance(value, tuple):
    raise ValueError(f"Config field '{name}' must be a tuple, got {value!r}")
  return value


def check_sections(config: Any, allowed: set[str], job: str) -> None:
  """Top-level keys must be ones the job reads: a stray section is probably a typo."""
  keys = _as_dict(config).keys()
  unknown = [k for k in keys if k not in allowed]
  if unknown:
    valid = sorted(allowed)
    details = ", ".join(f"'{k}'{_suggest(k, valid)}" for k in unknown)
    raise ValueError(f"Unknown top-level config field(s) {details} for job '{job}'; valid: {', '.join(valid)}")


def unknown_override(config: Any, dotted: str) -> str | None:
  """Why `--config.<dotted>` names no field of `config` (one sentence with the dotted name), or None."""
  node, walked = config, []
  for part in dotted.split("."):
    keys = sorted(_as_dict(node)) if _is_section(node) else []
    if part not in keys:
      where = ".".join(walked)
      name = f"{where}.{part}" if where else part
      if not keys:
        return f"Config field '{where}' is a value, not a section, so '{name}' does not exist"
      close = difflib.get_close_matches(part, keys, n=1)
      hint = f" (did you mean '{where + '.' if where else ''}{close[0]}'?)" if close else ""
      return (f"Unknown config field '{name}'{hint}; valid fields of '{where or 'config'}': {', '.join(keys)}")
    node = node[part]
    walked.append(part)
  return None


def _is_section(node: Any) -> bool:
  return hasattr(node, "to_dict") or isinstance(node, Mapping)
