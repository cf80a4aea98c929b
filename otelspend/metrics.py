"""Self-observability: counters and gauges rendered as Prometheus text at /metrics.

Counting is a dict update under the GIL; nothing is logged per span.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(_BUCKETS_SECONDS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        for index, bound in enumerate(_BUCKETS_SECONDS):
            if seconds <= bound:
                self.counts[index] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += seconds
        self.n += 1


HELP: dict[str, str] = {
    "otelspend_spans_received_total": "Spans in export requests that reached a receiver.",
    "otelspend_spans_accepted_total": "Spans accepted (durable in the write-ahead log) and acknowledged.",
    "otelspend_spans_rejected_total": "Spans rejected as invalid (partial success), by reason class.",
    "otelspend_spans_written_total": "Spans written to ClickHouse.",
    "otelspend_spans_duplicate_total": "Exact duplicate spans dropped before storage.",
    "otelspend_requests_total": "Export requests by transport and outcome.",
    "otelspend_requests_refused_total": "Export requests answered UNAVAILABLE/503 (back-pressure or store down).",
    "otelspend_auth_refused_total": "Requests refused for a missing or unknown bearer token, by surface and reason.",
    "otelspend_calls_unpriced_total": "Model calls stored without a price, by reason.",
    "otelspend_runs_emitted_total": "Run emissions written (first emission or update).",
    "otelspend_runs_unchanged_total": "Closed runs whose stored figures were already right.",
    "otelspend_late_spans_ignored_total": "Spans for runs emitted longer ago than the late horizon.",
    "otelspend_store_errors_total": "Store calls failed with a retryable error (retried with backoff).",
    "otelspend_store_permanent_errors_total": "Store calls refused for good (bad data), quarantined.",
    "otelspend_spans_quarantined_total": "Span rows the store refused for good, kept in data_dir/quarantine.",
    "otelspend_runs_quarantined_total": "Runs not emitted because computing or writing them failed for good.",
    "otelspend_loop_errors_total": "Errors a background loop survived, by thread and step (logged once per streak).",
    "otelspend_pipeline_errors_total": "Batches the pipeline could not process (a bug: see the log).",
    "otelspend_queue_spans": "Spans accepted but not yet stored.",
    "otelspend_open_runs": "Runs held open in memory.",
    "otelspend_wal_pending_bytes": "Write-ahead log bytes not yet checkpointed.",
    "otelspend_insert_seconds": "Latency of span inserts into ClickHouse.",
    "otelspend_emit_seconds": "Latency of run emissions into ClickHouse.",
    "otelspend_maintenance_seconds": "Latency of periodic store maintenance (embedded memory release).",
    "otelspend_cpu_seconds_total": (
        "Thread CPU time by ingest stage: prepare (decode, normalise, price, Arrow), stitch, runs "
        "(run computation), insert and emit (store calls, the engine's work in that thread included)."
    ),
    "otelspend_python_threads_cpu_seconds": "CPU seconds of this process's Python threads (the rest is native).",
    "otelspend_workers_ready": "Receiver worker processes ready to prepare requests (pipeline.workers).",
    "otelspend_worker_restarts_total": "Receiver worker processes that ended and were restarted.",
    "otelspend_worker_lost_requests_total": "Requests a receiver worker died on (each retried once, elsewhere).",
    "otelspend_requests_prepared_locally_total": "Requests prepared in the main process while no worker was ready.",
    "otelspend_alerts_total": "Alert events raised (firing and resolved), by type.",
    "otelspend_alerts_suppressed_total": "Detections inside an incident's cool-down (no alert), by type.",
    "otelspend_alert_deliveries_total": "Webhook delivery attempts, by sink and outcome (delivered, retry, failed).",
    "otelspend_alert_history_errors_total": "Failed writes of alert history to the store (retried).",
    "otelspend_alert_history_dropped_total": "Delivery states dropped while the store was down (the events are kept).",
    "otelspend_alert_outbox_pending": "Alert deliveries not yet done (waiting, retrying or in flight).",
    "otelspend_policy_violations_total": "Model calls outside the routing policy, by rule.",
    "otelspend_controls_skipped_batches_total": "Span batches the controls skipped because their queue was full.",
    "otelspend_controls_errors_total": "Errors in the controls threads (store down, a bug: see the log).",
    "otelspend_controls_detector_runs_total": "Runs of the scheduled anomaly detectors.",
    "otelspend_controls_tracked_runs": "Open runs the stream controls hold.",
    "otelspend_export_scheduled_total": "Scheduled FOCUS export files, by outcome (written, failed).",
    "otelspend_sql_queries_total": "Requests to the SQL endpoint by outcome (ok, refused, failed, unauthorized).",
    "otelspend_sql_query_seconds": "Latency of SQL endpoint requests, queueing included.",
}


class Metrics:
    """The process's counters, latency histograms and gauges; thread-safe, rendered by :meth:`render`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._histograms: dict[str, _Histogram] = {}
        self._gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        """Add ``value`` to counter ``name`` for this label set."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + value

    def value(self, name: str, **labels: str) -> float:
        """Counter ``name`` for exactly this label set (0 if never counted)."""
        return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name: str) -> float:
        """Counter ``name`` summed over every label set."""
        return sum(v for (n, _), v in self._counters.items() if n == name)

    def observe(self, name: str, seconds: float) -> None:
        """Record one latency in histogram ``name`` (seconds, fixed buckets)."""
        with self._lock:
            self._histograms.setdefault(name, _Histogram()).observe(seconds)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Register gauge ``name``: ``read`` is called at each render for its current value."""
        self._gauges[name] = read

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format (counters listed in HELP appear even at 0)."""
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
            histograms = {k: (list(v.counts), v.total, v.n) for k, v in self._histograms.items()}
        names = sorted({n for n, _ in counters} | set(HELP) - set(self._gauges) - set(histograms))
        for name in names:
            if name not in HELP or name.endswith("_seconds") or name in self._gauges:
                continue
            lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} counter"]
            series = [(labels, v) for (n, labels), v in counters.items() if n == name] or [((), 0)]
            for labels, value in sorted(series):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        for name, read in sorted(self._gauges.items()):
            lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} gauge", f"{name} {_number(read())}"]
        for name, (counts, total, n) in sorted(histograms.items()):
            lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} histogram"]
            cumulative = 0
            for bound, count in zip(_BUCKETS_SECONDS, counts, strict=False):
                cumulative += count
                lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {n}')
            lines += [f"{name}_sum {total:.6f}", f"{name}_count {n}"]
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}"
