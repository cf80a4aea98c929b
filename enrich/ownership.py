"""Ownership rules: who owns a run's spend.

YAML, validated whole at load (errors name file, rule and field), reloadable::

    version: 1
    rules:
      - name: search-team
        match:                       # all must match; glob by default, "re:" regex, exact without wildcards
          service.name: "search-*"
          environment: prod
        set: {team: search, cost_center: CC-1001, product: assistant, owner: ana@example.com}
      - name: shared-key-acme
        match: {ingest_token: acme-prod}   # the OTLP bearer token's name
        set: {tenant: acme, team: platform}
        override: true               # replace values already on the run

Match keys are any resource or root-span attribute (``service.name``, ``k8s.namespace.name``,
...), a business key (``tenant``, ``workflow_type``, ``environment``, ...), ``agent`` or
``ingest_token``. Rules apply in order; for each field the first matching rule that sets
it wins. A value already on the run (span or resource attribute) wins unless the rule
says ``override: true``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from otelspend.enrich.runs import OWNED_FIELDS


class OwnershipError(ValueError):
    """The ownership rules file is unreadable or invalid (names the file, rule and field)."""

    pass


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    match: dict[str, str] = Field(min_length=1)
    set: dict[str, str] = Field(min_length=1)
    override: bool = False

    @field_validator("set")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(OWNED_FIELDS))
        if unknown:
            raise ValueError(f"cannot set {', '.join(unknown)}; settable fields: {', '.join(OWNED_FIELDS)}")
        return value

    @field_validator("match")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            if isinstance(pattern, str) and pattern.startswith("re:"):
                try:
                    re.compile(pattern[3:])
                except re.error as exc:
                    raise ValueError(f"{key}: invalid regular expression: {exc}") from None
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    rules: list[_Rule]


@dataclass(frozen=True)
class Rule:
    """One compiled ownership rule: attribute patterns to match and the fields it sets."""

    name: str
    match: tuple[tuple[str, re.Pattern[str]], ...]
    set: Mapping[str, str]
    override: bool

    def matches(self, context: Mapping[str, str]) -> bool:
        """Whether every pattern fully matches its key's value in ``context`` (a missing key is "")."""
        return all(pattern.fullmatch(context.get(key, "")) for key, pattern in self.match)


class OwnershipRules:
    """Callable: match context -> final values of every ownable field."""

    def __init__(self, rules: tuple[Rule, ...] = (), path: Path | None = None) -> None:
        self.rules = rules
        self.path = path

    def __call__(self, context: Mapping[str, str]) -> dict[str, str]:
        """The final value of every ownable field for this match context (first matching rule per field)."""
        result = {key: context.get(key, "") for key in OWNED_FIELDS}
        decided: set[str] = set()
        for rule in self.rules:
            if not rule.matches(context):
                continue
            for key, value in rule.set.items():
                if key in decided:
                    continue
                if rule.override or not result[key]:
                    result[key] = value
                decided.add(key)
        return result


def load_ownership(path: str | Path) -> OwnershipRules:
    """Read and validate an ownership rules file; OwnershipError names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise OwnershipError(f"ownership rules {path}: cannot read ({exc.strerror})") from None
    return parse_ownership(text, path)


def parse_ownership(text: str, path: Path | None = None) -> OwnershipRules:
    """Validate ownership rules YAML (``path`` only names the source in errors)."""
    label = str(path) if path else "<ownership>"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OwnershipError(f"ownership rules {label}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise OwnershipError(f"ownership rules {label}: expected a mapping with a 'rules' list")
    try:
        parsed = _File.model_validate(_stringify_match(doc))
    except ValidationError as exc:
        raise OwnershipError(
            f"ownership rules {label}: " + "; ".join(_describe(doc, e) for e in exc.errors())
        ) from None
    rules = tuple(
        Rule(r.name, tuple((k, _pattern(v)) for k, v in r.match.items()), dict(r.set), r.override) for r in parsed.rules
    )
    return OwnershipRules(rules, path)


def _stringify_match(doc: dict[str, Any]) -> dict[str, Any]:
    rules = doc.get("rules")
    if not isinstance(rules, list):
        return doc
    fixed = []
    for rule in rules:
        if isinstance(rule, dict) and isinstance(rule.get("match"), dict):
            rule = {
                **rule,
                "match": {
                    str(k): (str(v) if isinstance(v, int | float | bool) else v) for k, v in rule["match"].items()
                },
            }
        fixed.append(rule)
    return {**doc, "rules": fixed}


def _pattern(text: str) -> re.Pattern[str]:
    if text.startswith("re:"):
        return re.compile(text[3:])
    return re.compile(fnmatch.translate(text))


def _describe(doc: Mapping[str, Any], error: Mapping[str, Any]) -> str:
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = doc.get("rules") or []
        raw = rules[loc[1]] if loc[1] < len(rules) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"rule {loc[1] + 1}" + (f" ({name!r})" if name else "") + ", "
        loc = loc[2:]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{where}{'.'.join(str(p) for p in loc) or 'top level'}: {message}"
