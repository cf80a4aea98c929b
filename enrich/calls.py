"""Provider calls of a run, each counted once, and the retries around them (pure).

Inference spans that nest (an instrumentor's span around the provider SDK's own span, same
provider, operation and model), share a ``gen_ai.response.id``, are sibling views of one
request by two libraries, or are a request plus its after-the-stream usage record, are one
call: the span with the most complete usage (then the deepest) is counted (role ``call``),
the others are ``view``s. An agent / workflow / tool span with usage counts only if no
inference span lies below it, otherwise it is an ``aggregate`` (a run total, not a call).

Retries, per call: the largest of ``http.request.resend_count``, an explicit retry attribute
and per-attempt HTTP child spans minus one; plus, across calls, each failed call followed by
a successful call of the same operation and model under the same parent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from otelspend.enrich.run_records import SpanRole
from otelspend.record import L, LiteSpan

MAX_HOPS = 10_000
"""Bound on any walk up a span tree (a corrupt parent chain cannot loop for ever)."""
_SIBLING_WINDOW = 64
_SNAPSHOT_SUFFIX = re.compile(r"\d{4}-?\d{2}-?\d{2}|latest|v\d+(:\d+)?")
_USAGE_SLOTS = (L.input_tokens, L.output_tokens, L.cache_read_tokens, L.cache_write_tokens, L.reasoning_tokens)

SpansById = Mapping[str, LiteSpan]


@dataclass(slots=True)
class Call:
    """One provider call while its run is computed: the span it is counted by, every span
    that reports it, and what the later phases derive (retries, agent, cost facts)."""

    span: LiteSpan
    members: list[LiteSpan]
    retries: int = 0
    failed: bool = False
    agent: str = ""
    reported: int | None = None
    unpriced: bool = False


def has_usage(span: LiteSpan) -> bool:
    """Whether the span carries input or output token counts."""
    return span[L.input_tokens] is not None or span[L.output_tokens] is not None


def group_calls(ordered: list[LiteSpan], by_id: SpansById, roles: dict[str, SpanRole]) -> list[Call]:
    """Group inference spans into provider calls and pick the span each call is counted by.

    Spans are one call when they nest, share a ``gen_ai.response.id``, are sibling views of
    one request by two libraries (:func:`_sibling_views`), or are a request plus the usage
    record a library emits once a stream has been read (:func:`_usage_reports`). The counted
    span is the one with the most complete usage, then the deepest (nearest the wire), then
    the latest to start (the inner of two nested-in-time siblings). Sets ``roles`` of every
    span the calls touch.
    """
    inference = [s for s in ordered if s[L.span_class] == "llm"]
    groups = _CallGroups(inference)
    _join_nested_and_same_response(inference, by_id, groups)
    _join_sibling_views(inference, groups)
    calls = _counted_calls(groups, by_id, roles)
    calls.sort(key=lambda c: (c.span[L.start_time], c.span[L.span_id]))
    calls.extend(_usage_outside_inference(ordered, inference, by_id, roles))
    return calls


def _join_nested_and_same_response(inference: list[LiteSpan], by_id: SpansById, groups: _CallGroups) -> None:
    """An inference span below another of the same request is the same call; so are spans
    answering one response id."""
    inference_ids = {s[L.span_id] for s in inference}
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


def _join_sibling_views(inference: list[LiteSpan], groups: _CallGroups) -> None:
    """Siblings that are two libraries' views of one request, or a request and its usage record."""
    siblings: dict[str, list[LiteSpan]] = defaultdict(list)
    for span in inference:
        siblings[span[L.parent_span_id]].append(span)
    for group in siblings.values():
        if len(group) > 1:
            # Both heuristics need two libraries, or a zero-length usage record: usually neither.
            if len({span[L.scope_name] for span in group}) > 1:
                _sibling_views(group, groups)
            if any(span[L.duration_ns] == 0 for span in group):
                _usage_reports(group, groups)


def _counted_calls(groups: _CallGroups, by_id: SpansById, roles: dict[str, SpanRole]) -> list[Call]:
    """One call per group, counted by its most complete, deepest, latest span; the rest are views."""
    calls = []
    for members in groups.members().values():
        if len(members) == 1:
            chosen = members[0]
        else:
            pool = [s for s in members if has_usage(s)] or members
            chosen = max(pool, key=lambda s: (_usage_fields(s), _depth(by_id, s), s[L.start_time], s[L.span_id]))
            for span in members:
                if span is not chosen:
                    roles[span[L.span_id]] = SpanRole.VIEW
        roles[chosen[L.span_id]] = SpanRole.CALL
        calls.append(Call(chosen, members))
    return calls


def _usage_outside_inference(
    ordered: list[LiteSpan], inference: list[LiteSpan], by_id: SpansById, roles: dict[str, SpanRole]
) -> list[Call]:
    """Usage on an agent / workflow / tool span: a run total when an inference span lies
    below it (e.g. gen_ai.usage.* on an agent span), otherwise the only record of a call."""
    below_inference = set()
    for span in inference:
        current = span[L.parent_span_id]
        hops = 0
        while current in by_id and current not in below_inference and hops < MAX_HOPS:
            below_inference.add(current)
            current = by_id[current][L.parent_span_id]
            hops += 1
    calls = []
    for span in ordered:
        if span[L.span_class] != "llm" and has_usage(span):
            if span[L.span_id] in below_inference:
                roles[span[L.span_id]] = SpanRole.AGGREGATE
            else:
                roles[span[L.span_id]] = SpanRole.CALL
                calls.append(Call(span, [span]))
    return calls


class _CallGroups:
    """Union-find over inference span ids; a group remembers the response id it answers to."""

    def __init__(self, spans: list[LiteSpan]) -> None:
        self.spans = spans
        self.parent: dict[str, str] = {s[L.span_id]: s[L.span_id] for s in spans}
        self.response: dict[str, str] = {s[L.span_id]: s[L.response_id] for s in spans}

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

    def members(self) -> dict[str, list[LiteSpan]]:
        out: dict[str, list[LiteSpan]] = defaultdict(list)
        for span in self.spans:
            out[self.find(span[L.span_id])].append(span)
        return out


def _sibling_views(siblings: list[LiteSpan], groups: _CallGroups) -> None:
    """Two libraries wrapping the same SDK method without nesting their spans (Traceloop
    next to the Anthropic SDK's own span) report one request as two siblings, the inner
    inside the outer in time. Failed calls carry no response id, so time is what ties them:
    a sibling from another instrumentation scope, for the same provider, operation and model,
    lying within the other's interval, is the same call (the tightest such container)."""
    ordered = sorted(siblings, key=lambda s: (s[L.start_time], -s[L.end_time]))
    open_spans: list[LiteSpan] = []
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


def _usage_reports(siblings: list[LiteSpan], groups: _CallGroups) -> None:
    """A streamed call's usage reported after the fact (logfire: a zero-length log record
    emitted once the stream is read, next to the request span that carried no usage) belongs
    to the immediately preceding request of the same library and model."""
    by_scope: dict[str, list[LiteSpan]] = defaultdict(list)
    for span in siblings:
        by_scope[span[L.scope_name]].append(span)
    for scope, spans in by_scope.items():
        if not scope:
            continue  # unknown library: nothing says two spans come from the same one
        spans.sort(key=lambda s: (s[L.start_time], s[L.span_id]))
        for previous, span in pairwise(spans):
            if (
                span[L.duration_ns] == 0
                and has_usage(span)
                and not has_usage(previous)
                and previous[L.status_code] != "ERROR"
                and _same_request(previous, span)
                and groups.may_join(previous[L.span_id], span[L.span_id])
            ):
                groups.union(previous[L.span_id], span[L.span_id])


def _same_request(a: LiteSpan, b: LiteSpan) -> bool:
    """Nothing tells two spans apart as different requests (provider, operation, model)."""
    for index in (L.provider, L.operation):
        if a[index] and b[index] and a[index] != b[index]:
            return False
    return same_model(a[L.model], b[L.model])


def same_model(a: str, b: str) -> bool:
    """Equal, unknown on one side, or a dated snapshot of the other (gpt-4o-mini-2024-07-18)."""
    if not a or not b or a == b:
        return True
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return long.startswith(short + "-") and _SNAPSHOT_SUFFIX.fullmatch(long[len(short) + 1 :]) is not None


def _usage_fields(span: LiteSpan) -> int:
    return sum(span[i] is not None for i in _USAGE_SLOTS)


def _depth(by_id: SpansById, span: LiteSpan) -> int:
    """Known ancestors above a span (only asked for when a call has several views)."""
    depth = 0
    current = span[L.parent_span_id]
    while current in by_id and depth < MAX_HOPS:
        depth += 1
        current = by_id[current][L.parent_span_id]
    return depth


def _nearest(by_id: SpansById, span: LiteSpan, wanted: set[str]) -> str | None:
    current: str = span[L.parent_span_id]
    hops = 0
    while current and current in by_id and hops < MAX_HOPS:
        if current in wanted:
            return current
        current = by_id[current][L.parent_span_id]
        hops += 1
    return None


# -- retries -----------------------------------------------------------------------------------


def count_retries(calls: list[Call], by_id: SpansById, ordered: list[LiteSpan]) -> None:
    """Set each call's ``retries`` and ``failed``: retries the library reports or its HTTP
    attempts show, then retries the application made (see :func:`_application_retries`)."""
    attempts = _http_attempts(calls, by_id, ordered)
    for call in calls:
        resend = max((s[L.resend_count] for s in call.members), default=0)
        explicit = max((s[L.retry_count] for s in call.members), default=0)
        call.retries = max(resend, explicit, attempts.get(id(call), 0) - 1, 0)
        chosen = call.span
        call.failed = chosen[L.status_code] == "ERROR" or (
            not has_usage(chosen) and any(s[L.status_code] == "ERROR" for s in call.members)
        )
    _application_retries(calls)


def _http_attempts(calls: list[Call], by_id: SpansById, ordered: list[LiteSpan]) -> dict[int, int]:
    """id(call) -> HTTP client spans below any of its spans (one per attempt)."""
    member_of: dict[str, Call] = {}
    for call in calls:
        for span in call.members:
            member_of[span[L.span_id]] = call
    attempts: dict[int, int] = defaultdict(int)
    for span in ordered:
        if span[L.span_class] == "http":
            owner = _owning_call(span, by_id, member_of)
            if owner is not None:
                attempts[id(owner)] += 1
    return attempts


def _owning_call(span: LiteSpan, by_id: SpansById, member_of: Mapping[str, Call]) -> Call | None:
    current = span[L.parent_span_id]
    hops = 0
    while current in by_id and hops < MAX_HOPS:
        if current in member_of:
            return member_of[current]
        current = by_id[current][L.parent_span_id]
        hops += 1
    return None


def _application_retries(calls: list[Call]) -> None:
    """A retry the application made: the call right after one or more failed calls of the same
    operation and model under the same parent (any other call in between breaks the chain).
    The failed attempt knows only the model asked for (gpt-5), the success the dated model
    that answered (gpt-5-2025-08-07): :func:`same_model` treats them as one."""
    by_parent: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_parent[call.span[L.parent_span_id]].append(call)
    for group in by_parent.values():
        failures: list[Call] = []
        for call in group:
            last = failures[-1].span if failures else None
            continues = (
                last is not None
                and last[L.operation] == call.span[L.operation]
                and same_model(last[L.model], call.span[L.model])
            )
            if call.failed:
                failures = [*failures, call] if continues else [call]
            else:
                if continues:
                    call.retries += len(failures)
                failures = []


def is_unpriced(call: Call) -> bool:
    """Whether the call should have a price and has none (a failed call without usage was not billed)."""
    span = call.span
    if span[L.cost_usd] is not None:
        return False
    # A failed call that reported no usage was not billed: nothing is missing.
    return not (span[L.unpriced_reason] in ("no_usage", "") and call.failed)


def reported_cost(call: Call) -> int | None:
    """The cost a library reported for the call: on its counted span, else on any of its views."""
    value: int | None = call.span[L.reported_cost_usd]
    if value is not None:
        return value
    return next((s[L.reported_cost_usd] for s in call.members if s[L.reported_cost_usd] is not None), None)
