"""Drive the official OpenTelemetry SDK and OTLP exporters against a test server."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

Transport = Literal["grpc", "http"]


def exporter(server: Any, transport: Transport, headers: Mapping[str, str] | None = None) -> SpanExporter:
    if transport == "grpc":
        return GrpcExporter(endpoint=server.grpc_endpoint, insecure=True, headers=dict(headers or {}), timeout=10)
    return HttpExporter(endpoint=f"{server.http_url}/v1/traces", headers=dict(headers or {}), timeout=10)


@contextmanager
def tracer_provider(
    server: Any,
    transport: Transport = "grpc",
    *,
    service: str = "test-service",
    resource: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[TracerProvider]:
    """A provider exporting each span as it ends (children reach the server before roots)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, **(resource or {})}))
    provider.add_span_processor(SimpleSpanProcessor(exporter(server, transport, headers)))
    try:
        yield provider
    finally:
        provider.force_flush()
        provider.shutdown()
