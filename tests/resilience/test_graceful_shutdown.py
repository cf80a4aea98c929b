"""SIGTERM flushes everything acknowledged: spans still queued are stored, open runs are
emitted, the write-ahead log is checkpointed, and a restart has nothing to replay."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import psutil
import pytest

from bench.otlp_client import Sender
from bench.server import ServerProcess
from bench.traces import Workload
from bench.truth import compare, expected
from tests.resilience.conftest import MODES, payloads, span_ids

SLOW_PIPELINE = {
    "OTELSPEND_RUNS_SETTLE_SECONDS": "30",  # no run would be emitted before the SIGTERM
    "OTELSPEND_CLICKHOUSE_FLUSH_INTERVAL_MS": "2000",  # spans wait in the queue
}


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_after_acknowledgement_stores_and_emits_everything(
    serve: Callable[..., ServerProcess], workload: Workload, mode: dict[str, str]
) -> None:
    server = serve(env={**SLOW_PIPELINE, **mode})
    processes = _tree(server)
    stats = Sender(server.grpc_endpoint, concurrency=4).run(payloads(workload))
    assert stats.acked_count == len(workload.requests)
    metrics = server.metrics()
    assert metrics.get("otelspend_runs_emitted_total", 0) == 0, "runs are still open at the SIGTERM"

    assert server.terminate() == 0
    _assert_all_exited(processes)
    assert json.loads((server.data_dir / "state.json").read_text())["clean"] is True
    assert compare(expected(workload), server.stored_totals()) == []

    # Nothing is left to replay: a restart writes no span and changes no run. (It re-reads
    # runs ingested in the last seconds before the stop, finds them unchanged.)
    restarted = serve()
    metrics = restarted.wait_until(
        lambda m: m["otelspend_open_runs"] == 0 and m["otelspend_queue_spans"] == 0, 60, "restart settled"
    )
    assert metrics["otelspend_wal_pending_bytes"] == 0
    assert metrics.get("otelspend_spans_written_total", 0) == 0
    assert metrics.get("otelspend_runs_emitted_total", 0) == 0
    assert restarted.terminate() == 0
    assert compare(expected(workload), restarted.stored_totals()) == []


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_mid_load_keeps_every_acknowledged_span(
    serve: Callable[..., ServerProcess], workload: Workload, mode: dict[str, str]
) -> None:
    server = serve(env={"OTELSPEND_RUNS_SETTLE_SECONDS": "30", **mode})
    processes = _tree(server)
    sender = Sender(server.http_endpoint, concurrency=2, max_retry_delay_seconds=0.2, give_up_seconds=5)
    sender.start(payloads(workload))
    deadline = time.monotonic() + 60
    while sender.acked_count < 4:
        assert time.monotonic() < deadline, "no request acknowledged"
        time.sleep(0.01)
    assert server.terminate() == 0
    _assert_all_exited(processes)
    sender.stop()  # the exporters give up on a server that is gone
    stats = sender.wait(60)

    acked = set().union(*(span_ids(r.payload) for r, ok in zip(workload.requests, stats.acked, strict=True) if ok))
    sent = set().union(*(span_ids(r.payload) for r in workload.requests))
    assert 0 < len(acked) < len(sent), "the SIGTERM must land mid-load"
    totals = server.stored_totals(span_ids=True)
    stored = set(totals["span_ids"])
    assert not acked - stored, f"{len(acked - stored)} acknowledged span(s) missing"
    assert stored <= sent
    assert totals["spans"] == totals["distinct_spans"] == len(stored)
    # Every stored span's run was emitted once, and the rollups agree with the runs.
    traces = {span_id.split(":")[0] for span_id in stored}
    assert totals["runs"]["runs"] == len(traces) == totals["rollup_runs"]["runs"] == totals["rollup_calls_runs"]
    assert totals["runs"]["spans"] == len(stored)
    for key in ("llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd"):
        assert totals["runs"][key] == totals["rollup_runs"][key], key


def _tree(server: ServerProcess) -> list[psutil.Process]:
    """The server and its receiver workers, once the workers it was configured with run."""
    main = psutil.Process(server.pid)
    expected = int(server.env.get("OTELSPEND_PIPELINE_WORKERS", "0"))
    deadline = time.monotonic() + 30
    while len(main.children()) < expected:
        assert time.monotonic() < deadline, f"{expected} workers did not start"
        time.sleep(0.05)
    assert len(main.children()) == expected
    return [main, *main.children()]


def _assert_all_exited(processes: list[psutil.Process]) -> None:
    """SIGTERM to the main process ends every process of the tree (it drains, then closes its workers)."""
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert alive == [], f"still running after SIGTERM: {[p.pid for p in alive]}"
