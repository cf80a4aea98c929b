"""Who a run belongs to and how it turned out (pure): business keys, ownership, agent, outcome.

* **Business keys** come from the root span, else the earliest span that has them.
* **Ownership** (team / cost center / product / owner, and feature / tenant / customer when a
  rule sets them): the rules decide from the run's keys plus the resource's and root span's
  attributes; without rules, the run's own values, else the root span's, else its resource's.
* **Outcome**: the latest of span-borne outcomes and outcomes posted over the API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from otelspend.enrich.calls import MAX_HOPS, SpansById
from otelspend.enrich.run_records import OutcomeSource
from otelspend.record import BUSINESS_KEYS, ApiOutcome, L, LiteSpan

"""Run fields read from span attributes (the root span's value wins)."""
OWNED_FIELDS = ("team", "cost_center", "product", "owner", "feature", "tenant", "customer")
"""Fields ownership rules may set; the value already on the run wins unless a rule overrides."""
_BUSINESS_SLOTS = tuple((key, getattr(L, key)) for key in BUSINESS_KEYS)

OwnershipRules = Callable[[Mapping[str, str]], Mapping[str, str]]
"""Match context (with the current OWNED_FIELDS values) -> final OWNED_FIELDS."""
ResourceLookup = Callable[[int], Mapping[str, str]]
"""resource_id -> the resource's attributes."""


class Outcome(NamedTuple):
    """A run's outcome and where it came from."""

    outcome: str
    score: float | None
    label: str
    source: OutcomeSource


NO_OUTCOME = Outcome("", None, "", OutcomeSource.NONE)


def business_keys(root: LiteSpan | None, ordered: list[LiteSpan]) -> dict[str, str]:
    """Each business key from the root span, else from the earliest span that has it."""
    values: dict[str, str] = {}
    for key, index in _BUSINESS_SLOTS:
        value = root[index] if root is not None else ""
        if not value:
            value = next((s[index] for s in ordered if s[index]), "")
        values[key] = value
    return values


def latest_outcome(ordered: list[LiteSpan], api: Sequence[ApiOutcome]) -> Outcome:
    """The latest outcome: span-borne ones by their time, API ones by when they were recorded."""
    best: tuple[int, Outcome] | None = None
    for span in ordered:
        has_outcome = span[L.outcome] or span[L.outcome_score] is not None or span[L.outcome_label]
        if has_outcome and (best is None or span[L.outcome_time] >= best[0]):
            outcome = Outcome(span[L.outcome], span[L.outcome_score], span[L.outcome_label], OutcomeSource.SPAN)
            best = (span[L.outcome_time], outcome)
    for item in api:
        if best is None or item.recorded_ns >= best[0]:
            best = (item.recorded_ns, Outcome(item.outcome, item.score, item.label, OutcomeSource.API))
    return NO_OUTCOME if best is None else best[1]


def ownership_context(
    resource_attributes: ResourceLookup | None,
    keys: Mapping[str, str],
    top: LiteSpan,
    ingest_token: str,
    agent: str,
) -> dict[str, str]:
    """What ownership rules match on: resource and root-span attributes, then the run's keys."""
    context: dict[str, str] = {}
    if resource_attributes is not None:
        context.update(resource_attributes(top[L.resource_id]))
    names, values = top[L.attributes] or ((), ())
    context.update(zip(names, values, strict=False))
    context.update({k: v for k, v in keys.items() if v})
    context["service.name"] = context["service"] = top[L.service_name]
    context["ingest_token"] = ingest_token
    context["agent"] = agent
    for key in OWNED_FIELDS:
        context.setdefault(key, "")
    return context


def owned_from_attributes(
    resource_attributes: ResourceLookup | None, keys: Mapping[str, str], top: LiteSpan
) -> dict[str, str]:
    """Without ownership rules: the run's own values, else the root span's, else its resource's."""
    names, values = top[L.attributes] or ((), ())
    resource = resource_attributes(top[L.resource_id]) if resource_attributes else {}
    owned = {}
    for key in OWNED_FIELDS:
        value = keys.get(key, "")
        if not value and key in names:
            value = values[names.index(key)]
        owned[key] = value or resource.get(key, "")
    return owned


def agent_resolver(by_id: SpansById) -> Callable[[LiteSpan], str]:
    """span -> the name of the nearest agent at or above it ("" if none), memoised per span."""
    cache: dict[str, str] = {}

    def agent(span: LiteSpan) -> str:
        sid = span[L.span_id]
        if sid in cache:
            return cache[sid]
        chain: list[str] = []
        current: LiteSpan | None = span
        found = ""
        while current is not None and len(chain) < MAX_HOPS:
            csid = current[L.span_id]
            if csid in cache:
                found = cache[csid]
                break
            chain.append(csid)
            if current[L.agent_name]:
                found = current[L.agent_name]
                break
            current = by_id.get(current[L.parent_span_id])
        for item in chain:
            cache[item] = found
        return found

    return agent
