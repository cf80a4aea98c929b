"""The store failing or stalling: receivers answer UNAVAILABLE / 503 with a retry hint, the
ingest queue stays within its bound, readiness says why, and once the store is back every
acknowledged span is stored exactly once.

Faults are injected into the running app's span writer (``app.pipeline.writer.write``), the
one call that carries spans into ClickHouse: it raises (store down) or blocks (store hung).
ClickHouse itself is the real chDB.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

from bench.otlp_client import Sender, transport_for
from bench.server import ServerProcess, free_port
from bench.traces import Workload
from bench.truth import compare, expected, store_totals
from tests.conftest import Running, wait_for
from tests.otel import tracer_provider
from tests.resilience.conftest import payloads

QUEUE_SPANS = 1_000  # the smallest queue the settings allow: ten requests of the workload
FAULT_SETTINGS: dict[str, Any] = {"pipeline": {"queue_spans": QUEUE_SPANS, "retry_after_seconds": 1}}


def _endpoint(server: Running, transport: str) -> str:
    return f"grpc://{server.grpc_endpoint}" if transport == "grpc" else server.http_url


class Outage:
    """A store that fails every write until ``end()``."""

    def __init__(self) -> None:
        self._down = threading.Event()
        self._down.set()

    def __call__(self) -> None:
        if self._down.is_set():
            raise ConnectionError("injected fault: ClickHouse unreachable")

    def end(self) -> None:
        self._down.clear()


def _inject(monkeypatch: pytest.MonkeyPatch, server: Running, fault: Callable[[], None]) -> None:
    writer = server.app.pipeline.writer
    real_write = writer.write

    def write(*args: Any, **kwargs: Any) -> Any:
        fault()
        return real_write(*args, **kwargs)

    monkeypatch.setattr(writer, "write", write)


def _readyz(server: Running) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.api_url}/readyz", timeout=10)
    return response.status_code, response.json()


def _assert_everything_stored(server: Running, workload: Workload) -> None:
    server.wait_idle(60)
    assert compare(expected(workload), store_totals(server.store)) == []


@pytest.mark.parametrize(
    ("transport", "workers"),
    [
        pytest.param("grpc", 0, id="grpc"),
        pytest.param("http", 0, id="http"),
        pytest.param("grpc", 2, id="grpc-workers"),
    ],
)
def test_store_down_refuses_with_retry_hint_and_stores_everything_after(
    start_server: Callable[..., Running],
    workload: Workload,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    workers: int,
) -> None:
    server = start_server(pipeline={**FAULT_SETTINGS["pipeline"], "workers": workers})
    outage = Outage()
    _inject(monkeypatch, server, outage)
    endpoint = _endpoint(server, transport)
    client = transport_for(endpoint)
    requests = payloads(workload)

    # Accepted into the write-ahead log before the pipeline learns the store is down.
    assert client.export(requests[0], 10).ok
    wait_for(lambda: not server.app.pipeline.store_healthy, 30, "the pipeline to see the store failing")

    refused = client.export(requests[1], 10)
    assert not refused.ok and refused.retryable
    assert refused.status == ("UNAVAILABLE" if transport == "grpc" else "503")
    assert refused.retry_after_seconds == 1
    assert "store unavailable" in refused.message
    status, body = _readyz(server)
    assert status == 503 and "store failing" in body["checks"]["pipeline"]

    # Offered load while the store is down is refused, not queued.
    sender = Sender(endpoint, concurrency=4, max_retry_delay_seconds=0.2, give_up_seconds=90)
    sender.start(requests[1:])
    # Refused requests add up to three times the queue's capacity while nothing is queued.
    wait_for(lambda: sum(sender.stats.refusals.values()) >= len(requests), 60, "refusals")
    assert sender.acked_count == 0
    assert server.app.pipeline.queued_spans == workload.requests[0].spans <= QUEUE_SPANS
    assert server.app.wal.pending_bytes == len(requests[0])

    outage.end()
    stats = sender.wait(90)
    assert stats.failures == [] and stats.acked_count == len(requests) - 1
    _assert_everything_stored(server, workload)
    assert _readyz(server)[0] == 200
    client.close()


@pytest.mark.parametrize(
    ("transport", "workers"),
    [
        pytest.param("grpc", 0, id="grpc"),
        pytest.param("http", 0, id="http"),
        pytest.param("http", 2, id="http-workers"),
    ],
)
def test_store_hung_fills_the_bounded_queue_then_refuses(
    start_server: Callable[..., Running],
    workload: Workload,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    workers: int,
) -> None:
    server = start_server(pipeline={**FAULT_SETTINGS["pipeline"], "workers": workers})
    released = threading.Event()
    _inject(monkeypatch, server, lambda: released.wait(120))
    endpoint = _endpoint(server, transport)
    sender = Sender(endpoint, concurrency=4, max_retry_delay_seconds=0.2, give_up_seconds=90)
    sender.start(payloads(workload))

    wait_for(lambda: sum(sender.stats.refusals.values()) >= 20, 60, "refusals once the queue is full")
    pipeline = server.app.pipeline
    assert pipeline.store_healthy, "a hung store is not a failing one"
    assert pipeline.queued_spans <= QUEUE_SPANS
    assert sender.acked_count <= QUEUE_SPANS // 100
    status, body = _readyz(server)
    assert status == 503 and body["checks"]["pipeline"] == "ingest queue full"
    metrics = httpx.get(f"{server.api_url}/metrics", timeout=10).text
    assert f"otelspend_queue_spans {pipeline.queued_spans}" in metrics

    released.set()
    stats = sender.wait(90)
    assert stats.failures == [] and stats.acked_count == len(workload.requests)
    _assert_everything_stored(server, workload)


def test_official_exporter_rides_out_a_store_outage(
    start_server: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OTel SDK's gRPC exporter retries UNAVAILABLE as told by RetryInfo: nothing is lost."""
    server = start_server(**FAULT_SETTINGS)
    outage = Outage()
    _inject(monkeypatch, server, outage)
    with tracer_provider(server, "grpc", service="outage") as provider:
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("first", kind=SpanKind.SERVER):
            pass  # accepted: the store is not known to be down yet
        wait_for(lambda: not server.app.pipeline.store_healthy, 30, "the store failing")
        exported = threading.Thread(target=lambda: tracer.start_span("second").end(), daemon=True)
        exported.start()  # SimpleSpanProcessor: end() blocks while the exporter retries
        wait_for(lambda: server.app.metrics.total("otelspend_requests_refused_total") >= 1, 30, "a refusal")
        outage.end()
        exported.join(60)
        assert not exported.is_alive()
    server.wait_idle(60)
    assert sorted(r[0] for r in server.rows("SELECT name FROM {db}.spans FINAL")) == ["first", "second"]


def test_unreachable_clickhouse_server_at_start_answers_503(
    serve: Callable[..., ServerProcess], workload: Workload
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    # The receivers open at once; the store is retried in the background.
    server = serve(dsn=closed, env={"OTELSPEND_CLICKHOUSE_STARTUP_WAIT_SECONDS": "1"})
    reply = transport_for(server.http_endpoint).export(workload.requests[0].payload, 10)
    assert reply.status == "503" and reply.retry_after_seconds is not None
    assert server.readyz()[0] == 503
