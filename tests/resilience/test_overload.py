"""More offered load than the server can take: back-pressure (UNAVAILABLE / 503 /
RESOURCE_EXHAUSTED, all retryable), a queue that never exceeds its bound, no crash, and
after the exporters' retries every span stored once, even delivered twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from bench.otlp_client import Sender
from bench.server import ServerProcess
from bench.traces import Workload
from bench.truth import compare, expected
from tests.resilience.conftest import MODES, payloads

QUEUE_SPANS = 1_000


@pytest.mark.parametrize("mode", MODES)
def test_overload_is_refused_with_back_pressure_not_queued(
    serve: Callable[..., ServerProcess], workload: Workload, mode: dict[str, str]
) -> None:
    server = serve(
        env={
            "OTELSPEND_PIPELINE_QUEUE_SPANS": str(QUEUE_SPANS),
            "OTELSPEND_OTLP_GRPC_WORKERS": "1",  # at most 4 concurrent RPCs
            "OTELSPEND_CLICKHOUSE_FLUSH_INTERVAL_MS": "250",  # spans wait in the queue for a batch
            **mode,
        }
    )
    requests = payloads(workload)
    # Every request is delivered twice, over both transports at once, by 24 exporters.
    senders = [
        Sender(server.grpc_endpoint, concurrency=12, max_retry_delay_seconds=0.2, give_up_seconds=120, seed=1),
        Sender(server.http_endpoint, concurrency=12, max_retry_delay_seconds=0.2, give_up_seconds=120, seed=2),
    ]
    peak = {"queue": 0.0, "wal": 0.0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            metrics = server.metrics()
            peak["queue"] = max(peak["queue"], metrics["otelspend_queue_spans"])
            peak["wal"] = max(peak["wal"], metrics["otelspend_wal_pending_bytes"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for sender in senders:
        sender.start(requests)
    results = [sender.wait(180) for sender in senders]
    done.set()
    watcher.join()

    refusals: Counter[str] = Counter()
    for stats in results:
        refusals.update(stats.refusals)
    assert set(refusals) & {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "503"}, refusals
    assert all(stats.failures == [] and stats.acked_count == len(requests) for stats in results)
    assert peak["queue"] <= QUEUE_SPANS
    assert peak["wal"] <= 2 * sum(map(len, requests)), "the log holds accepted requests only"
    assert server.alive()
    server.wait_stored(workload.spans, len(workload.traces), timeout_seconds=120)
    assert server.terminate() == 0
    assert compare(expected(workload), server.stored_totals()) == []
