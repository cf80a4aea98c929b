"""Charges: rate-card entries that price spans other than model calls, matched on attributes.

A charge entry has no model; it names attributes the span must carry (``match:``) and what
one matched span costs: a fee per call (``request_fee``, or ``per_1k_calls`` for prices quoted
per thousand), and/or compute time (``gpu_second`` over the span's GPU-seconds, ``cpu_second``
over its CPU-seconds). The span's ``cost_kind`` says what the money is (retrieval, tool,
compute, request, ...), its provenance is the same as a model price's (``price_source``,
``price_entry``, ``price_effective_from``).

A ``match`` key is looked up, in this order, as

1. a canonical field, or an attribute key the convention table reads into one
   (``operation``, ``tool_name`` / ``gen_ai.tool.name``, ``db_system`` / ``db.system.name``,
   ``service.name``, ``tenant`` ...);
2. a span attribute (``pinecone.usage.read_units``, ``http.url`` ...);
3. a resource attribute (``k8s.namespace.name``, ``k8s.pod.name``, ``host.name`` ...), or one
   of the short names the convention table lists under ``cost_signals.match_aliases``
   (``namespace``, ``pod``, ``node``, ``host``, ``gpu_type``).

Patterns are those of ``model``: exact and case-insensitive without wildcards, glob with
``* ? [...]``, a full-match regular expression with ``re:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from otelspend.record import F

ResourceLookup = Callable[[int], Mapping[str, str] | None]
"""resource_id -> the resource's attributes (None when unknown)."""


@dataclass(frozen=True, slots=True)
class MatchRule:
    """One ``match:`` key: where its value is read from, and the pattern it must match."""

    key: str
    column: int | None
    """The canonical column holding the value, when the key is (read into) one."""
    keys: tuple[str, ...]
    """Otherwise the attribute keys to try, span attributes first, then the resource's."""
    pattern: re.Pattern[str]


class SpanView:
    """A span row's values as a ``match:`` reads them (attribute maps built once, on first use)."""

    __slots__ = ("_resource", "_resources", "_span", "row")

    def __init__(self, row: list[Any], resources: ResourceLookup | None) -> None:
        self.row = row
        self._resources = resources
        self._span: dict[str, str] | None = None
        self._resource: Mapping[str, str] | None = None

    def value(self, rule: MatchRule) -> str | None:
        """The value the rule tests, or None when the span and its resource have none."""
        if rule.column is not None:
            found = self.row[rule.column]
            return str(found) if found not in (None, "") else None
        if self._span is None:
            keys, values = self.row[F.attributes] or ((), ())
            self._span = dict(zip(keys, values, strict=False))
        for key in rule.keys:
            if key in self._span:
                return self._span[key]
        if self._resource is None:
            found_resource = self._resources(self.row[F.resource_id]) if self._resources is not None else None
            self._resource = found_resource or {}
        for key in rule.keys:
            if key in self._resource:
                return self._resource[key]
        return None

    def matches(self, rules: Sequence[MatchRule]) -> bool:
        """Whether every rule's value is present and matches its pattern."""
        for rule in rules:
            value = self.value(rule)
            if value is None or not rule.pattern.fullmatch(value):
                return False
        return True


@dataclass(frozen=True)
class ChargePrice:
    """What one matched span costs, as integer femto-USD per unit."""

    source: str
    entry: str
    effective_from: str
    kind: str
    fee_femto: int | Fraction | None = None
    """Per matched span."""
    gpu_second_femto: int | Fraction | None = None
    cpu_second_femto: int | Fraction | None = None
    default_gpus: float = 1.0
    default_cpus: float = 1.0
    cpu_seconds_keys: tuple[str, ...] = ()

    def cost(self, view: SpanView, multiplier: Fraction) -> tuple[int, int]:
        """(request fee, compute) in femto-USD for one span, each rounded half-even."""
        row = view.row
        request = 0
        if self.fee_femto is not None:
            request = round(Fraction(self.fee_femto) * multiplier)
        compute = Fraction(0)
        if self.gpu_second_femto is not None:
            compute += Fraction(self.gpu_second_femto) * gpu_seconds(row, self.default_gpus)
        if self.cpu_second_femto is not None:
            compute += Fraction(self.cpu_second_femto) * self._cpu_seconds(view)
        return request, round(compute * multiplier)

    def _cpu_seconds(self, view: SpanView) -> Fraction:
        keys, values = view.row[F.attributes] or ((), ())
        for key in self.cpu_seconds_keys:
            if key in keys:
                try:
                    explicit = Fraction(Decimal(values[keys.index(key)]))
                except (ArithmeticError, ValueError):
                    continue
                if explicit >= 0:
                    return explicit
        return Fraction(view.row[F.duration_ns], 10**9) * exact(self.default_cpus)


def gpu_seconds(row: list[Any], default_gpus: float) -> Fraction:
    """The span's GPU-seconds: ``otelspend.compute.seconds`` if it says, else duration x GPUs
    (``otelspend.gpu.count`` on the span, else ``default_gpus``)."""
    explicit = row[F.compute_seconds]
    if explicit is not None:
        return exact(explicit)
    gpus = row[F.gpu_count]
    return Fraction(row[F.duration_ns], 10**9) * exact(gpus if gpus else default_gpus)


def exact(value: float) -> Fraction:
    """A float attribute as the decimal it was written as (0.1 -> 1/10, not the nearest binary)."""
    return Fraction(Decimal(repr(value)))
