"""A small OTLP trace client that knows exactly which requests were acknowledged.

The official exporters hide that (they retry and log); a load driver and the fault tests
need it: a request is *acknowledged* when a success reply arrived, and only then. Like the
OTel SDK exporters, ``Sender`` retries UNAVAILABLE / RESOURCE_EXHAUSTED (gRPC) and 429 /
502 / 503 / 504 (HTTP) and connection failures, waiting as long as the server's RetryInfo
or Retry-After asks (capped), else with jittered exponential backoff; any other answer is
permanent and recorded. Requests are pre-encoded payloads, sent by ``concurrency`` worker
threads, each with its own channel or HTTP connection, like independent exporters. Like
them too, it sends the headers of ``OTEL_EXPORTER_OTLP_HEADERS`` (an ingest token).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
import httpx
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.util.re import parse_env_headers

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
    }
)
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
BACKOFF_START_SECONDS = 0.05
DEFAULT_MAX_RETRY_DELAY_SECONDS = 5.0


@dataclass(frozen=True)
class Reply:
    """The server's answer to one export request, as a client acts on it."""

    ok: bool
    status: str
    """'OK', a gRPC code name, an HTTP status, or 'connection'."""
    retryable: bool = False
    retry_after_seconds: float | None = None
    rejected_spans: int = 0
    message: str = ""


class Transport(Protocol):
    """One connection sending OTLP/protobuf export requests."""

    def export(self, payload: bytes, timeout_seconds: float) -> Reply:
        """Send one request and wait up to ``timeout_seconds`` for the answer."""

    def close(self) -> None:
        """Close the connection."""


def env_headers() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` as the SDK exporters read it (names lower case)."""
    return parse_env_headers(os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""), liberal=True)


class GrpcTransport:
    """One channel; reconnects fast so a restarted server is found again within ~1 s."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", 64 << 20),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self.call = self.channel.unary_unary(
            EXPORT_METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )
        self.metadata = tuple(env_headers().items())

    def export(self, payload: bytes, timeout_seconds: float) -> Reply:
        """Call ``TraceService/Export``; gRPC codes the exporters retry are marked retryable."""
        try:
            response = self.call(payload, timeout=timeout_seconds, metadata=self.metadata)
        except grpc.RpcError as exc:
            code = exc.code()
            return Reply(
                False,
                code.name,
                code in RETRYABLE_GRPC,
                _retry_info(exc.trailing_metadata() or ()),
                message=exc.details() or "",
            )
        partial = response.partial_success
        return Reply(True, "OK", rejected_spans=partial.rejected_spans, message=partial.error_message)

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


class HttpTransport:
    """``POST /v1/traces`` over one HTTP/1.1 connection pool."""

    def __init__(self, base_url: str, path: str = "/v1/traces") -> None:
        self.url = base_url.rstrip("/") + path
        self.client = httpx.Client(headers={"content-type": "application/x-protobuf", **env_headers()})

    def export(self, payload: bytes, timeout_seconds: float) -> Reply:
        """Post one request; 429 / 502 / 503 / 504 and connection errors are retryable (Retry-After honoured)."""
        try:
            response = self.client.post(self.url, content=payload, timeout=timeout_seconds)
        except httpx.TransportError as exc:
            return Reply(False, "connection", True, message=str(exc))
        if response.status_code == 200:
            body = ExportTraceServiceResponse.FromString(response.content)
            partial = body.partial_success
            return Reply(True, "OK", rejected_spans=partial.rejected_spans, message=partial.error_message)
        retry_after = response.headers.get("retry-after")
        return Reply(
            False,
            str(response.status_code),
            response.status_code in RETRYABLE_HTTP,
            float(retry_after) if retry_after and retry_after.isdigit() else None,
            message=_status_message(response.content),
        )

    def close(self) -> None:
        """Close the client."""
        self.client.close()


def transport_for(endpoint: str) -> Transport:
    """``grpc://host:port`` or ``http://host:port``."""
    if endpoint.startswith("grpc://"):
        return GrpcTransport(endpoint[len("grpc://") :])
    if endpoint.startswith(("http://", "https://")):
        return HttpTransport(endpoint)
    raise ValueError(f"endpoint {endpoint!r}: expected grpc://host:port or http://host:port")


def _retry_info(metadata: Sequence[tuple[str, str | bytes]]) -> float | None:
    for key, value in metadata:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def _status_message(body: bytes) -> str:
    try:
        return status_pb2.Status.FromString(body).message
    except Exception:  # not a google.rpc.Status (e.g. a JSON error body): keep it short
        return body[:200].decode("utf-8", "replace")


@dataclass
class SendStats:
    """What happened to each request; indexes follow the payload list."""

    acked: list[bool]
    ack_seconds: list[float] = field(default_factory=list)
    """Latency of each acknowledged request's successful attempt."""
    total_seconds: list[float] = field(default_factory=list)
    """First attempt to acknowledgement, retries included."""
    attempts: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    """Retryable answers by status."""
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    """(request index, status, message) of requests given up on."""
    rejected_spans: int = 0
    rejection_messages: list[str] = field(default_factory=list)
    first_send: float | None = None
    last_ack: float | None = None
    """time.perf_counter() values."""

    @property
    def acked_count(self) -> int:
        """Requests acknowledged."""
        return sum(self.acked)


class Sender:
    """Send payloads with ``concurrency`` workers; retry what the server says to retry.

    ``duration_seconds`` stops *starting* requests after that long; ``give_up_seconds``
    bounds how long one request is retried. Use ``start`` + ``wait`` to act while the load
    runs (the fault tests kill the server mid-load), or ``run`` to block.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        concurrency: int = 4,
        timeout_seconds: float = 10.0,
        max_retry_delay_seconds: float = DEFAULT_MAX_RETRY_DELAY_SECONDS,
        give_up_seconds: float = 120.0,
        duration_seconds: float | None = None,
        seed: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.timeout = timeout_seconds
        self.max_delay = max_retry_delay_seconds
        self.give_up = give_up_seconds
        self.duration = duration_seconds
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._next = 0
        self._payloads: Sequence[bytes] = ()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._acked = 0
        self.stats = SendStats([])

    @property
    def acked_count(self) -> int:
        """Requests acknowledged so far (live, while sending)."""
        return self._acked

    @property
    def threads(self) -> list[threading.Thread]:
        """The worker threads (alive while sending)."""
        return list(self._threads)

    def start(self, payloads: Sequence[bytes]) -> None:
        """Start sending ``payloads`` on the worker threads; returns at once."""
        self._payloads = payloads
        self.stats = SendStats([False] * len(payloads))
        self._started = time.perf_counter()
        self._threads = [
            threading.Thread(target=self._worker, name=f"otlp-send-{n}", daemon=True) for n in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Start no new request and abandon retries (in-flight attempts finish)."""
        self._stop.set()

    def wait(self, timeout_seconds: float | None = None) -> SendStats:
        """Wait for the workers to finish (TimeoutError after ``timeout_seconds``); the stats."""
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            raise TimeoutError(f"sending did not finish within {timeout_seconds}s")
        return self.stats

    def run(self, payloads: Sequence[bytes]) -> SendStats:
        """Send every payload and wait for the end."""
        self.start(payloads)
        return self.wait()

    def _take(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._next >= len(self._payloads):
                return None
            if self.duration is not None and time.perf_counter() - self._started > self.duration:
                return None
            index = self._next
            self._next += 1
            if self.stats.first_send is None:
                self.stats.first_send = time.perf_counter()
            return index

    def _worker(self) -> None:
        transport = transport_for(self.endpoint)
        try:
            while (index := self._take()) is not None:
                self._send(transport, index)
        finally:
            with contextlib.suppress(Exception):
                transport.close()

    def _send(self, transport: Transport, index: int) -> None:
        payload = self._payloads[index]
        began = time.perf_counter()
        delay = BACKOFF_START_SECONDS
        while True:
            attempt_start = time.perf_counter()
            reply = transport.export(payload, self.timeout)
            now = time.perf_counter()
            with self._lock:
                self.stats.attempts += 1
                if reply.ok:
                    self.stats.acked[index] = True
                    self._acked += 1
                    self.stats.ack_seconds.append(now - attempt_start)
                    self.stats.total_seconds.append(now - began)
                    self.stats.last_ack = now
                    if reply.rejected_spans:
                        self.stats.rejected_spans += reply.rejected_spans
                        if len(self.stats.rejection_messages) < 10:
                            self.stats.rejection_messages.append(reply.message)
                    return
                if reply.retryable:
                    self.stats.refusals[reply.status] += 1
                if not reply.retryable or self._stop.is_set() or now - began > self.give_up:
                    self.stats.failures.append((index, reply.status, reply.message[:300]))
                    return
                jitter = 0.8 + 0.4 * self._random.random()
            hinted = reply.retry_after_seconds
            wait = min(self.max_delay, hinted if hinted is not None else delay) * jitter
            delay = min(delay * 2, self.max_delay)
            self._stop.wait(wait)
