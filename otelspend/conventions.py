"""Load and compile the convention table (``conventions.yaml``) into lookups for the normaliser.

The YAML maps each canonical field to an ordered list of attribute keys. Compiling turns
it around: attribute key -> the record columns it may fill and with what priority, so the
normaliser does one dict lookup per attribute and no per-library code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml

from otelspend.record import COLUMN_NAMES

ValueKind = Literal["str", "tokens", "count", "float", "bool"]

# Fields whose YAML type is "int" are token counts unless listed here (lenient counts).
_COUNT_FIELDS = frozenset({"resend_count", "retry_count"})
_STRICT_MISSING = object()


@dataclass(frozen=True, slots=True)
class KeyRule:
    """One attribute key feeding one record column."""

    column: int
    priority: int
    kind: ValueKind
    values: Mapping[str, str | None] | None = None
    """Value translation (lower-cased lookup); ``None`` result drops the value."""
    passthrough: bool = True
    """Whether values missing from ``values`` are kept (lower-cased) or dropped."""


@dataclass(frozen=True)
class ConventionTable:
    """The compiled convention table: attribute key -> rules, plus what the normaliser and
    rate-card tiers need beside them (content keys, JSON documents, token-count quirks per
    library, the operation names of each span class).
    """

    rules: Mapping[str, tuple[KeyRule, ...]]
    business_columns: tuple[int, ...]
    content_keys: frozenset[str]
    content_prefixes: tuple[str, ...]
    content_events: frozenset[str]
    json_fields: Mapping[str, tuple[tuple[int, tuple[tuple[str, ...], ...]], ...]]
    input_excludes_cache_scopes: frozenset[str]
    output_corrections: Mapping[str, tuple[tuple[str, int], ...]]
    inference_evidence: Mapping[str, tuple[frozenset[str], frozenset[str]]]
    """Scope -> (operations, attribute keys): an inference span of that scope and operation
    must carry one of the keys (unless it has usage or failed) to be a provider call."""
    inference_operations: frozenset[str]
    agent_operations: frozenset[str]
    tool_operations: frozenset[str]
    workflow_operations: frozenset[str]
    field_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Canonical field -> its keys in priority order (for docs and the 'works with' table)."""
    retrieval: RetrievalRule = field(default_factory=lambda: RetrievalRule())
    """Which spans are retrieval queries (issue 14)."""
    cpu_seconds_keys: tuple[str, ...] = ()
    """Attribute keys holding the CPU-seconds a span reports, in priority order."""
    match_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Short names a rate-card ``match:`` may use -> attribute keys (first present wins)."""


@dataclass(frozen=True)
class RetrievalRule:
    """A span is a retrieval query when its operation is one of ``operations``, or it queried one
    of ``db_systems`` with an operation not in ``not_db_operations``."""

    operations: frozenset[str] = frozenset()
    db_systems: frozenset[str] = frozenset()
    not_db_operations: frozenset[str] = frozenset()

    def matches(self, operation: str, db_system: str, db_operation: str) -> bool:
        """Whether a span with these canonical values is a retrieval query."""
        if operation in self.operations:
            return True
        return db_system in self.db_systems and db_operation.lower() not in self.not_db_operations


class ConventionError(ValueError):
    """The convention table is malformed (names the field and entry)."""


def load_conventions(text: str | None = None, extra_keys: Mapping[str, Sequence[str]] | None = None) -> ConventionTable:
    """Compile the packaged table (or ``text``); ``extra_keys`` adds keys (highest priority)
    to business fields, e.g. ``{"tenant": ["acme.tenant"]}``."""
    if text is None:
        text = resources.files("otelspend").joinpath("conventions.yaml").read_text()
    doc = yaml.safe_load(text)
    value_maps: dict[str, dict[str, Any]] = doc.get("value_maps", {})
    rules: dict[str, list[KeyRule]] = {}
    business: list[int] = []
    field_keys: dict[str, tuple[str, ...]] = {}

    for name, spec in doc["fields"].items():
        if name not in COLUMN_NAMES:
            raise ConventionError(f"fields.{name}: not a record column")
        column = COLUMN_NAMES.index(name)
        kind = _kind(name, spec.get("type"))
        if spec.get("business"):
            business.append(column)
        entries = list(spec["keys"])
        if extra_keys and name in extra_keys:
            entries = list(extra_keys[name]) + entries
        default_map = spec.get("values")
        keys: list[str] = []
        for priority, entry in enumerate(entries):
            key, map_name = (entry, default_map) if isinstance(entry, str) else (entry["key"], entry.get("values"))
            values, passthrough = None, True
            if map_name is not None:
                if map_name not in value_maps:
                    raise ConventionError(f"fields.{name}: unknown value map {map_name!r}")
                raw_map = value_maps[map_name]
                passthrough = "*" not in raw_map
                values = {str(k).lower(): v for k, v in raw_map.items() if k != "*"}
            rules.setdefault(key, []).append(KeyRule(column, priority, kind, values, passthrough))
            keys.append(key)
        field_keys[name] = tuple(keys)

    json_fields = {
        attr: tuple((COLUMN_NAMES.index(col), tuple(tuple(path) for path in paths)) for col, paths in targets.items())
        for attr, targets in doc.get("json_fields", {}).items()
    }
    content = doc.get("content", {})
    corrections: dict[str, list[tuple[str, int]]] = {}
    for item in doc.get("output_token_corrections", []):
        corrections.setdefault(item["scope"], []).append((item["when_attribute"], int(item["delta"])))
    return ConventionTable(
        rules={key: tuple(items) for key, items in rules.items()},
        business_columns=tuple(business),
        content_keys=frozenset(content.get("keys", ())),
        content_prefixes=tuple(content.get("prefixes", ())),
        content_events=frozenset(content.get("event_names", ())),
        json_fields=json_fields,
        input_excludes_cache_scopes=frozenset(i["scope"] for i in doc.get("input_excludes_cache", [])),
        output_corrections={scope: tuple(items) for scope, items in corrections.items()},
        inference_evidence={
            item["scope"]: (frozenset(item["operations"]), frozenset(item["any_of"]))
            for item in doc.get("inference_evidence", [])
        },
        inference_operations=frozenset(doc.get("inference_operations", ())),
        agent_operations=frozenset(doc.get("agent_operations", ())),
        tool_operations=frozenset(doc.get("tool_operations", ())),
        workflow_operations=frozenset(doc.get("workflow_operations", ())),
        field_keys=field_keys,
        retrieval=RetrievalRule(
            frozenset(doc.get("retrieval", {}).get("operations", ())),
            frozenset(str(v).lower() for v in doc.get("retrieval", {}).get("db_systems", ())),
            frozenset(str(v).lower() for v in doc.get("retrieval", {}).get("not_db_operations", ())),
        ),
        cpu_seconds_keys=tuple(doc.get("cost_signals", {}).get("cpu_seconds", ())),
        match_aliases={
            name: tuple(keys) for name, keys in doc.get("cost_signals", {}).get("match_aliases", {}).items()
        },
    )


def _kind(name: str, declared: str | None) -> ValueKind:
    if declared == "int":
        return "count" if name in _COUNT_FIELDS else "tokens"
    if declared in ("str", "float", "bool"):
        return declared  # type: ignore[return-value]
    raise ConventionError(f"fields.{name}: type must be str, int, float or bool (got {declared!r})")
