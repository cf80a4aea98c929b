"""Problems in a controls file or request, each naming where, the field, the value and what was expected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ControlsConfigError(ValueError):
    """A budgets or policy file, or a budget sent over the API, is invalid; ``problems`` lists each."""

    def __init__(self, label: str, problems: Sequence[Problem]) -> None:
        self.label = label
        self.problems = list(problems)
        super().__init__(f"{label}: " + "; ".join(p.text() for p in self.problems))


@dataclass(frozen=True)
class Problem:
    """One invalid value: ``where`` (an item of a list), ``field``, ``value`` and the expectation."""

    where: str
    field: str
    value: Any
    message: str
    has_value: bool = True

    def text(self) -> str:
        """``budget 2 (id 'acme'), period = 'fortnight': expected day, week or month``."""
        head = ", ".join(part for part in (self.where, self.field) if part) or "top level"
        shown = f" = {self.value!r}" if self.has_value else ""
        return f"{head}{shown}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The API's error item (FastAPI's shape plus the value)."""
        item: dict[str, Any] = {"loc": ["body", *self.field.split(".")] if self.field else ["body"], "msg": self.text()}
        item["type"] = "value_error"
        if self.has_value:
            item["input"] = self.value
        return item


def problems_of(exc: ValidationError, doc: Any, list_key: str | None, item_word: str) -> list[Problem]:
    """Pydantic errors as problems; items of ``doc[list_key]`` are named ``<item_word> N (id '...')``."""
    items = doc.get(list_key) if list_key and isinstance(doc, Mapping) else None
    found = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if list_key and len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
            index = loc[1]
            raw = items[index] if isinstance(items, list) and index < len(items) else None
            item_id = raw.get("id") if isinstance(raw, Mapping) else None
            where = f"{item_word} {index + 1}" + (f" (id {item_id!r})" if item_id else "")
            loc = loc[2:]
        field = ".".join(str(part) for part in loc if not str(part).startswith(("function-", "union[")))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        has_value = error["type"] != "missing" and not isinstance(error.get("input"), dict | list)
        found.append(Problem(where, field, error.get("input"), message, has_value))
    return found


def read_yaml(path: Path, label: str) -> Any:
    """Parse a YAML file; ControlsConfigError naming the line on a syntax error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ControlsConfigError(label, [Problem("", "", None, f"cannot read ({exc.strerror})", False)]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ControlsConfigError(label, [Problem("", "", None, f"not valid YAML{where}: {problem}", False)]) from None
