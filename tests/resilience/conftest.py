"""Fixtures for the fault tests: ``otelspend serve`` child processes on loopback, each on its
own data directory, and one small seeded workload shared by every test (same bytes, so a
crashed ingest can be compared with an uninterrupted reference)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.server import ServerProcess
from bench.traces import Workload, generate
from tests import canary

SERVER_ENV = {
    "OTELSPEND_NODE_ID": "resilience",
    "OTELSPEND_RUNS_SETTLE_SECONDS": "0.3",
    "OTELSPEND_RUNS_ROOT_WAIT_SECONDS": "2",
    "OTELSPEND_CLICKHOUSE_FLUSH_INTERVAL_MS": "20",
    "OTELSPEND_PIPELINE_RETRY_AFTER_SECONDS": "1",
    "OTELSPEND_PIPELINE_WORKERS": "2",
}
"""Short run settling so tests finish fast; two receiver worker processes beside the main one
(whatever the machine's cores), so every fault test runs the multi-process layout; everything
else is the production default. Tests of the single-process layout pass ``ONE_PROCESS``."""

ONE_PROCESS = {"OTELSPEND_PIPELINE_WORKERS": "0"}
MODES = [pytest.param({}, id="workers"), pytest.param(ONE_PROCESS, id="one-process")]
"""Parametrize a fault test over both process layouts (env added to the server's)."""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``otelspend serve`` children (API and ingest tokens: the canaries, from files);
    any still running at teardown is killed, and every child's log is checked for them."""
    started: list[ServerProcess] = []
    secrets = canary.secret_files(tmp_path / "secrets")

    def start(name: str = "data", env: dict[str, str] | None = None, **kwargs: Any) -> ServerProcess:
        server = ServerProcess(tmp_path / name, env={**SERVER_ENV, **secrets, **(env or {})}, **kwargs)
        started.append(server)
        server.start()
        canary.register(api=server.api_address, otlp_http=server.http_address)
        return server

    yield start
    for server in started:
        if server.alive():
            server.kill()
        canary.check_file(server.log_path, f"log of otelspend serve in {server.data_dir}")


@pytest.fixture(scope="session")
def workload() -> Workload:
    """~3,000 spans of agent traces in 30 requests, traces split across requests."""
    return generate(seed=7, spans=3_000, batch_spans=100, base_ns=time.time_ns() - 600 * 10**9)


@pytest.fixture(scope="session")
def reference_totals(workload: Workload, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Stored totals of an uninterrupted ingest of ``workload`` (the yardstick after a crash)."""
    from bench.otlp_client import Sender

    directory = tmp_path_factory.mktemp("reference")
    env = {**SERVER_ENV, **canary.secret_files(directory / "secrets")}
    server = ServerProcess(directory / "data", env=env).start()
    try:
        stats = Sender(server.grpc_endpoint, concurrency=4).run(payloads(workload))
        assert stats.acked_count == len(workload.requests), stats.failures
        server.wait_stored(workload.spans, len(workload.traces), timeout_seconds=120)
    finally:
        server.terminate()
        canary.check_file(server.log_path, "log of the reference otelspend serve")
    return server.stored_totals()


def payloads(workload: Workload) -> list[bytes]:
    return [request.payload for request in workload.requests]


def span_ids(payload: bytes) -> set[str]:
    """``trace_id:span_id`` of every span in an encoded request."""
    request = ExportTraceServiceRequest.FromString(payload)
    return {
        f"{span.trace_id.hex()}:{span.span_id.hex()}"
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
