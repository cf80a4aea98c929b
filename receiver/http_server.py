"""OTLP/HTTP: ``POST /v1/traces`` (and the Langfuse-style ``/api/public/otel/v1/traces``).

A raw ASGI app (no framework on the hot path) served by uvicorn. Protobuf and JSON bodies,
gzip or deflate Content-Encoding, size bounded before and after decompression. Responses
follow https://opentelemetry.io/docs/specs/otlp/#otlphttp-response: 200 with
ExportTraceServiceResponse (partial_success when spans were rejected) in the request's
encoding; 400 / 401 / 413 / 415 with a google.rpc.Status body; 503 with Retry-After.
The CPU work runs on a bounded thread pool so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otelspend.receiver import errors
from otelspend.receiver.errors import ExportError
from otelspend.receiver.ingest import Ingest

PATHS = frozenset({"/v1/traces", "/api/public/otel/v1/traces"})
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class OtlpHttpApp:
    """The OTLP/HTTP receiver as a small ASGI app: ``POST /v1/traces`` in protobuf or JSON, gzip or
    deflate, bounded in size; decoding and storing run on its own thread pool, off the event loop.
    """

    def __init__(self, ingest: Ingest, *, max_request_bytes: int, workers: int) -> None:
        self.ingest = ingest
        self.limit = max_request_bytes
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: answer lifespan events; route ``POST /v1/traces`` to the ingest, everything else 404/405."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path not in PATHS:
            await _plain(send, 404, b"not found: OTLP traces are POSTed to /v1/traces\n")
            return
        if scope["method"] != "POST":
            await _plain(send, 405, b"method not allowed: POST OTLP requests\n", [(b"allow", b"POST")])
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        json_body = content_type == JSON
        try:
            if content_type not in (PROTOBUF, JSON):
                raise errors.unsupported_media(content_type)
            token = self.ingest.authenticate(headers.get("authorization"))
            body = await self._body(receive, headers)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self.executor,
                lambda: self.ingest.export(body, json_body=json_body, token=token, transport="http"),
            )
        except ExportError as exc:
            await _error(send, exc, json_body)
            return
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        await _message(send, 200, response, json_body)

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limit:
            raise errors.too_large(int(declared), self.limit)
        chunks = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise errors.too_large(size, self.limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "deflate"):
            body = self._inflate(body, gzip=encoding == "gzip")
        elif encoding not in ("", "identity"):
            raise errors.undecodable(f"unsupported Content-Encoding {encoding!r} (use gzip)")
        return body

    def _inflate(self, body: bytes, *, gzip: bool) -> bytes:
        inflater = zlib.decompressobj(wbits=31 if gzip else 15)
        try:
            out = inflater.decompress(body, self.limit + 1)
        except zlib.error as exc:
            raise errors.undecodable(f"corrupt {'gzip' if gzip else 'deflate'} body: {exc}") from None
        if len(out) > self.limit or inflater.unconsumed_tail:
            raise errors.too_large(self.limit + 1, self.limit)
        if not inflater.eof:
            raise errors.undecodable("truncated compressed body")
        return out

    def shutdown(self) -> None:
        """Wait for requests in flight on the worker pool to finish."""
        self.executor.shutdown(wait=True)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def _message(
    send: Send, status: int, message: Any, json_body: bool, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    if json_body:
        body = json_format.MessageToJson(message, indent=None).encode()
        content_type = JSON.encode()
    else:
        body = message.SerializeToString()
        content_type = PROTOBUF.encode()
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, exc: ExportError, json_body: bool) -> None:
    status = status_pb2.Status(code=exc.grpc_code.value[0], message=exc.message)
    extra = []
    if exc.retry_after_seconds is not None:
        extra.append((b"retry-after", str(exc.retry_after_seconds).encode()))
    if exc.http_status == 401:
        extra.append((b"www-authenticate", b'Bearer realm="otelspend-otlp"'))
    await _message(send, exc.http_status, status, json_body, extra)
