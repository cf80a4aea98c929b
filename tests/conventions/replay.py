"""Replay captured spans through the real OTLP path: rebuild each span as the OTel SDK would
hand it to its exporter (``ReadableSpan`` with the captured ids, parent, kind, status,
attributes, events, times, resource and instrumentation scope) and send it with the official
OTLP exporter, in the order the SDK exports (by end time), in several batches.

Only the clock moves: timestamps are shifted so the run happened moments ago, relative
offsets kept. Everything else goes out verbatim.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.conventions.capture import end_ns
from tests.otel import Transport, exporter

EXPORT_BATCH = 4
"""Spans per export call: small, so one run arrives over several requests (children first)."""


def shift_to_now(spans: Iterable[dict[str, Any]], seconds_ago: float = 5.0) -> int:
    """The offset (ns) that moves the earliest span start to ``seconds_ago`` before now."""
    earliest = min(span["start_unix_nano"] for span in spans)
    return time.time_ns() - int(seconds_ago * 1e9) - earliest


def readable_span(span: dict[str, Any], resource: Resource, shift_ns: int) -> ReadableSpan:
    """One captured span as the SDK's exporter would receive it."""
    trace_id = int(span["trace_id"], 16)
    context = SpanContext(trace_id, int(span["span_id"], 16), is_remote=False, trace_flags=TraceFlags(1))
    parent = None
    if span.get("parent_span_id"):
        parent = SpanContext(trace_id, int(span["parent_span_id"], 16), is_remote=False, trace_flags=TraceFlags(1))
    start = span["start_unix_nano"] + shift_ns
    end = end_ns(span) + shift_ns
    code = StatusCode[span["status"]["code"]]
    # The SDK only keeps a status description on ERROR.
    description = span["status"].get("description") if code is StatusCode.ERROR else None
    events = [
        Event(e["name"], e.get("attributes") or {}, timestamp=e.get("time_unix_nano", end)) for e in span["events"]
    ]
    scope = span["scope"]
    return ReadableSpan(
        name=span["name"],
        context=context,
        parent=parent,
        resource=resource,
        attributes=span["attributes"],
        events=events,
        kind=SpanKind[span["kind"]],
        status=Status(code, description),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(scope["name"], scope.get("version") or None),
    )


def export_spans(
    server: Any,
    spans: Sequence[dict[str, Any]],
    resource: dict[str, Any],
    shift_ns: int,
    transport: Transport = "grpc",
) -> None:
    """Send spans over OTLP as a BatchSpanProcessor would: by end time, in small batches."""
    sdk_resource = Resource(resource)  # verbatim: no SDK defaults merged in
    ordered = sorted(spans, key=end_ns)
    out = exporter(server, transport)
    try:
        for start in range(0, len(ordered), EXPORT_BATCH):
            batch = [readable_span(s, sdk_resource, shift_ns) for s in ordered[start : start + EXPORT_BATCH]]
            result = out.export(batch)
            assert result is SpanExportResult.SUCCESS, f"export failed: {result}"
    finally:
        out.shutdown()
