"""What is wrong with a YAML text, said the same way by every file otelspend reads."""

from __future__ import annotations

import yaml


def yaml_problem(exc: yaml.YAMLError) -> str:
    """``not valid YAML at line L, column C: <problem>``, without the snippet of the line that
    PyYAML quotes in ``str(exc)`` (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"
