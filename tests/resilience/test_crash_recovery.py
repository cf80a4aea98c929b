"""SIGKILL mid-load, restart on the same data and ports, exporters retry: every acknowledged
span is stored, and runs and rollups equal an uninterrupted ingest of the same traffic,
with nothing counted twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from bench.otlp_client import Sender
from bench.server import ServerProcess, free_port
from bench.traces import Workload
from bench.truth import compare, expected
from tests.resilience.conftest import ONE_PROCESS, payloads


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _recovered(metrics: dict[str, float]) -> bool:
    queued = metrics["otelspend_queue_spans"]
    assert queued >= 0, f"the ingest queue gauge went negative after recovery: {queued}"
    return queued == 0 and metrics["otelspend_open_runs"] == 0 and metrics["otelspend_wal_pending_bytes"] == 0


@pytest.mark.parametrize(
    ("transport", "moment", "mode"),
    [
        pytest.param("grpc", "mid_load", {}, id="grpc-kill-mid-load"),
        pytest.param("grpc", "mid_load", ONE_PROCESS, id="grpc-kill-mid-load-one-process"),
        pytest.param("http", "spans_stored_runs_pending", {}, id="http-kill-before-runs-emitted"),
    ],
)
def test_sigkill_loses_nothing_acknowledged_and_counts_nothing_twice(
    serve: Callable[..., ServerProcess],
    workload: Workload,
    reference_totals: dict[str, Any],
    transport: str,
    moment: str,
    mode: dict[str, str],
) -> None:
    ports = {"grpc_port": free_port(), "http_port": free_port(), "api_port": free_port()}
    # Runs settle slowly here so the kill lands while spans are stored but runs not yet emitted.
    env = {"OTELSPEND_RUNS_SETTLE_SECONDS": "3"} if moment == "spans_stored_runs_pending" else {}
    env.update(mode)
    server = serve(env=env, **ports)
    sender = Sender(server.endpoint(transport), concurrency=4, max_retry_delay_seconds=0.3, give_up_seconds=90)
    sender.start(payloads(workload))

    if moment == "mid_load":
        _wait(lambda: sender.acked_count >= 4, 60, "the first requests acknowledged")
    else:
        _wait(lambda: sender.acked_count == len(workload.requests), 60, "every request acknowledged")
        metrics = server.wait_until(
            lambda m: m.get("otelspend_spans_written_total", 0) >= workload.spans, 60, "every span written"
        )
        assert metrics.get("otelspend_runs_emitted_total", 0) < len(workload.traces), "runs still pending"
    acked_before_kill = sender.acked_count
    workers = psutil.Process(server.pid).children()
    assert server.kill() == -9
    # Its receiver workers see the end of their socket and exit: no orphan outlives the main process.
    _, orphans = psutil.wait_procs(workers, timeout=30)
    assert orphans == [], [p.pid for p in orphans]

    # Same data directory, same ports: the exporters' retries find it again.
    restarted = serve(env=env, **ports)
    stats = sender.wait(120)
    assert stats.failures == [], stats.failures
    assert stats.acked_count == len(workload.requests)
    if moment == "mid_load":
        assert acked_before_kill < len(workload.requests), "the kill must land before the load ends"
        assert sum(stats.refusals.values()) > 0, "requests in flight at the kill are retried"
    restarted.wait_until(_recovered, 60, "recovered spans stored and runs emitted")
    assert restarted.terminate() == 0
    totals = restarted.stored_totals()

    assert compare(expected(workload), totals) == []
    assert totals == reference_totals
