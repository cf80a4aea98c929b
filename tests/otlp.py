"""Build OTLP protobuf requests by hand (for protocol-level tests)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def any_value(value: Any) -> AnyValue:
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            out.kvlist_value.values.append(KeyValue(key=key, value=any_value(item)))
    elif isinstance(value, list | tuple):
        for item in value:
            out.array_value.values.append(any_value(item))
    else:
        out.string_value = str(value)
    return out


def attributes(values: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in values.items()]


def span(
    *,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    parent: bytes = b"",
    name: str = "span",
    kind: int = Span.SPAN_KIND_INTERNAL,
    start_ns: int | None = None,
    duration_ms: float = 10.0,
    attrs: Mapping[str, Any] | None = None,
    status: int = 0,
    status_message: str = "",
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    links: Sequence[Mapping[str, Any]] = (),
) -> Span:
    start = start_ns if start_ns is not None else time.time_ns()
    out = Span(
        trace_id=trace_id if trace_id is not None else os.urandom(16),
        span_id=span_id if span_id is not None else os.urandom(8),
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_ms * 1e6),
    )
    out.attributes.extend(attributes(attrs or {}))
    out.status.code = status
    out.status.message = status_message
    for event_name, event_attrs in events:
        event = out.events.add(name=event_name, time_unix_nano=start + 1000)
        event.attributes.extend(attributes(event_attrs))
    for link_attrs in links:
        link = out.links.add(trace_id=os.urandom(16), span_id=os.urandom(8))
        link.attributes.extend(attributes(link_attrs))
    return out


def request(
    spans: Sequence[Span],
    *,
    resource: Mapping[str, Any] | None = None,
    scope: str = "test.scope",
    scope_version: str = "1.0",
) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    resource_spans = out.resource_spans.add()
    resource_spans.resource.attributes.extend(attributes({"service.name": "svc", **(resource or {})}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.scope.version = scope_version
    scope_spans.spans.extend(spans)
    return out


def post(server: Any, req: ExportTraceServiceRequest, headers: Mapping[str, str] | None = None) -> Any:
    """POST a protobuf request to the server's OTLP/HTTP receiver; raises on a non-2xx answer."""
    import httpx

    response = httpx.post(
        f"{server.http_url}/v1/traces",
        content=req.SerializeToString(),
        headers={"content-type": "application/x-protobuf", **(headers or {})},
        timeout=30,
    )
    response.raise_for_status()
    return response


class Trace:
    """Spans of one trace built in parent/child order, exported in any order."""

    def __init__(self, start_ns: int | None = None) -> None:
        self.trace_id = os.urandom(16)
        self.start_ns = start_ns or time.time_ns()
        self.offset_ms = 0.0

    @property
    def run_id(self) -> str:
        return self.trace_id.hex()

    def span(self, parent: Span | None = None, *, offset_ms: float | None = None, **kwargs: Any) -> Span:
        if offset_ms is None:
            self.offset_ms += 1
            offset_ms = self.offset_ms
        return span(
            trace_id=self.trace_id,
            parent=parent.span_id if parent is not None else b"",
            start_ns=self.start_ns + int(offset_ms * 1e6),
            **kwargs,
        )
