"""Compute a run from its spans: a pure function, used live, on reopen and on recovery.

A run is every span of one trace. ``compute_run`` decides, from the span tree:

* **Calls, each counted once.** Inference spans that nest (an instrumentor's span around
  the provider SDK's own span, same provider, operation and model), share a
  ``gen_ai.response.id``, are sibling views of one request by two libraries, or are a
  request plus its after-the-stream usage record, are one call: the span with the most
  complete usage (then the deepest) is counted (role ``call``), the others are ``view``s.
  An agent / workflow / tool span with usage counts only if no inference span lies below
  it, otherwise it is an ``aggregate`` (a run total, not a call).
* **Retries**, per call: the largest of ``http.request.resend_count``, an explicit retry
  attribute and per-attempt HTTP child spans minus one; plus, across calls, each failed
  call followed by a successful call of the same operation and model under the same
  parent.
* **Attribution**: each business key from the root span, else the earliest span that has
  it; ownership rules then fill team / cost center / product / feature / owner.
* **Outcome**: the latest of span-borne outcomes and outcomes posted over the API.
* **Breakdown** rows by (model, provider, agent, tool, operation, payload band), each
  carrying the run's attribution and a mask telling which rows are the first of the run
  for every subset of those dimensions (exact distinct-run counts in any grouping).
"""

from __future__ import annotations

import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from otelspend.record import CALL_DIMENSIONS, RUN_CALL_COLUMNS, RUN_COLUMNS, ApiOutcome, L

BUSINESS_KEYS = (
    "workflow_id",
    "workflow_type",
    "tenant",
    "customer",
    "feature",
    "user",
    "environment",
    "prompt_version",
)
OWNED_FIELDS = ("team", "cost_center", "product", "owner", "feature", "tenant", "customer")
"""Fields ownership rules may set; the value already on the run wins unless a rule overrides."""
PAYLOAD_BANDS: tuple[tuple[int, str], ...] = (
    (1_000, "<1k"),
    (4_000, "1k-4k"),
    (16_000, "4k-16k"),
    (64_000, "16k-64k"),
    (128_000, "64k-128k"),
)
LAST_BAND = "128k+"
NO_BAND = "none"

_NDIMS = len(CALL_DIMENSIONS)
_ALL_SUBSETS = (1 << (1 << _NDIMS)) - 1
_SUBSETS_OF: tuple[int, ...] = tuple(
    sum(1 << subset for subset in range(1 << _NDIMS) if subset & ~agree == 0) for agree in range(1 << _NDIMS)
)
"""For a set of dimensions (bitmask), the bitmask of all its subsets (subset ids are bitmasks too)."""


def payload_band(input_tokens: int | None) -> str:
    if input_tokens is None:
        return NO_BAND
    for limit, name in PAYLOAD_BANDS:
        if input_tokens < limit:
            return name
    return LAST_BAND


@dataclass
class RunOptions:
    retry_loop_threshold: int = 3
    repeat_call_threshold: int = 10
    ownership: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None
    """Ownership rules: match context (with the current OWNED_FIELDS values) -> final OWNED_FIELDS."""
    resource_attributes: Callable[[int], Mapping[str, str]] | None = None


@dataclass
class RunResult:
    run: dict[str, Any]
    """RUN_COLUMNS values except version, sign, written_at, node."""
    calls: list[dict[str, Any]]
    roles: dict[str, str] = field(default_factory=dict)
    """span_id -> role, for every span whose role differs from the stored one."""


@dataclass
class _Call:
    span: tuple[Any, ...]
    members: list[tuple[Any, ...]]
    retries: int = 0
    failed: bool = False
    agent: str = ""
    reported: int | None = None
    unpriced: bool = False


def compute_run(
    spans: Iterable[tuple[Any, ...]], api_outcomes: Sequence[ApiOutcome] = (), options: RunOptions | None = None
) -> RunResult:
    options = options or RunOptions()
    by_id: dict[str, tuple[Any, ...]] = {}
    for span in spans:
        known = by_id.get(span[L.span_id])
        if known is None or span[L.version] > known[L.version]:
            by_id[span[L.span_id]] = span
    ordered = sorted(by_id.values(), key=lambda s: (s[L.start_time], s[L.span_id]))
    if not ordered:
        raise ValueError("a run needs at least one span")
    root = next((s for s in ordered if not s[L.parent_span_id]), None)
    top = root or ordered[0]

    roles: dict[str, str] = {}
    calls = _calls(ordered, by_id, roles)
    _count_retries(calls, by_id, ordered)
    agent_of = _agent_resolver(by_id)
    for call in calls:
        call.agent = agent_of(call.span) or next((a for m in call.members if (a := agent_of(m))), "")
        call.reported = _reported(call)
        call.unpriced = _is_unpriced(call)

    tools: list[tuple[Any, ...]] = []
    agent_invocations = tool_failures = payload = 0
    end = top[L.end_time]
    agent_names: set[str] = set()
    for span in ordered:
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
        if roles.get(span[L.span_id]) != "view":
            payload += span[L.payload_bytes]

    tokens = [0, 0, 0, 0, 0]
    cost = priced = unpriced = retries = failed = 0
    reported: int | None = None
    models: set[str] = set()
    providers: set[str] = set()
    repeats: dict[tuple[str, str, str], int] = defaultdict(int)
    for call in calls:
        s = call.span
        for index, slot in enumerate(_TOKEN_SLOTS):
            tokens[index] += s[slot] or 0
        if s[L.cost_usd] is not None:
            priced += 1
            cost += s[L.cost_usd]
        unpriced += call.unpriced
        if call.reported is not None:
            reported = (reported or 0) + call.reported
        retries += call.retries
        failed += call.failed
        if s[L.model]:
            models.add(s[L.model])
        if s[L.provider]:
            providers.add(s[L.provider])
        repeats[(s[L.parent_span_id], s[L.operation], s[L.model])] += 1

    attribution = _attribution(root, ordered)
    service = top[L.service_name]
    ingest_token = (root[L.ingest_token] if root is not None else "") or next(
        (s[L.ingest_token] for s in ordered if s[L.ingest_token]), ""
    )
    if options.ownership is not None:
        context = _ownership_context(options, attribution, top, service, ingest_token, ordered, agent_of)
        attribution.update({key: value for key, value in options.ownership(context).items() if key in OWNED_FIELDS})
    else:
        attribution.update(_owned_from_attributes(options, attribution, top))

    status = "unknown" if root is None else ("error" if root[L.status_code] == "ERROR" else "success")
    outcome = _outcome(ordered, api_outcomes)
    start = ordered[0][L.start_time]
    duration_ns = root[L.duration_ns] if root is not None else end - start
    run = {
        **_BOOKKEEPING,
        "run_id": top[L.trace_id],
        "start_time": start,
        "end_time": end,
        "duration_ms": duration_ns // 1_000_000,
        "complete": 1 if root is not None else 0,
        "status": status,
        "status_message": root[L.status_message] if root is not None else "",
        "root_span_id": root[L.span_id] if root is not None else "",
        "root_name": root[L.name] if root is not None else "",
        "service": service,
        **{key: attribution[key] for key in BUSINESS_KEYS},
        **{key: attribution[key] for key in ("team", "cost_center", "product", "owner")},
        "ingest_token": ingest_token,
        "outcome": outcome[0],
        "outcome_score": outcome[1],
        "outcome_label": outcome[2],
        "outcome_source": outcome[3],
        "spans": len(ordered),
        "llm_calls": len(calls),
        "duplicate_views": sum(1 for role in roles.values() if role == "view"),
        "tool_calls": len(tools),
        "tool_failures": tool_failures,
        "agent_invocations": agent_invocations,
        # Failed calls and failed tool executions (per-attempt HTTP spans are retries, not
        # errors): the same count the breakdown rows carry, so both rollups agree.
        "errors": failed + tool_failures,
        "retries": retries,
        "retry_loop": int(
            retries >= options.retry_loop_threshold or max(repeats.values(), default=0) >= options.repeat_call_threshold
        ),
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "cache_read_tokens": tokens[2],
        "cache_write_tokens": tokens[3],
        "reasoning_tokens": tokens[4],
        "payload_bytes": payload,
        "cost_usd": None if calls and priced == 0 and unpriced else cost,
        "reported_cost_usd": reported,
        "priced_calls": priced,
        "unpriced_calls": unpriced,
        "models": sorted(models),
        "providers": sorted(providers),
        "agents": sorted(agent_names),
        "tools": sorted({s[L.tool_name] for s in tools if s[L.tool_name]}),
    }
    breakdown = _breakdown(run, calls, tools, agent_of)
    # Only role changes against what is stored are returned (they are re-written).
    changed = {}
    for span in ordered:
        span_id = span[L.span_id]
        role = roles.get(span_id) or initial_role(span[L.span_class])
        if span[L.call_role] != role:
            changed[span_id] = role
    return RunResult(run, breakdown, changed)


_BOOKKEEPING = {"version": 0, "sign": 1, "written_at": 0, "node": ""}
"""Keys the emitter fills; present so a record converts to a row in one itemgetter call."""
_TOKEN_NAMES = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_TOKEN_SLOTS = tuple(getattr(L, name) for name in _TOKEN_NAMES)
_INITIAL_ROLES = {"llm": "call", "tool": "tool", "agent": "agent"}


def initial_role(span_class: str) -> str:
    """The role a span is stored with at ingest, before its run is complete."""
    return _INITIAL_ROLES.get(span_class, "other")


# -- calls ---------------------------------------------------------------------------------


def _depth(by_id: Mapping[str, tuple[Any, ...]], span: tuple[Any, ...]) -> int:
    """Known ancestors above a span (only asked for when a call has several views)."""
    depth = 0
    current = span[L.parent_span_id]
    while current in by_id and depth < 10_000:
        depth += 1
        current = by_id[current][L.parent_span_id]
    return depth


def _has_usage(span: tuple[Any, ...]) -> bool:
    return span[L.input_tokens] is not None or span[L.output_tokens] is not None


def _calls(
    ordered: list[tuple[Any, ...]],
    by_id: Mapping[str, tuple[Any, ...]],
    roles: dict[str, str],
) -> list[_Call]:
    """Group inference spans into provider calls and pick the span each call is counted by.

    Spans are one call when they nest, share a ``gen_ai.response.id``, are sibling views of
    one request by two libraries (:func:`_sibling_views`), or are a request plus the usage
    record a library emits once a stream has been read (:func:`_usage_reports`). The counted
    span is the one with the most complete usage, then the deepest (nearest the wire), then
    the latest to start (the inner of two nested-in-time siblings).
    """
    inference = [s for s in ordered if s[L.span_class] == "llm"]
    inference_ids = {s[L.span_id] for s in inference}
    groups = _CallGroups(inference)

    by_response: dict[str, str] = {}
    for span in inference:
        sid = span[L.span_id]
        ancestor = _nearest(by_id, span, inference_ids)
        # Nested views of one request agree on provider, operation and model. A span that
        # wraps calls to other models is not their view (LiteLLM's callback writes the last
        # call onto the application's own span, which then wraps every other call).
        if ancestor is not None and _same_request(by_id[ancestor], span):
            groups.union(ancestor, sid)
        response_id = span[L.response_id]
        if response_id:
            if response_id in by_response:
                groups.union(by_response[response_id], sid)
            else:
                by_response[response_id] = sid
    siblings: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for span in inference:
        siblings[span[L.parent_span_id]].append(span)
    for group in siblings.values():
        if len(group) > 1:
            # Both heuristics need two libraries, or a zero-length usage record: usually neither.
            if len({span[L.scope_name] for span in group}) > 1:
                _sibling_views(group, groups)
            if any(span[L.duration_ns] == 0 for span in group):
                _usage_reports(group, groups)

    calls = []
    for members in groups.members().values():
        if len(members) == 1:
            chosen = members[0]
        else:
            pool = [s for s in members if _has_usage(s)] or members
            chosen = max(pool, key=lambda s: (_usage_fields(s), _depth(by_id, s), s[L.start_time], s[L.span_id]))
            for span in members:
                if span is not chosen:
                    roles[span[L.span_id]] = "view"
        roles[chosen[L.span_id]] = "call"
        calls.append(_Call(chosen, members))
    calls.sort(key=lambda c: (c.span[L.start_time], c.span[L.span_id]))

    # Usage on an agent / workflow / tool span: a run total when an inference span lies
    # below it (e.g. gen_ai.usage.* on an agent span), otherwise the only record of a call.
    below_inference = set()
    for span in inference:
        current = span[L.parent_span_id]
        hops = 0
        while current in by_id and current not in below_inference and hops < 10_000:
            below_inference.add(current)
            current = by_id[current][L.parent_span_id]
            hops += 1
    for span in ordered:
        if span[L.span_class] != "llm" and _has_usage(span):
            if span[L.span_id] in below_inference:
                roles[span[L.span_id]] = "aggregate"
            else:
                roles[span[L.span_id]] = "call"
                calls.append(_Call(span, [span]))
    return calls


class _CallGroups:
    """Union-find over inference span ids; a group remembers the response id it answers to."""

    def __init__(self, spans: list[tuple[Any, ...]]) -> None:
        self.spans = spans
        self.parent = {s[L.span_id]: s[L.span_id] for s in spans}
        self.response = {s[L.span_id]: s[L.response_id] for s in spans}

    def find(self, x: str) -> str:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.response[ra] = self.response[ra] or self.response[rb]

    def may_join(self, a: str, b: str) -> bool:
        """Whether a heuristic may merge a and b: never two different provider responses."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        first, second = self.response[ra], self.response[rb]
        return not (first and second and first != second)

    def members(self) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for span in self.spans:
            out[self.find(span[L.span_id])].append(span)
        return out


def _sibling_views(siblings: list[tuple[Any, ...]], groups: _CallGroups) -> None:
    """Two libraries wrapping the same SDK method without nesting their spans (Traceloop
    next to the Anthropic SDK's own span) report one request as two siblings, the inner
    inside the outer in time. Failed calls carry no response id, so time is what ties them:
    a sibling from another instrumentation scope, for the same provider, operation and model,
    lying within the other's interval, is the same call (the tightest such container)."""
    ordered = sorted(siblings, key=lambda s: (s[L.start_time], -s[L.end_time]))
    open_spans: list[tuple[Any, ...]] = []
    for span in ordered:
        # Two libraries' views of one request start microseconds apart: looking back over
        # the latest few spans still open bounds the work on wide parallel fan-outs.
        open_spans = [s for s in open_spans[-_SIBLING_WINDOW:] if s[L.end_time] >= span[L.start_time]]
        best = None
        for outer in open_spans:
            if (
                outer[L.end_time] >= span[L.end_time]
                and outer[L.scope_name] != span[L.scope_name]
                and outer[L.scope_name]
                and span[L.scope_name]
                and _same_request(outer, span)
                and groups.may_join(outer[L.span_id], span[L.span_id])
                and (best is None or outer[L.duration_ns] < best[L.duration_ns])
            ):
                best = outer
        if best is not None:
            groups.union(best[L.span_id], span[L.span_id])
        open_spans.append(span)


def _usage_reports(siblings: list[tuple[Any, ...]], groups: _CallGroups) -> None:
    """A streamed call's usage reported after the fact (logfire: a zero-length log record
    emitted once the stream is read, next to the request span that carried no usage) belongs
    to the immediately preceding request of the same library and model."""
    by_scope: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for span in siblings:
        by_scope[span[L.scope_name]].append(span)
    for scope, spans in by_scope.items():
        if not scope:
            continue  # unknown library: nothing says two spans come from the same one
        spans.sort(key=lambda s: (s[L.start_time], s[L.span_id]))
        for previous, span in pairwise(spans):
            if (
                span[L.duration_ns] == 0
                and _has_usage(span)
                and not _has_usage(previous)
                and previous[L.status_code] != "ERROR"
                and _same_request(previous, span)
                and groups.may_join(previous[L.span_id], span[L.span_id])
            ):
                groups.union(previous[L.span_id], span[L.span_id])


def _same_request(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Nothing tells two spans apart as different requests (provider, operation, model)."""
    for index in (L.provider, L.operation):
        if a[index] and b[index] and a[index] != b[index]:
            return False
    return _same_model(a[L.model], b[L.model])


def _same_model(a: str, b: str) -> bool:
    """Equal, unknown on one side, or a dated snapshot of the other (gpt-4o-mini-2024-07-18)."""
    if not a or not b or a == b:
        return True
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return long.startswith(short + "-") and _SNAPSHOT_SUFFIX.fullmatch(long[len(short) + 1 :]) is not None


_SNAPSHOT_SUFFIX = re.compile(r"\d{4}-?\d{2}-?\d{2}|latest|v\d+(:\d+)?")
_SIBLING_WINDOW = 64


def _usage_fields(span: tuple[Any, ...]) -> int:
    return sum(
        span[i] is not None
        for i in (L.input_tokens, L.output_tokens, L.cache_read_tokens, L.cache_write_tokens, L.reasoning_tokens)
    )


def _nearest(by_id: Mapping[str, tuple[Any, ...]], span: tuple[Any, ...], wanted: set[str]) -> str | None:
    current = span[L.parent_span_id]
    hops = 0
    while current and current in by_id and hops < 10_000:
        if current in wanted:
            return current
        current = by_id[current][L.parent_span_id]
        hops += 1
    return None


def _count_retries(calls: list[_Call], by_id: Mapping[str, tuple[Any, ...]], ordered: list[tuple[Any, ...]]) -> None:
    member_of: dict[str, _Call] = {}
    for call in calls:
        for span in call.members:
            member_of[span[L.span_id]] = call
    attempts: dict[int, int] = defaultdict(int)
    for span in ordered:
        if span[L.span_class] == "http":
            owner = None
            current = span[L.parent_span_id]
            hops = 0
            while current in by_id and hops < 10_000:
                if current in member_of:
                    owner = member_of[current]
                    break
                current = by_id[current][L.parent_span_id]
                hops += 1
            if owner is not None:
                attempts[id(owner)] += 1
    for call in calls:
        resend = max((s[L.resend_count] for s in call.members), default=0)
        explicit = max((s[L.retry_count] for s in call.members), default=0)
        call.retries = max(resend, explicit, attempts.get(id(call), 0) - 1, 0)
        chosen = call.span
        call.failed = chosen[L.status_code] == "ERROR" or (
            not _has_usage(chosen) and any(s[L.status_code] == "ERROR" for s in call.members)
        )
    # A failed call followed by a later call of the same operation and model under the
    # same parent is a retry the application made itself.
    # A retry the application made: the call right after one or more failed calls of the same
    # operation and model under the same parent (any other call in between breaks the chain).
    # The failed attempt knows only the model asked for (gpt-5), the success the dated model
    # that answered (gpt-5-2025-08-07): _same_model treats them as one.
    by_parent: dict[str, list[_Call]] = defaultdict(list)
    for call in calls:
        by_parent[call.span[L.parent_span_id]].append(call)
    for group in by_parent.values():
        failures: list[_Call] = []
        for call in group:
            last = failures[-1].span if failures else None
            continues = (
                last is not None
                and last[L.operation] == call.span[L.operation]
                and _same_model(last[L.model], call.span[L.model])
            )
            if call.failed:
                failures = [*failures, call] if continues else [call]
            else:
                if continues:
                    call.retries += len(failures)
                failures = []


def _is_unpriced(call: _Call) -> bool:
    span = call.span
    if span[L.cost_usd] is not None:
        return False
    # A failed call that reported no usage was not billed: nothing is missing.
    return not (span[L.unpriced_reason] in ("no_usage", "") and call.failed)


def _reported(call: _Call) -> int | None:
    if call.span[L.reported_cost_usd] is not None:
        return call.span[L.reported_cost_usd]
    return next((s[L.reported_cost_usd] for s in call.members if s[L.reported_cost_usd] is not None), None)


# -- attribution, outcome, ownership ----------------------------------------------------------


def _attribution(root: tuple[Any, ...] | None, ordered: list[tuple[Any, ...]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in BUSINESS_KEYS:
        index = getattr(L, key)
        value = root[index] if root is not None else ""
        if not value:
            value = next((s[index] for s in ordered if s[index]), "")
        values[key] = value
    return values


def _outcome(ordered: list[tuple[Any, ...]], api: Sequence[ApiOutcome]) -> tuple[str, float | None, str, str]:
    best: tuple[int, str, float | None, str, str] | None = None
    for span in ordered:
        if span[L.outcome] or span[L.outcome_score] is not None or span[L.outcome_label]:
            candidate = (span[L.outcome_time], span[L.outcome], span[L.outcome_score], span[L.outcome_label], "span")
            if best is None or candidate[0] >= best[0]:
                best = candidate
    for item in api:
        if best is None or item.recorded_ns >= best[0]:
            best = (item.recorded_ns, item.outcome, item.score, item.label, "api")
    if best is None:
        return "", None, "", ""
    return best[1], best[2], best[3], best[4]


def _ownership_context(
    options: RunOptions,
    attribution: Mapping[str, str],
    top: tuple[Any, ...],
    service: str,
    ingest_token: str,
    ordered: list[tuple[Any, ...]],
    agent_of: Callable[[tuple[Any, ...]], str],
) -> dict[str, str]:
    """What ownership rules match on: resource and root-span attributes, then the run's keys."""
    context: dict[str, str] = {}
    if options.resource_attributes is not None:
        context.update(options.resource_attributes(top[L.resource_id]))
    keys, values = top[L.attributes] or ((), ())
    context.update(zip(keys, values, strict=False))
    context.update({k: v for k, v in attribution.items() if v})
    context["service.name"] = context["service"] = service
    context["ingest_token"] = ingest_token
    context["agent"] = next((a for s in ordered if (a := agent_of(s))), "")
    for key in OWNED_FIELDS:
        context.setdefault(key, "")
    return context


def _owned_from_attributes(options: RunOptions, attribution: Mapping[str, str], top: tuple[Any, ...]) -> dict[str, str]:
    """Without ownership rules: the run's own values, else the root span's, else its resource's."""
    keys, values = top[L.attributes] or ((), ())
    resource = options.resource_attributes(top[L.resource_id]) if options.resource_attributes else {}
    owned = {}
    for key in OWNED_FIELDS:
        value = attribution.get(key, "")
        if not value and key in keys:
            value = values[keys.index(key)]
        owned[key] = value or resource.get(key, "")
    return owned


def _agent_resolver(by_id: Mapping[str, tuple[Any, ...]]) -> Callable[[tuple[Any, ...]], str]:
    cache: dict[str, str] = {}

    def agent(span: tuple[Any, ...]) -> str:
        sid = span[L.span_id]
        if sid in cache:
            return cache[sid]
        chain = []
        current: tuple[Any, ...] | None = span
        found = ""
        while current is not None and len(chain) < 10_000:
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


# -- breakdown ---------------------------------------------------------------------------------

_RUN_DIMENSIONS_IN_CALLS = tuple(
    c.name
    for c in RUN_CALL_COLUMNS
    if c.name
    in (
        "workflow_id", "workflow_type", "service", "environment", "tenant", "customer", "feature", "user",
        "prompt_version", "team", "cost_center", "product", "owner", "status", "outcome",
    )
)  # fmt: skip


def _breakdown(
    run: Mapping[str, Any], calls: list[_Call], tools: list[tuple[Any, ...]], agent_of: Callable[[tuple[Any, ...]], str]
) -> list[dict[str, Any]]:
    rows: dict[tuple[str, ...], dict[str, Any]] = {}

    def row_for(key: tuple[str, ...]) -> dict[str, Any]:
        row = rows.get(key)
        if row is None:
            row = {
                **_BOOKKEEPING,
                **dict(zip(CALL_DIMENSIONS, key, strict=True)),
                "calls": 0, "errors": 0, "retries": 0, "tool_calls": 0, "tool_failures": 0,
                "unpriced_calls": 0, "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0,
                "cache_write_tokens": 0, "reasoning_tokens": 0, "payload_bytes": 0, "cost_usd": 0,
                "reported_cost_usd": 0, "latencies_ms": [],
            }  # fmt: skip
            rows[key] = row
        return row

    for call in calls:
        s = call.span
        key = (s[L.model], s[L.provider], call.agent, "", s[L.operation], payload_band(s[L.input_tokens]))
        row = row_for(key)
        row["calls"] += 1
        row["errors"] += call.failed
        row["retries"] += call.retries
        row["unpriced_calls"] += call.unpriced
        for name, slot in zip(_TOKEN_NAMES, _TOKEN_SLOTS, strict=True):
            row[name] += s[slot] or 0
        row["payload_bytes"] += s[L.payload_bytes]
        row["cost_usd"] += s[L.cost_usd] or 0
        row["reported_cost_usd"] += call.reported or 0
        row["latencies_ms"].append(s[L.duration_ns] // 1_000_000)
    for s in tools:
        key = ("", "", agent_of(s), s[L.tool_name], s[L.operation] or "execute_tool", "")
        row = row_for(key)
        row["tool_calls"] += 1
        failed = s[L.status_code] == "ERROR"
        row["tool_failures"] += failed
        row["errors"] += failed
        row["payload_bytes"] += s[L.payload_bytes]
        row["latencies_ms"].append(s[L.duration_ns] // 1_000_000)
    if not rows:
        row_for(("",) * len(CALL_DIMENSIONS))

    ordered_keys = sorted(rows)
    masks = _first_row_masks(ordered_keys)
    shared = {name: run[name] for name in _RUN_DIMENSIONS_IN_CALLS}
    successful = int(run["status"] == "success")
    accepted = int(run["outcome"] == "accepted")
    out = []
    for key in ordered_keys:
        row = rows[key]
        row.update(shared)
        row["run_id"] = run["run_id"]
        row["start_time"] = run["start_time"]
        row["run_mask"] = masks[key]
        row["successful"] = successful
        row["accepted"] = accepted
        out.append(row)
    return out


def _first_row_masks(keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    """Bit s of a row's mask: no earlier row has the same values on the dimensions of subset s.

    A row is not first for s exactly when an earlier row agrees with it on every dimension of
    s, i.e. when s is a subset of the dimensions the two rows agree on.
    """
    assert _NDIMS == 6, "the agreement bits below are written out for six call dimensions"
    masks = {}
    subsets_of = _SUBSETS_OF
    for index, key in enumerate(keys):
        covered = 0
        k0, k1, k2, k3, k4, k5 = key
        for o0, o1, o2, o3, o4, o5 in keys[:index]:
            covered |= subsets_of[
                (k0 == o0) | (k1 == o1) << 1 | (k2 == o2) << 2 | (k3 == o3) << 3 | (k4 == o4) << 4 | (k5 == o5) << 5
            ]
        masks[key] = _ALL_SUBSETS & ~covered
    return masks


RUN_FIELD_NAMES = tuple(c.name for c in RUN_COLUMNS)
CALL_FIELD_NAMES = tuple(c.name for c in RUN_CALL_COLUMNS)
run_row_of: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*RUN_FIELD_NAMES)
"""Run record (compute_run's dict) -> values in RUN_COLUMNS order."""
call_row_of: Callable[[Mapping[str, Any]], tuple[Any, ...]] = operator.itemgetter(*CALL_FIELD_NAMES)
"""Breakdown record -> values in RUN_CALL_COLUMNS order."""
