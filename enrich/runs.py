"""Compute a run from its spans: a pure function, used live, on reopen and on recovery.

A run is every span of one trace. ``compute_run`` decides, from the span tree, in phases:

1. **The tree**: the newest version of each span, in start order, and the root (if seen).
2. **Calls, each counted once** (``enrich.calls``): nested (same provider, operation and
   model), same-response, sibling and late-usage views of one request are one call; usage above counted calls is an
   ``aggregate``. Then **retries** per call, the **agent** that made it and its cost facts.
3. **Census** of the spans (tools, agents, end, payload) and **totals** of the calls
   (tokens, cost, priced / unpriced, retries, failures, models, providers).
4. **Attribution** (``enrich.attribution``): business keys from the root span, else the
   earliest span that has them; ownership rules then fill team / cost center / product /
   feature / owner. **Outcome**: the latest of span-borne and API-posted outcomes.
5. The **run record**, its **breakdown** records (``enrich.breakdown``) by (model,
   provider, agent, tool, operation, payload band), and the span **roles** that changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from otelspend.enrich import signals
from otelspend.enrich.attribution import (
    OWNED_FIELDS,
    Outcome,
    OwnershipRules,
    ResourceLookup,
    agent_resolver,
    business_keys,
    latest_outcome,
    owned_from_attributes,
    ownership_context,
)
from otelspend.enrich.breakdown import LAST_BAND, NO_BAND, PAYLOAD_BANDS, breakdown_rows, payload_band
from otelspend.enrich.calls import Call, count_retries, group_calls, is_unpriced, reported_cost
from otelspend.enrich.run_records import BreakdownRecord, OutcomeSource, RunRecord, RunStatus, SpanRole
from otelspend.record import BUSINESS_KEYS, RUN_CALL_COLUMNS, RUN_COLUMNS, ApiOutcome, L, LiteSpan

__all__ = [
    "BUSINESS_KEYS",
    "CALL_FIELD_NAMES",
    "LAST_BAND",
    "NO_BAND",
    "OWNED_FIELDS",
    "PAYLOAD_BANDS",
    "RUN_FIELD_NAMES",
    "BreakdownRecord",
    "OutcomeSource",
    "RunOptions",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "SpanRole",
    "call_row_of",
    "compute_run",
    "initial_role",
    "payload_band",
    "run_row_of",
]


@dataclass
class RunOptions:
    """How runs are computed (from settings, plus the ownership rules and resource lookup in force)."""

    retry_loop_threshold: int = 3
    """Retries in one run from which it is flagged as a retry loop."""
    repeat_call_threshold: int = 10
    """Calls of one operation and model under one parent from which the run is a retry loop."""
    ownership: OwnershipRules | None = None
    """Ownership rules: match context (with the current OWNED_FIELDS values) -> final OWNED_FIELDS."""
    resource_attributes: ResourceLookup | None = None
    """resource_id -> resource attributes, for ownership (None: only span attributes are seen)."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """A computed run: its record, its breakdown records and the span roles to re-write."""

    run: RunRecord
    calls: tuple[BreakdownRecord, ...]
    roles: dict[str, SpanRole]
    """span_id -> role, for every span whose role differs from the stored one."""


def compute_run(
    spans: Iterable[LiteSpan], api_outcomes: Sequence[ApiOutcome] = (), options: RunOptions | None = None
) -> RunResult:
    """The run of these spans (every span of one trace, any order, duplicates allowed)."""
    options = options or RunOptions()
    tree = _SpanTree.of(spans)
    roles: dict[str, SpanRole] = {}
    calls = group_calls(tree.ordered, tree.by_id, roles)
    count_retries(calls, tree.by_id, tree.ordered)
    agent_of = agent_resolver(tree.by_id)
    _derive_call_facts(calls, agent_of)
    charges = signals.charges(tree.ordered, tree.by_id, roles)  # issue 14: priced non-model spans
    census = _SpanCensus.of(tree, roles)
    totals = _CallTotals.of(calls)
    owners = _Owners.of(tree, options, agent_of)
    outcome = latest_outcome(tree.ordered, api_outcomes)
    run = _run_record(tree, census, totals, owners, outcome, roles, options)
    run = _with_signals(run, tree, roles, charges)
    rows = breakdown_rows(run, calls, census.tools, agent_of, charges)
    return RunResult(run, rows, _role_changes(tree.ordered, roles))


_INITIAL_ROLES = {"llm": SpanRole.CALL, "tool": SpanRole.TOOL, "agent": SpanRole.AGENT}


def initial_role(span_class: str, cost_kind: str = "") -> SpanRole:
    """The role a span is stored with at ingest, before its run is complete (a priced span
    other than a model call is a charge)."""
    if signals.is_charge(span_class, cost_kind):
        return SpanRole.CHARGE
    return _INITIAL_ROLES.get(span_class, SpanRole.OTHER)


def _with_signals(run: RunRecord, tree: _SpanTree, roles: dict[str, SpanRole], charges: list[LiteSpan]) -> RunRecord:
    """The run with its charges' cost added (every cost counted once: a charge is never a call)
    and its allocation signals: charges, retrieval queries, GPU time."""
    charge_cost = sum(s[L.cost_usd] for s in charges)
    cost = run.cost_usd
    if charges:
        cost = (cost or 0) + charge_cost  # a run with priced charges has a cost, unpriced calls or not
    return run._replace(
        cost_usd=cost,
        charges=len(charges),
        retrieval_queries=signals.retrieval_queries(tree.ordered, tree.by_id),
        gpu_us=signals.gpu_microseconds(tree.ordered, tree.by_id, roles),
    )


RUN_FIELD_NAMES = tuple(c.name for c in RUN_COLUMNS)
CALL_FIELD_NAMES = tuple(c.name for c in RUN_CALL_COLUMNS)


def run_row_of(record: RunRecord) -> tuple[Any, ...]:
    """Run record -> values in RUN_COLUMNS order (the record is that tuple)."""
    return record


def call_row_of(record: BreakdownRecord) -> tuple[Any, ...]:
    """Breakdown record -> values in RUN_CALL_COLUMNS order (the record is that tuple)."""
    return record


# -- phases ------------------------------------------------------------------------------------


class _SpanTree(NamedTuple):
    """The newest version of each span, in start order; the root span and the run's top span."""

    by_id: dict[str, LiteSpan]
    ordered: list[LiteSpan]
    root: LiteSpan | None
    top: LiteSpan
    """The root, else the earliest span."""

    @staticmethod
    def of(spans: Iterable[LiteSpan]) -> _SpanTree:
        by_id: dict[str, LiteSpan] = {}
        for span in spans:
            known = by_id.get(span[L.span_id])
            if known is None or span[L.version] > known[L.version]:
                by_id[span[L.span_id]] = span
        ordered = sorted(by_id.values(), key=lambda s: (s[L.start_time], s[L.span_id]))
        if not ordered:
            raise ValueError("a run needs at least one span")
        root = next((s for s in ordered if not s[L.parent_span_id]), None)
        return _SpanTree(by_id, ordered, root, root or ordered[0])


def _derive_call_facts(calls: list[Call], agent_of: Callable[[LiteSpan], str]) -> None:
    """Each call's agent (from its counted span, else any view), reported cost and whether it is unpriced."""
    for call in calls:
        call.agent = agent_of(call.span) or next((a for m in call.members if (a := agent_of(m))), "")
        call.reported = reported_cost(call)
        call.unpriced = is_unpriced(call)


class _SpanCensus(NamedTuple):
    """What the run's spans add up to, calls aside."""

    tools: list[LiteSpan]
    tool_failures: int
    agent_invocations: int
    agent_names: set[str]
    end: int
    payload: int
    """Payload bytes of every span but the views (a call's payload counts once)."""

    @staticmethod
    def of(tree: _SpanTree, roles: dict[str, SpanRole]) -> _SpanCensus:
        tools: list[LiteSpan] = []
        agent_invocations = tool_failures = payload = 0
        end = tree.top[L.end_time]
        agent_names: set[str] = set()
        for span in tree.ordered:
            span_class = span[L.span_class]
            if span_class == "tool":
                tools.append(span)
                tool_failures += span[L.status_code] == "ERROR"
            elif span_class == "agent":
                agent_invocations += 1
            if span[L.agent_name]:
                agent_names.add(span[L.agent_name])
            if span[L.end_time] > end:
                end = span[L.end_time]
            if roles.get(span[L.span_id]) != SpanRole.VIEW:
                payload += span[L.payload_bytes]
        return _SpanCensus(tools, tool_failures, agent_invocations, agent_names, end, payload)


@dataclass(slots=True)
class _CallTotals:
    """The run's calls summed (filled by :meth:`of`)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: int = 0
    priced: int = 0
    unpriced: int = 0
    retries: int = 0
    failed: int = 0
    reported: int | None = None
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    most_repeated: int = 0
    """Most calls of one (parent, operation, model): a loop calling the same thing again."""

    @staticmethod
    def of(calls: list[Call]) -> _CallTotals:
        t = _CallTotals(calls=len(calls))
        models: set[str] = set()
        providers: set[str] = set()
        repeats: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        for call in calls:
            s = call.span
            t.input_tokens += s[L.input_tokens] or 0
            t.output_tokens += s[L.output_tokens] or 0
            t.cache_read_tokens += s[L.cache_read_tokens] or 0
            t.cache_write_tokens += s[L.cache_write_tokens] or 0
            t.reasoning_tokens += s[L.reasoning_tokens] or 0
            if s[L.cost_usd] is not None:
                t.priced += 1
                t.cost += s[L.cost_usd]
            t.unpriced += call.unpriced
            if call.reported is not None:
                t.reported = (t.reported or 0) + call.reported
            t.retries += call.retries
            t.failed += call.failed
            if s[L.model]:
                models.add(s[L.model])
            if s[L.provider]:
                providers.add(s[L.provider])
            repeats[(s[L.parent_span_id], s[L.operation], s[L.model])] += 1
        t.models, t.providers = tuple(sorted(models)), tuple(sorted(providers))
        t.most_repeated = max(repeats.values(), default=0)
        return t


class _Owners(NamedTuple):
    """The run's attribution: business keys and owned fields, service and ingest token."""

    keys: dict[str, str]
    """BUSINESS_KEYS and OWNED_FIELDS -> value."""
    service: str
    ingest_token: str

    @staticmethod
    def of(tree: _SpanTree, options: RunOptions, agent_of: Callable[[LiteSpan], str]) -> _Owners:
        root, top = tree.root, tree.top
        keys = business_keys(root, tree.ordered)
        ingest_token = (root[L.ingest_token] if root is not None else "") or next(
            (s[L.ingest_token] for s in tree.ordered if s[L.ingest_token]), ""
        )
        if options.ownership is not None:
            agent = next((a for s in tree.ordered if (a := agent_of(s))), "")
            context = ownership_context(options.resource_attributes, keys, top, ingest_token, agent)
            keys.update({key: value for key, value in options.ownership(context).items() if key in OWNED_FIELDS})
        else:
            keys.update(owned_from_attributes(options.resource_attributes, keys, top))
        return _Owners(keys, top[L.service_name], ingest_token)


def _run_record(
    tree: _SpanTree,
    census: _SpanCensus,
    totals: _CallTotals,
    owners: _Owners,
    outcome: Outcome,
    roles: dict[str, SpanRole],
    options: RunOptions,
) -> RunRecord:
    root, keys = tree.root, owners.keys
    start = tree.ordered[0][L.start_time]
    duration_ns = root[L.duration_ns] if root is not None else census.end - start
    if root is None:
        status = RunStatus.UNKNOWN
    else:
        status = RunStatus.ERROR if root[L.status_code] == "ERROR" else RunStatus.SUCCESS
    return RunRecord(
        run_id=tree.top[L.trace_id], version=0, sign=1,
        start_time=start, end_time=census.end, duration_ms=duration_ns // 1_000_000,
        complete=1 if root is not None else 0, status=status,
        status_message=root[L.status_message] if root is not None else "",
        root_span_id=root[L.span_id] if root is not None else "",
        root_name=root[L.name] if root is not None else "",
        service=owners.service,
        workflow_id=keys["workflow_id"], workflow_type=keys["workflow_type"], tenant=keys["tenant"],
        customer=keys["customer"], feature=keys["feature"], user=keys["user"], environment=keys["environment"],
        prompt_version=keys["prompt_version"],
        team=keys["team"], cost_center=keys["cost_center"], product=keys["product"], owner=keys["owner"],
        ingest_token=owners.ingest_token,
        outcome=outcome.outcome, outcome_score=outcome.score, outcome_label=outcome.label,
        outcome_source=outcome.source,
        spans=len(tree.ordered), llm_calls=totals.calls,
        duplicate_views=sum(1 for role in roles.values() if role == SpanRole.VIEW),
        tool_calls=len(census.tools), tool_failures=census.tool_failures,
        agent_invocations=census.agent_invocations,
        # Failed calls and failed tool executions (per-attempt HTTP spans are retries, not
        # errors): the same count the breakdown rows carry, so both rollups agree.
        errors=totals.failed + census.tool_failures,
        retries=totals.retries,
        retry_loop=int(
            totals.retries >= options.retry_loop_threshold or totals.most_repeated >= options.repeat_call_threshold
        ),
        input_tokens=totals.input_tokens, output_tokens=totals.output_tokens,
        cache_read_tokens=totals.cache_read_tokens, cache_write_tokens=totals.cache_write_tokens,
        reasoning_tokens=totals.reasoning_tokens,
        payload_bytes=census.payload,
        cost_usd=None if totals.calls and totals.priced == 0 and totals.unpriced else totals.cost,
        reported_cost_usd=totals.reported,
        priced_calls=totals.priced, unpriced_calls=totals.unpriced,
        models=totals.models, providers=totals.providers, agents=tuple(sorted(census.agent_names)),
        tools=tuple(sorted({s[L.tool_name] for s in census.tools if s[L.tool_name]})),
        written_at=0, node="", charges=0, retrieval_queries=0, gpu_us=0,
    )  # fmt: skip


def _role_changes(ordered: list[LiteSpan], roles: dict[str, SpanRole]) -> dict[str, SpanRole]:
    """Roles that differ from the stored ones (only those are re-written)."""
    changed = {}
    for span in ordered:
        span_id = span[L.span_id]
        role = roles.get(span_id) or initial_role(span[L.span_class], span[L.cost_kind])
        if span[L.call_role] != role:
            changed[span_id] = role
    return changed
