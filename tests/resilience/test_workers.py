"""Receiver worker processes are supervised: a dead or stuck worker is replaced, the request it
held is tried again elsewhere, and nothing acknowledged is ever lost (only the main process
acknowledges, after its write-ahead log has the request).

The pool tests drive ``WorkerPool`` with real worker processes (or deliberately broken ones,
``fake_worker.py``); the server test kills a worker of ``otelspend serve`` mid-load."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.otlp_client import Sender
from bench.server import ServerProcess
from bench.traces import Workload
from bench.truth import compare, expected
from otelspend.conventions import load_conventions
from otelspend.enrich.pricing import PriceBook
from otelspend.metrics import Metrics
from otelspend.pipeline.prepare import PreparedBatch, Preparer, compact_spans
from otelspend.pipeline.worker_wire import WorkerConfig
from otelspend.pipeline.workers import WORKER_COMMAND, WorkerPool
from otelspend.receiver.decode import UndecodableRequest
from otelspend.receiver.normalize import Normalizer
from otelspend.receiver.sink import SinkUnavailable
from tests.conftest import wait_for
from tests.resilience.conftest import payloads

FAKE = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))


@pytest.fixture
def make_pool() -> Iterator[Callable[..., tuple[WorkerPool, Metrics]]]:
    pools: list[WorkerPool] = []

    def make(count: int = 2, command: Sequence[str] = WORKER_COMMAND, **kwargs: Any) -> tuple[WorkerPool, Metrics]:
        metrics = Metrics()
        book = PriceBook.from_file(None)
        local = Preparer(Normalizer(load_conventions()), lambda: book, node="n")
        pool = WorkerPool(
            count,
            lambda index: WorkerConfig(index, "n", None, False, 4096, 256, "warning"),
            local,
            metrics,
            command=command,
            **kwargs,
        )
        pools.append(pool)
        pool.start()
        return pool, metrics

    yield make
    for pool in pools:
        pool.shutdown(timeout=10)


def _same_spans(a: PreparedBatch, b: PreparedBatch) -> bool:
    assert a.spans is not None and b.spans is not None
    ignore = {"ingested_at"}  # the moment each prepared it
    names = [n for n in a.spans.schema.names if n not in ignore]
    return a.spans.select(names).equals(b.spans.select(names)) and len(compact_spans(a)) == len(compact_spans(b))


def test_workers_prepare_what_the_main_process_would_and_a_killed_one_is_restarted(
    make_pool: Callable[..., tuple[WorkerPool, Metrics]], workload: Workload
) -> None:
    pool, metrics = make_pool(2)
    wait_for(lambda: pool.ready == 2, 60, "two workers ready")
    request = workload.requests[0].payload
    remote = pool.prepare(request, json_body=False, token="t")
    local = pool.local.prepare(request, json_body=False, token="t")
    assert (remote.accepted, remote.rejected) == (local.accepted, local.rejected) == (workload.requests[0].spans, 0)
    assert _same_spans(remote.batch, local.batch)
    assert metrics.total("otelspend_requests_prepared_locally_total") == 0
    with pytest.raises(UndecodableRequest):
        pool.prepare(b"\xff\xff\xff", json_body=False, token="")

    before = pool.pids()
    os.kill(before[0], signal.SIGKILL)
    wait_for(lambda: metrics.total("otelspend_worker_restarts_total") == 1 and pool.ready == 2, 60, "a restart")
    assert set(pool.pids()) != set(before) and before[1] in pool.pids()
    assert pool.prepare(request, json_body=False, token="t").accepted == workload.requests[0].spans

    running = [psutil.Process(pid) for pid in pool.pids()]
    pool.shutdown(timeout=10)
    _, alive = psutil.wait_procs(running, timeout=10)
    assert alive == []


def test_a_request_a_worker_dies_on_is_prepared_again_by_another(
    make_pool: Callable[..., tuple[WorkerPool, Metrics]], workload: Workload, tmp_path: Path
) -> None:
    pool, metrics = make_pool(2, command=(*FAKE, f"crash-once:{tmp_path}"))
    wait_for(lambda: pool.ready == 2, 60, "two workers ready")
    prepared = pool.prepare(workload.requests[0].payload, json_body=False, token="")
    assert prepared.accepted == workload.requests[0].spans
    assert metrics.total("otelspend_worker_lost_requests_total") == 1
    wait_for(lambda: metrics.total("otelspend_worker_restarts_total") == 1 and pool.ready == 2, 60, "a restart")


def test_a_worker_that_stops_answering_is_killed_and_the_exporter_told_to_retry(
    make_pool: Callable[..., tuple[WorkerPool, Metrics]], workload: Workload
) -> None:
    pool, metrics = make_pool(1, command=(*FAKE, "hang"), prepare_timeout=1.0)
    wait_for(lambda: pool.ready == 1, 60, "the worker ready")
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match="did not answer within 1s"):
        pool.prepare(workload.requests[0].payload, json_body=False, token="")
    assert time.monotonic() - started < 30
    assert metrics.total("otelspend_worker_lost_requests_total") >= 1
    wait_for(lambda: metrics.total("otelspend_worker_restarts_total") >= 1, 60, "the hung worker replaced")


def test_while_no_worker_is_ready_requests_are_prepared_in_the_main_process(
    make_pool: Callable[..., tuple[WorkerPool, Metrics]], workload: Workload
) -> None:
    pool, metrics = make_pool(1, command=(*FAKE, "silent"), start_timeout=1.0)
    prepared = pool.prepare(workload.requests[0].payload, json_body=False, token="")
    assert prepared.accepted == workload.requests[0].spans and pool.ready == 0
    assert metrics.total("otelspend_requests_prepared_locally_total") == 1
    # A worker that never says it is ready is given up on and replaced.
    wait_for(lambda: metrics.total("otelspend_worker_restarts_total") >= 1, 60, "the silent worker replaced")
    assert pool.problem() is None


def test_a_worker_killed_mid_load_is_restarted_and_nothing_acknowledged_is_lost(
    serve: Callable[..., ServerProcess], workload: Workload, reference_totals: dict[str, Any]
) -> None:
    server = serve()
    main = psutil.Process(server.pid)
    server.wait_until(lambda m: m.get("otelspend_workers_ready") == 2, 60, "two workers ready")
    workers = main.children()
    sender = Sender(server.grpc_endpoint, concurrency=4, max_retry_delay_seconds=0.3, give_up_seconds=90)
    sender.start(payloads(workload))
    wait_for(lambda: sender.acked_count >= 3, 60, "the first requests acknowledged")
    victim = workers[0]
    victim.send_signal(signal.SIGSTOP)  # holds the next request it is given...
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)  # ...and dies with it
    stats = sender.wait(120)
    assert stats.failures == [] and stats.acked_count == len(workload.requests)

    metrics = server.wait_until(
        lambda m: m.get("otelspend_workers_ready") == 2 and m.get("otelspend_worker_restarts_total", 0) >= 1,
        60,
        "the killed worker replaced",
    )
    assert metrics.get("otelspend_worker_lost_requests_total", 0) >= 1, "the request it held was tried again"
    assert victim.pid not in {child.pid for child in main.children()}
    server.wait_stored(workload.spans, len(workload.traces), timeout_seconds=120)
    assert server.terminate() == 0
    totals = server.stored_totals()
    assert compare(expected(workload), totals) == []
    assert totals == reference_totals
