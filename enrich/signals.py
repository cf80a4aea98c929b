"""Cost signals of a run beyond its model calls: charges, retrieval queries, GPU time.

Pure functions over a run's compact spans (``otelspend.record.L``), used by ``compute_run``.
Each counts a thing once however many spans report it, by the same rule: a span nested in
another span that reports the same thing is a second report of it, not a second thing.

* **Charges** are spans other than model calls that a rate-card entry priced on their
  attributes (``cost_kind`` retrieval, tool, compute, request, ...). A charge inside another
  charge of the same kind (an OpenInference RETRIEVER span around the vector-DB client span it
  made, priced by the same card; the children of a server span priced for its compute time)
  is a ``view``: its cost stays on the span, and only the outermost is counted (``charge``).
  Model calls are never charges, so a model call and a charge never share a span: every cost
  of a run is counted once, by exactly one counted role (``call`` or ``charge``).
* **Retrieval queries** are spans the normaliser classed ``retrieval`` (see the convention
  table's ``retrieval`` rows), the outermost of each nest.
* **GPU time** is what spans report (``otelspend.compute.seconds``, else duration x
  ``otelspend.gpu.count``), the outermost of each nest, views of model calls excluded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from otelspend.enrich.run_records import SpanRole
from otelspend.record import L, LiteSpan

COUNTED_ROLES = frozenset({SpanRole.CALL, SpanRole.CHARGE})
"""Roles whose cost is counted: a model call, a charge. Every other role's cost is not."""
MODEL_KINDS = frozenset({"", "model"})
_MAX_HOPS = 10_000


def is_charge(span_class: str, cost_kind: str) -> bool:
    """Whether a span with this class and cost kind is a charge (a priced non-model span)."""
    return cost_kind not in MODEL_KINDS and span_class != "llm"


def charges(ordered: Sequence[LiteSpan], by_id: Mapping[str, LiteSpan], roles: dict[str, SpanRole]) -> list[LiteSpan]:
    """The counted charges, in span order; sets ``roles`` to ``charge`` or ``view`` for every
    charge span not already a model call's."""
    priced = {
        s[L.span_id]: s[L.cost_kind]
        for s in ordered
        if is_charge(s[L.span_class], s[L.cost_kind]) and s[L.cost_usd] is not None and s[L.span_id] not in roles
    }
    counted = []
    for span in ordered:
        span_id = span[L.span_id]
        kind = priced.get(span_id)
        if kind is None:
            continue
        nested = _has_ancestor(by_id, span, _same_kind(priced, kind))
        roles[span_id] = SpanRole.VIEW if nested else SpanRole.CHARGE
        if not nested:
            counted.append(span)
    return counted


def _same_kind(priced: Mapping[str, str], kind: str) -> Callable[[LiteSpan], bool]:
    """A test for a span priced as a charge of ``kind``."""

    def same(other: LiteSpan) -> bool:
        return priced.get(other[L.span_id]) == kind

    return same


def retrieval_queries(ordered: Sequence[LiteSpan], by_id: Mapping[str, LiteSpan]) -> int:
    """Retrieval spans not nested in another retrieval span."""
    return sum(
        1
        for s in ordered
        if s[L.span_class] == "retrieval"
        and not _has_ancestor(by_id, s, lambda other: other[L.span_class] == "retrieval")
    )


def gpu_microseconds(ordered: Sequence[LiteSpan], by_id: Mapping[str, LiteSpan], roles: Mapping[str, SpanRole]) -> int:
    """GPU-microseconds the run's spans report, nested reports and views of calls counted once."""

    def reports(span: LiteSpan) -> bool:
        return (_number(span[L.compute_seconds]) or _number(span[L.gpu_count])) and roles.get(span[L.span_id]) != "view"

    total = Fraction(0)
    for span in ordered:
        if reports(span) and not _has_ancestor(by_id, span, reports):
            if _number(span[L.compute_seconds]):
                seconds = _exact(span[L.compute_seconds])
            else:
                seconds = Fraction(span[L.duration_ns], 10**9) * _exact(span[L.gpu_count])
            total += max(seconds, Fraction(0))
    return round(total * 1_000_000)


def _has_ancestor(by_id: Mapping[str, LiteSpan], span: LiteSpan, wanted: Callable[[LiteSpan], bool]) -> bool:
    current = span[L.parent_span_id]
    hops = 0
    while current in by_id and hops < _MAX_HOPS:
        parent = by_id[current]
        if wanted(parent):
            return True
        current = parent[L.parent_span_id]
        hops += 1
    return False


def _number(value: Any) -> bool:
    """A reported (numeric) value, zero included; absent is None."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _exact(value: float) -> Fraction:
    return Fraction(Decimal(repr(value)))
