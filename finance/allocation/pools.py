"""The cost-pools file: shared costs, who shares them, by which signal and method.

One YAML file (setting ``cost_pools``), validated whole at load and hot-reloaded like the
rate card (``otelspend.reloadable``): an invalid edit keeps the previous rules in force and
says why. Every error names the file, the pool (position and id) and the field::

    version: 1
    pools:
      - id: vector-db
        owner: platform-team
        review: 2027-03-01
        description: Managed vector database, shared by every tenant
        amount_usd: "300.00"        # fixed USD per period; or `billed:` (imported bill lines)
        period: day                 # day | month (UTC)
        scope: {}                   # the runs that share it: a filter on any dimension
        signal: runs                # what each consumer's share is proportional to
        method: proportional        # proportional | even | fixed (with coefficients)
        by: tenant                  # the dimension at which shares are computed
    units:                          # optional: units of value for GET /v1/unit-costs
      - id: resolution
        description: A support ticket resolved
        scope: {workflow_type: support_triage}
        count: {outcome: accepted}

A pool's **rule version** is a hash of the fields that decide its allocation (amount, period,
bill filter, scope, signal, method, by, coefficients, effective dates): editing the owner,
description or review date restates nothing; editing any of those restates every period the
allocator keeps in step, by exact deltas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from otelspend.clickhouse.queries.allocation import BILL_COLUMNS
from otelspend.clickhouse.queries.vocabulary import DIMENSIONS
from otelspend.money import usd_to_femto
from otelspend.yamltext import yaml_problem

Signal = Literal[
    "runs",
    "spans",
    "calls",
    "tokens",
    "input_tokens",
    "output_tokens",
    "retrieval_queries",
    "gpu_seconds",
    "duration",
    "direct_cost",
]
SIGNALS: dict[str, tuple[str, str]] = {
    "runs": ("Run", "runs (each run in scope counts 1)"),
    "spans": ("Span", "spans of the run"),
    "calls": ("Call", "model calls, each counted once"),
    "tokens": ("Token", "input + output tokens of the counted calls"),
    "input_tokens": ("Token", "input tokens (cache reads and writes included)"),
    "output_tokens": ("Token", "output tokens (reasoning included)"),
    "retrieval_queries": ("Query", "retrieval and vector-database queries, each counted once"),
    "gpu_seconds": ("GPU-second", "GPU-seconds of the run's calls and compute spans"),
    "duration": ("Millisecond", "the run's duration (root span)"),
    "direct_cost": ("USD", "the run's calculated direct cost (cost_usd)"),
}
"""Signal -> (FOCUS UsageUnit, meaning)."""
Method = Literal["proportional", "even", "fixed"]
Period = Literal["day", "month"]

BY_LEVELS = frozenset({"run", "raw"})
"""A share is computed per value of a run attribute: a run has one tenant, but many models."""
NOT_IN_SCOPE = frozenset({"pool"})
ALLOCATING_FIELDS = frozenset(
    {
        "amount_usd",
        "period",
        "billed",
        "scope",
        "signal",
        "method",
        "by",
        "coefficients",
        "effective_from",
        "effective_to",
        "cost_kind",
    }
)
"""Fields in a pool's rule version: changing one of these restates its allocations."""
ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"


class PoolsError(ValueError):
    """The cost-pools file is invalid; the message names file, pool and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_values(value: Any) -> Any:
    """A filter value: one value or a non-empty list, numbers taken as their text (a tenant 42)."""
    if isinstance(value, bool):
        raise ValueError("expected a text value or a list of them")
    if isinstance(value, int | float | str):
        return (str(value),)
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list matches nothing; omit the key to match everything")
        if not all(isinstance(item, int | float | str) and not isinstance(item, bool) for item in value):
            raise ValueError("expected a text value or a list of them")
        return tuple(str(item) for item in value)
    raise ValueError("expected a text value or a list of them")


Filter = dict[str, tuple[str, ...]]


def _filter(value: Any, allowed: Mapping[str, str], what: str) -> Filter:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of {what} to values ({{}} matches everything)")
    out: Filter = {}
    for key, item in value.items():
        if key not in allowed:
            raise ValueError(f"unknown {what} {key!r} (allowed: {', '.join(sorted(allowed))})")
        reason = allowed[key]
        if reason:
            raise ValueError(f"{what} {key!r} {reason}")
        try:
            out[str(key)] = _text_values(item)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return out


def _scope_dimensions() -> dict[str, str]:
    return {name: ("cannot scope a pool" if name in NOT_IN_SCOPE else "") for name in DIMENSIONS}


def _by_dimensions() -> dict[str, str]:
    return {
        name: ("" if d.level in BY_LEVELS else "is call-level: a run has several; use a run dimension")
        for name, d in DIMENSIONS.items()
        if name not in NOT_IN_SCOPE
    }


class Pool(_Strict):
    """One shared cost: how much per period, which runs share it, and how."""

    id: str = Field(min_length=1, max_length=100, pattern=ID_PATTERN)
    owner: str = Field(min_length=1)
    """Who answers for the rule (a team or a person)."""
    review: dt.date
    """When the rule is next reviewed (a rule needs an owner, a documented signal and a review date)."""
    description: str = Field(min_length=1)
    amount_usd: Decimal | None = Field(None, ge=0)
    """Fixed USD per period (exact to 1e-15). Give this or ``billed``."""
    billed: dict[str, Any] | None = None
    """The billed amount of imported billing lines matching this filter (column -> value(s))."""
    period: Period
    scope: dict[str, Any] = Field(default_factory=dict)
    """The runs that share the pool: dimension -> value or list of values ({} = every run)."""
    signal: Signal = "runs"
    method: Method
    by: str
    coefficients: dict[str, Decimal] | None = None
    """``method: fixed``: consumer value -> percent, summing to exactly 100."""
    cost_kind: str = Field("shared", min_length=1, max_length=40, pattern=ID_PATTERN)
    """What the allocated money is reported as in the ``cost_kind`` dimension (retrieval, compute, ...)."""
    effective_from: dt.date | None = None
    """First UTC day the pool exists (inclusive); default: since the ledger's first run."""
    effective_to: dt.date | None = None
    """First UTC day it no longer exists (exclusive)."""

    @field_validator("amount_usd")
    @classmethod
    def _femto_exact(cls, value: Decimal | None) -> Decimal | None:
        if value is not None:
            if not value.is_finite():
                raise ValueError("expected a finite decimal amount")
            if value != value.quantize(Decimal("1e-15")):
                raise ValueError("more precision than 1e-15 USD (one femto-dollar, the ledger's unit)")
        return value

    @field_validator("scope", mode="before")
    @classmethod
    def _scope(cls, value: Any) -> Filter:
        return _filter(value, _scope_dimensions(), "dimension")

    @field_validator("billed", mode="before")
    @classmethod
    def _billed(cls, value: Any) -> Filter | None:
        if value is None:
            return None
        found = _filter(value, dict.fromkeys(BILL_COLUMNS, ""), "billing line field")
        if not found:
            raise ValueError("name at least one billing line field (e.g. {provider: pinecone})")
        return found

    @field_validator("by")
    @classmethod
    def _by(cls, value: str) -> str:
        allowed = _by_dimensions()
        if value not in allowed:
            raise ValueError(
                f"unknown dimension (allowed: {', '.join(sorted(k for k, v in allowed.items() if not v))})"
            )
        if allowed[value]:
            raise ValueError(allowed[value])
        return value

    @field_validator("coefficients", mode="before")
    @classmethod
    def _coefficient_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(key): item for key, item in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Pool:
        if (self.amount_usd is None) == (self.billed is None):
            raise ValueError("give exactly one of amount_usd (fixed USD per period) and billed (a bill-line filter)")
        if self.method == "fixed":
            if not self.coefficients:
                raise ValueError("coefficients: method fixed needs coefficients (consumer: percent, summing to 100)")
            negative = [key for key, pct in self.coefficients.items() if pct < 0]
            if negative:
                raise ValueError(f"coefficients.{negative[0]}: a percentage cannot be negative")
            total = sum(self.coefficients.values(), Decimal(0))
            if total != 100:
                raise ValueError(f"coefficients: the percentages add up to {total}, not 100")
        elif self.coefficients is not None:
            raise ValueError(f"coefficients: only method fixed takes coefficients (this pool is {self.method})")
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        if self.period == "month":
            for name, day in (("effective_from", self.effective_from), ("effective_to", self.effective_to)):
                if day is not None and day.day != 1:
                    raise ValueError(f"{name}: a monthly pool starts and ends on the first day of a month")
        return self

    @property
    def amount_femto(self) -> int | None:
        """The fixed amount per period in femto-USD (None for a billed pool)."""
        return usd_to_femto(self.amount_usd) if self.amount_usd is not None else None

    @property
    def rule_version(self) -> str:
        """First 16 hex of the SHA-256 of the fields that decide the allocation."""
        fields: dict[str, Any] = self.model_dump(mode="json", include=set(ALLOCATING_FIELDS))
        # One amount, one hash: "300", "300.00" and 300 are the same rule.
        fields["amount_usd"] = self.amount_femto
        fields["coefficients"] = {k: str(Fraction(v)) for k, v in (self.coefficients or {}).items()}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def scope_filter(self) -> Filter:
        """The scope, validated into dimension -> values."""
        return dict(self.scope)

    @property
    def bill_filter(self) -> Filter:
        """The bill-line filter (empty for a fixed pool)."""
        return dict(self.billed or {})


class Unit(_Strict):
    """A unit of value: loaded cost of the runs in ``scope`` over the runs that also match ``count``."""

    id: str = Field(min_length=1, max_length=100, pattern=ID_PATTERN)
    description: str = Field(min_length=1)
    scope: dict[str, Any] = Field(default_factory=dict)
    """The runs whose loaded cost the unit carries (failures included), by run dimension."""
    count: dict[str, Any]
    """Of those, the runs that are one unit each: an outcome, a status or any run dimension."""

    @field_validator("scope", "count", mode="before")
    @classmethod
    def _run_filter(cls, value: Any) -> Filter:
        allowed = {name: ("" if d.level in BY_LEVELS else "is not a run dimension") for name, d in DIMENSIONS.items()}
        return _filter(value, allowed, "run dimension")

    @field_validator("count")
    @classmethod
    def _not_everything(cls, value: Filter) -> Filter:
        if not value:
            raise ValueError("name what a unit is (e.g. {outcome: accepted}); {} would count every run")
        return value


class PoolsFile(_Strict):
    """The whole file: pools (ids unique, no two claiming the same bill lines) and units."""

    version: Literal[1] = 1
    pools: list[Pool] = Field(default_factory=list)
    units: list[Unit] = Field(default_factory=list)

    @field_validator("pools")
    @classmethod
    def _unique_pools(cls, value: list[Pool]) -> list[Pool]:
        _unique([p.id for p in value], "pool")
        for later, pool in enumerate(value):
            for earlier in range(later):
                other = value[earlier]
                if (
                    pool.billed is not None
                    and other.billed is not None
                    and _overlap(pool.bill_filter, other.bill_filter)
                ):
                    raise ValueError(
                        f"pools {earlier + 1} ({other.id!r}) and {later + 1} ({pool.id!r}) claim the same cost: "
                        "their billed filters can match the same billing lines (make one field's values disjoint)"
                    )
        return value

    @field_validator("units")
    @classmethod
    def _unique_units(cls, value: list[Unit]) -> list[Unit]:
        _unique([u.id for u in value], "unit")
        return value


def _unique(ids: Sequence[str], what: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(ids, start=1):
        if item in seen:
            raise ValueError(f"two {what}s claim the id {item!r} ({what}s {seen[item]} and {index})")
        seen[item] = index


def _overlap(a: Filter, b: Filter) -> bool:
    """Whether some billing line can match both filters: unless a field both name has disjoint values."""
    return all(set(a[key]) & set(b[key]) for key in a.keys() & b.keys())


@dataclass(frozen=True)
class CostRules:
    """A validated cost-pools file: pools and units in file order, with where they came from."""

    path: Path | None
    pools: tuple[Pool, ...] = ()
    units: tuple[Unit, ...] = ()
    source: str = ""
    """``<file name>@<first 8 hex of its SHA-256>`` (empty without a file)."""

    def pool(self, pool_id: str) -> Pool | None:
        """The pool with this id, if any."""
        return next((p for p in self.pools if p.id == pool_id), None)

    def unit(self, unit_id: str) -> Unit | None:
        """The unit with this id, if any."""
        return next((u for u in self.units if u.id == unit_id), None)


NO_RULES = CostRules(None)


def load_cost_rules(path: str | Path | None) -> CostRules:
    """Read and validate the cost-pools file (None: no pools); raises ``PoolsError``."""
    if path is None:
        return NO_RULES
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PoolsError(f"cost pools {path}: cannot read ({exc.strerror})") from None
    return parse_cost_rules(text, source=path)


def parse_cost_rules(text: str, source: Path | None = None) -> CostRules:
    """Validate cost-pools YAML text (``source`` names the file in errors)."""
    label = str(source) if source else "<cost pools>"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PoolsError(f"cost pools {label}: {yaml_problem(exc)}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PoolsError(f"cost pools {label}: expected a mapping with a 'pools' list")
    try:
        parsed = PoolsFile.model_validate(doc)
    except ValidationError as exc:
        raise PoolsError(_describe(label, doc, exc)) from None
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    name = source.name if source else "inline"
    return CostRules(source, tuple(parsed.pools), tuple(parsed.units), f"{name}@{digest}")


def _describe(label: str, doc: Mapping[str, Any], exc: ValidationError) -> str:
    """Every error as ``pool N (id 'x'), field = value: message``."""
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] in ("pools", "units") and isinstance(loc[1], int):
            kind, index = str(loc[0]), loc[1]
            found = doc.get(kind)
            items: list[Any] = found if isinstance(found, list) else []
            raw = items[index] if index < len(items) else None
            item_id = raw.get("id") if isinstance(raw, dict) else None
            where = f"{kind[:-1]} {index + 1}" + (f" (id {item_id!r})" if item_id else "")
            loc = loc[2:]
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in loc if not str(part).startswith(("function-", "union[")))
        head, _, rest = message.partition(": ")
        if not field and rest and head in Pool.model_fields:
            field, message = head, rest  # a check across fields names the one at fault
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        shown = error["input"]
        if isinstance(shown, dt.date):
            shown = shown.isoformat()  # YAML reads 2027-03-01 as a date: show it as written
        value = (
            f" = {shown!r}"
            if error["type"] != "missing" and not isinstance(error["input"], dict | list) and field
            else ""
        )
        parts = [part for part in (where, field) if part]
        lines.append(f"{', '.join(parts) or 'top level'}{value}: {message}")
    return f"cost pools {label}: " + "; ".join(lines)
