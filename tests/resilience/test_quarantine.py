"""Permanent store errors: what the store refuses for good is quarantined, the rest is stored.

The refusal is a real ClickHouse error raised by the real engine (``DECIMAL_OVERFLOW``,
code 407) whenever the writer's call carries the poisoned span or run; everything else
goes through untouched. One poisoned span among thousands must cost that span alone: the
batch is bisected, every other row stored, the write-ahead log checkpointed past it, runs
computed without it. One run the store refuses (or whose computation fails) is
quarantined alone; every other run of its emission is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow.ipc as ipc
import pytest

from bench.otlp_client import Sender
from bench.traces import Workload
from bench.truth import compare, expected, store_totals
from otelspend.enrich.runs import RUN_FIELD_NAMES
from otelspend.enrich.runs import compute_run as real_compute_run
from otelspend.pipeline import emission
from otelspend.record import L
from tests.conftest import Running, wait_for
from tests.otlp import request, span
from tests.resilience.conftest import payloads

pytestmark = pytest.mark.timeout(240)

POISON_TRACE = os.urandom(16)
POISON_SPAN = os.urandom(8)
_RUN_ID = RUN_FIELD_NAMES.index("run_id")


def _poison_request() -> bytes:
    root = span(trace_id=POISON_TRACE, span_id=POISON_SPAN, name="poisoned", attrs={"tenant.id": "poison"})
    return bytes(request([root]).SerializeToString())


def _refuse(server: Running) -> None:
    """Raise the real engine's permanent error (DECIMAL_OVERFLOW) on the writer's connection."""
    server.store.command("SELECT toDecimal32(1e20, 2)")


def _send(server: Running, requests: list[bytes]) -> None:
    stats = Sender(f"grpc://{server.grpc_endpoint}", concurrency=4, max_retry_delay_seconds=0.2).run(requests)
    assert stats.failures == [] and stats.acked_count == len(requests)


def _with_poison(workload: Workload) -> list[bytes]:
    requests = payloads(workload)
    middle = len(requests) // 2
    return [*requests[:middle], _poison_request(), *requests[middle:]]


def _metric(server: Running, name: str) -> float:
    return server.app.metrics.total(name)


def test_a_span_the_store_refuses_is_quarantined_alone_and_the_log_moves_on(
    start_server: Callable[..., Running], workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server()
    writer = server.app.pipeline.writer
    real_write = writer.write
    poison = POISON_SPAN.hex()

    def write(rows: Any, resources: Any, spans: Any = None) -> None:
        if spans is not None and poison in spans.column("span_id").to_pylist():
            _refuse(server)
        real_write(rows, resources, spans)

    monkeypatch.setattr(writer, "write", write)
    _send(server, _with_poison(workload))
    server.wait_idle(60)

    assert compare(expected(workload), store_totals(server.store)) == []  # no poisoned span, no poisoned run
    assert server.scalar("SELECT count() FROM {db}.runs WHERE run_id = {r:String}", r=POISON_TRACE.hex()) == 0
    entries = server.app.pipeline.quarantine.entries()
    assert [(e["kind"], e["rows"], e["clickhouse_codes"]) for e in entries] == [("spans", 1, [407])]
    assert "DECIMAL_OVERFLOW" in entries[0]["reasons"][0]
    kept = ipc.open_file(str(server.app.pipeline.quarantine.directory / entries[0]["file"])).read_all()
    assert kept.column("span_id").to_pylist() == [poison] and kept.column("name").to_pylist() == ["poisoned"]
    assert _metric(server, "otelspend_spans_quarantined_total") == 1
    assert _metric(server, "otelspend_store_permanent_errors_total") >= 1
    assert _metric(server, "otelspend_store_errors_total") == 0  # nothing retried
    wait_for(lambda: server.app.wal.pending_bytes == 0, 30, "the log checkpointed past the quarantined row")
    assert httpx.get(f"{server.api_url}/readyz", timeout=10).status_code == 200


@pytest.mark.parametrize("fault", ["store-refuses-the-run", "computing-the-run-fails"])
def test_a_run_that_cannot_be_emitted_is_quarantined_alone(
    start_server: Callable[..., Running], workload: Workload, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    server = start_server()
    poison = POISON_TRACE.hex()
    if fault == "store-refuses-the-run":
        runstore = server.app.runstore
        real_insert = runstore.insert_runs

        def insert_runs(rows: list[list[Any]]) -> None:
            if any(row[_RUN_ID] == poison for row in rows):
                _refuse(server)
            real_insert(rows)

        monkeypatch.setattr(runstore, "insert_runs", insert_runs)
    else:
        real_compute = real_compute_run

        def compute_run(spans: Any, *args: Any, **kwargs: Any) -> Any:
            spans = list(spans)
            if any(s[L.trace_id] == poison for s in spans):
                raise ZeroDivisionError("injected: a bug computing one run")
            return real_compute(spans, *args, **kwargs)

        monkeypatch.setattr(emission, "compute_run", compute_run)
    _send(server, _with_poison(workload))
    server.wait_idle(60)

    totals = store_totals(server.store)
    assert totals["spans"] == workload.spans + 1  # the poisoned run's span is stored
    totals["spans"] -= 1
    totals["distinct_spans"] -= 1
    assert compare(expected(workload), totals) == []  # every other run written, exactly once
    assert server.scalar("SELECT count() FROM {db}.runs WHERE run_id = {r:String}", r=poison) == 0
    entries = server.app.pipeline.quarantine.entries()
    assert [(e["kind"], e["run_ids"]) for e in entries] == [("runs", [poison])]
    reason = "DECIMAL_OVERFLOW" if fault == "store-refuses-the-run" else "ZeroDivisionError: injected"
    assert reason in entries[0]["reason"]
    assert _metric(server, "otelspend_runs_quarantined_total") == 1
    assert httpx.get(f"{server.api_url}/readyz", timeout=10).status_code == 200
