"""An OTLP/HTTP trace sink on loopback: decodes what the libraries' real OTLP exporters send
(protobuf, ``/v1/traces``) into the capture's span records, verbatim."""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUSES = ("UNSET", "OK", "ERROR")


def value_of(value: Any) -> Any:
    """An OTLP AnyValue as plain JSON (arrays as lists, maps as dicts)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None if which is None else getattr(value, which)


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in pairs}


def spans_of(request: ExportTraceServiceRequest) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource attributes, span record) for every span of one export request."""
    out = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = {"name": scope_spans.scope.name, "version": scope_spans.scope.version or None}
            for span in scope_spans.spans:
                record = {
                    "name": span.name,
                    "kind": KINDS[span.kind] if span.kind < len(KINDS) else "UNSPECIFIED",
                    "status": {"code": STATUSES[span.status.code], "description": span.status.message or None},
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex() or None,
                    "scope": scope,
                    "start_unix_nano": span.start_time_unix_nano,
                    "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
                    "attributes": attributes_of(span.attributes),
                    "events": [
                        {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": attributes_of(e.attributes)}
                        for e in span.events
                    ],
                    "links": len(span.links),
                }
                out.append((resource, record))
    return out


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by content-length or chunked (Node's exporter streams it chunked)."""
    if handler.headers.get("content-length"):
        return handler.rfile.read(int(handler.headers["content-length"]))
    if handler.headers.get("transfer-encoding", "").lower() != "chunked":
        return b""
    body = b""
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            handler.rfile.readline()
            return body
        body += handler.rfile.read(size)
        handler.rfile.readline()


class Sink:
    """Collects every span exported to ``{url}/v1/traces``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.requests = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = read_body(self)
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                status = 200
                try:
                    request = ExportTraceServiceRequest.FromString(body)
                    with sink._lock:
                        sink.received.extend(spans_of(request))
                        sink.requests += 1
                except DecodeError as exc:
                    status = 400
                    sink.errors.append(f"{self.path}: {self.headers.get('content-type')}: {exc}")
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
