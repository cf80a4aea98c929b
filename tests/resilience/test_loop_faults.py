"""Faults inside the server's own background loops, in-process on real chDB.

Each injected fault ends in one of two ways, never in a hang (every test is bounded):

* recovery: the error is logged once and counted (``otelspend_loop_errors_total``), the
  loop goes on, and what is stored equals the load generator's ground truth;
* a clean not-ready state: ``/readyz`` answers 503 with the reason, the log says it, the
  receivers refuse with it, ``stop()`` returns, and a restart on the same data recovers
  every acknowledged span exactly.

Faults are injected into the real objects of the running app (the write-ahead log's file
operations, the stitcher, the pipeline's state file), as the store fault tests do.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.otlp_client import Sender, transport_for
from bench.server import free_port
from bench.traces import Workload
from bench.truth import compare, expected, store_totals
from otelspend.pipeline import wal as wal_module
from tests.conftest import Running, wait_for
from tests.resilience.conftest import payloads

pytestmark = pytest.mark.timeout(240)


def _readyz(server: Running) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.api_url}/readyz", timeout=10)
    return response.status_code, response.json()


def _send(server: Running, requests: list[bytes]) -> None:
    stats = Sender(f"grpc://{server.grpc_endpoint}", concurrency=4, max_retry_delay_seconds=0.2).run(requests)
    assert stats.failures == [] and stats.acked_count == len(requests)


def _assert_exact(server: Running, workload: Workload) -> None:
    server.wait_idle(60)
    assert compare(expected(workload), store_totals(server.store)) == []


def _loop_errors(server: Running, thread: str, step: str) -> float:
    return server.app.metrics.value("otelspend_loop_errors_total", thread=thread, step=step)


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


class FailingTimes:
    """Wraps a callable: raises ``error`` on the first ``times`` calls, then calls through."""

    def __init__(self, real: Callable[..., Any], error: Callable[[], BaseException], times: int) -> None:
        self.real, self.error, self.left = real, error, times
        self.raised = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            fail = self.left > 0
            self.left -= fail
        if fail:
            self.raised += 1
            raise self.error()
        return self.real(*args, **kwargs)


class DiskFull:
    """The write-ahead log's view of ``os``: renaming its checkpoint fails with ENOSPC while on."""

    def __init__(self) -> None:
        self.on = threading.Event()
        self.on.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, src: Any, dst: Any) -> None:
        if self.on.is_set() and Path(dst).name == "checkpoint":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.replace(src, dst)


# -- the store writer ---------------------------------------------------------------------------


def test_an_exception_in_a_writer_done_callback_is_logged_counted_and_the_writer_goes_on(
    start_server: Callable[..., Running], workload: Workload, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otelspend")
    server = start_server()
    writer = server.app.pipeline.store
    ran: list[str] = []

    def broken_callback(_result: Any) -> None:
        ran.append("callback")
        raise RuntimeError("injected: a bug in a done callback")

    writer.submit(lambda _attempt: ran.append("job"), "otelspend_insert_seconds", broken_callback)
    _send(server, payloads(workload))

    _assert_exact(server, workload)
    assert ran == ["job", "callback"]
    assert _loop_errors(server, "store-writer", "insert callback") == 1
    assert _logged(caplog, "store-writer thread: insert callback failed") == 1
    assert writer.alive and _readyz(server)[0] == 200
    assert server.app.wal.pending_bytes == 0


def test_an_oserror_from_the_wal_checkpoint_says_not_ready_then_recovers(
    start_server: Callable[..., Running],
    workload: Workload,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="otelspend")
    server = start_server()
    disk = DiskFull()
    monkeypatch.setattr(wal_module, "os", disk)
    requests = payloads(workload)
    half = len(requests) // 2
    _send(server, requests[:half])

    # Spans are still stored; the log cannot be checkpointed: not ready, with the reason.
    wait_for(lambda: _readyz(server)[0] == 503, 30, "readyz to report the checkpoint failure")
    reason = _readyz(server)[1]["checks"]["pipeline"]
    assert reason.startswith("write-ahead log checkpoint failing: OSError") and "No space left" in reason
    wait_for(lambda: server.app.metrics.total("otelspend_spans_written_total") > 0, 30, "spans written meanwhile")
    assert server.app.wal.checkpointed == 0 and server.app.wal.pending_bytes > 0
    assert _loop_errors(server, "store-writer", "insert callback") >= 1
    assert _logged(caplog, "store-writer thread: insert callback failed") == 1

    disk.on.clear()
    _send(server, requests[half:])
    _assert_exact(server, workload)
    wait_for(lambda: _readyz(server)[0] == 200, 30, "readyz once a checkpoint succeeds")
    assert server.app.wal.failing is None and server.app.wal.pending_bytes == 0
    assert _logged(caplog, "store-writer thread: insert callback works again") == 1


# -- the pipeline thread ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "step"),
    [
        pytest.param("stitcher.due", "collect runs", id="run-collection-due"),
        pytest.param("emitter.plan", "collect runs", id="run-collection-plan"),
        pytest.param("pipeline.persist_state", "persist state", id="housekeeping-persist-state"),
        pytest.param("pricing.check", "reload rate card", id="housekeeping-reload"),
    ],
)
def test_an_exception_in_a_pipeline_step_is_survived_and_the_data_stays_exact(
    start_server: Callable[..., Running],
    workload: Workload,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    target: str,
    step: str,
) -> None:
    caplog.set_level(logging.INFO, logger="otelspend")
    server = start_server()
    owner_name, attribute = target.split(".")
    owner = {
        "stitcher": server.app.stitcher,
        "emitter": server.app.emitter,
        "pipeline": server.app.pipeline,
        "pricing": server.app.pricing,
    }[owner_name]
    fault = FailingTimes(getattr(owner, attribute), lambda: RuntimeError(f"injected: {target} failed"), times=3)
    monkeypatch.setattr(owner, attribute, fault)
    _send(server, payloads(workload))

    _assert_exact(server, workload)
    wait_for(lambda: _logged(caplog, f"pipeline thread: {step} works again"), 30, f"{step} to work again")
    assert fault.raised == 3 and _loop_errors(server, "pipeline", step) == 3
    assert _logged(caplog, f"pipeline thread: {step} failed") == 1
    assert _logged(caplog, f"pipeline thread: {step} works again") == 1
    assert _readyz(server)[0] == 200


def test_a_step_failing_for_good_stops_the_pipeline_cleanly_and_a_restart_recovers(
    start_server: Callable[..., Running],
    workload: Workload,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="otelspend")
    data, database = tmp_path / "data", f"loop_stop_{free_port()}"
    slow_runs = {"runs": {"settle_seconds": 30.0}}  # runs stay open: the restart must reopen them
    server = start_server(database=database, data_dir=data, **slow_runs)
    pipeline = server.app.pipeline
    wait_for(lambda: pipeline.state_path.exists(), 30, "the first state file")
    requests = payloads(workload)
    _send(server, requests)
    wait_for(lambda: pipeline.queued_spans == 0, 60, "every span stored")

    pipeline.guard.give_up_seconds = 0.5
    fault = FailingTimes(pipeline.persist_state, lambda: OSError(errno.EIO, "injected: state file"), times=10**6)
    monkeypatch.setattr(pipeline, "persist_state", fault)
    wait_for(lambda: _readyz(server)[0] == 503, 30, "the pipeline to give up")
    reason = _readyz(server)[1]["checks"]["pipeline"]
    assert reason.startswith("pipeline thread stopped: persist state failed") and "injected: state file" in reason
    assert _logged(caplog, "pipeline thread stopped: persist state failed") == 1
    refused = transport_for(f"grpc://{server.grpc_endpoint}").export(requests[0], 10)
    assert not refused.ok and refused.retryable and "pipeline thread stopped" in refused.message
    server.app.stop()  # returns: nothing waits for the stopped thread

    restarted = start_server(database=database, data_dir=data)
    _assert_exact(restarted, workload)
    assert _readyz(restarted)[0] == 200
