"""The pipeline stage: accepted batches -> priced rows -> ClickHouse -> runs.

Receivers call ``reserve`` (bounded queue, counted in spans), append the request to the
write-ahead log, then ``submit``; only then do they acknowledge. One thread owns
everything after that: pricing, the columnar insert, the write-ahead-log checkpoint,
stitching and run emission, plus commands from the API (outcomes, repricing). A failing
store is retried with backoff while the queue fills; a full queue makes receivers answer
UNAVAILABLE / 503 with Retry-After. Nothing accepted is lost on the way: until stored it
is in the log, until emitted its run is recoverable from stored spans.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otelspend.clickhouse.writer import SpanWriter
from otelspend.emission import Emitter
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import initial_role, lite_from_row
from otelspend.enrich.stitcher import UNKNOWN, Stitcher
from otelspend.metrics import Metrics
from otelspend.record import F
from otelspend.reloadable import Reloadable
from otelspend.wal import WriteAheadLog

log = logging.getLogger("otelspend")

STATE_FILE = "state.json"
_BACKOFF_START, _BACKOFF_MAX = 0.1, 5.0


@dataclass
class Submission:
    seq: int
    rows: list[list[Any]]
    resources: dict[int, tuple[str, list[tuple[str, str]]]]
    payload_bytes: int


@dataclass
class _Command:
    run: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class Pipeline:
    def __init__(
        self,
        *,
        writer: SpanWriter,
        pricing: Reloadable[PriceBook],
        stitcher: Stitcher,
        emitter: Emitter,
        wal: WriteAheadLog,
        metrics: Metrics,
        node: str,
        data_dir: Path,
        queue_spans: int,
        batch_rows: int,
        flush_interval: float,
        reloadables: tuple[Reloadable[Any], ...] = (),
    ) -> None:
        self.writer = writer
        self.pricing = pricing
        self.stitcher = stitcher
        self.emitter = emitter
        self.wal = wal
        self.metrics = metrics
        self.node = node
        self.state_path = data_dir / STATE_FILE
        self.capacity = queue_spans
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self.reloadables = reloadables
        self._queue: deque[Submission] = deque()
        self._commands: deque[_Command] = deque()
        self._cond = threading.Condition()
        self._reserved = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.store_healthy = True
        self.last_store_error = ""
        self._emit_checkpoint_ns = time.time_ns()
        self._last_state = 0.0
        self._last_reload_check = 0.0
        self._stop_started = 0.0
        metrics.gauge("otelspend_queue_spans", lambda: self._reserved)
        metrics.gauge("otelspend_open_runs", stitcher.open_count)
        metrics.gauge("otelspend_wal_pending_bytes", lambda: wal.pending_bytes)

    # -- receiver side ------------------------------------------------------------------

    def reserve(self, spans: int) -> bool:
        """Claim room for ``spans``; False means answer UNAVAILABLE (full, store down, stopping)."""
        with self._cond:
            if self._stopping or not self.store_healthy or self._reserved + spans > self.capacity:
                return False
            self._reserved += spans
            return True

    def release(self, spans: int) -> None:
        with self._cond:
            self._reserved -= spans

    def submit(self, submission: Submission) -> None:
        with self._cond:
            self._queue.append(submission)
            self._cond.notify()

    def call(self, fn: Callable[[], Any], timeout: float | None = 60.0) -> Any:
        """Run ``fn`` on the pipeline thread (it owns the stitcher) and wait for its result."""
        command = _Command(fn)
        with self._cond:
            self._commands.append(command)
            self._cond.notify()
        return command.future.result(timeout)

    @property
    def queued_spans(self) -> int:
        return self._reserved

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="otelspend-pipeline", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Store everything accepted, emit every open run, persist state. Safe to call twice."""
        with self._cond:
            if self._stopping and self._thread is None:
                return
            self._stopping = True
            self._stop_started = time.monotonic()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                items = self._take()
                if items:
                    self.process(items)
                    self.release(sum(len(item.rows) for item in items))
                self._run_commands()
                self._emit(self.stitcher.due())
                self._housekeeping()
                with self._cond:
                    done = self._stopping and not self._queue and not self._commands
                if done:
                    break
            self._emit(self.stitcher.due(everything=True))
            self.persist_state(clean=True)
        except Exception:
            # Only a store that stayed down through shutdown gets here: the write-ahead log
            # and the persisted low-water mark make the next start recover everything.
            log.exception("pipeline stopped before everything was stored; the next start recovers it")

    def _take(self) -> list[Submission]:
        deadline = time.monotonic() + self.flush_interval
        with self._cond:
            while True:
                rows = sum(len(s.rows) for s in self._queue)
                if rows >= self.batch_rows or self._stopping or self._commands:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken: list[Submission] = []
            count = 0
            while self._queue and (count < self.batch_rows or not taken):
                item = self._queue.popleft()
                taken.append(item)
                count += len(item.rows)
            return taken

    def process(self, items: list[Submission]) -> None:
        """Price, store, checkpoint and stitch one batch (retrying the store until it takes it)."""
        now_ns = time.time_ns()
        rows: list[list[Any]] = []
        resources: dict[int, Any] = {}
        seen: set[tuple[str, str]] = set()
        duplicates = 0
        for item in items:
            resources.update(item.resources)
            for row in item.rows:
                key = (row[F.trace_id], row[F.span_id])
                if key in seen or self.stitcher.is_known(*key):
                    duplicates += 1
                    continue
                seen.add(key)
                row[F.ingested_at] = now_ns
                row[F.ingest_node] = self.node
                row[F.version] = 1
                row[F.call_role] = initial_role(row[F.span_class])
                rows.append(row)
        self.pricing.current.price_rows(rows)
        self._with_store(lambda: self.writer.write(rows, resources), "otelspend_insert_seconds")
        last = max(item.seq for item in items)
        self.wal.checkpoint(last, sum(item.payload_bytes for item in items))
        self.stitcher.add(map(lite_from_row, rows), now_ns)
        self.metrics.inc("otelspend_spans_written_total", len(rows))
        if duplicates:
            self.metrics.inc("otelspend_spans_duplicate_total", duplicates)
        for row in rows:
            reason = row[F.unpriced_reason]
            if reason:
                self.metrics.inc("otelspend_calls_unpriced_total", reason=reason)

    def _emit(self, runs: list[Any]) -> None:
        if not runs:
            return
        started = time.time_ns()
        attempt = 0

        def emit() -> Any:
            nonlocal attempt
            attempt += 1
            if attempt > 1:
                # A failed attempt may have written part of it: reconcile against the store.
                for run in runs:
                    run.previous, run.partial, run.load_outcomes = UNKNOWN, True, True
            return self.emitter.emit(runs, self.stitcher)

        stats = self._with_store(emit, "otelspend_emit_seconds")
        self._emit_checkpoint_ns = started
        self.metrics.inc("otelspend_runs_emitted_total", stats.emitted)
        self.metrics.inc("otelspend_runs_unchanged_total", stats.unchanged)
        if stats.late_ignored:
            self.metrics.inc("otelspend_late_spans_ignored_total", stats.late_ignored)

    def _with_store(self, fn: Callable[[], Any], histogram: str) -> Any:
        delay = _BACKOFF_START
        while True:
            started = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # any driver / engine error is treated as retryable
                self.metrics.inc("otelspend_store_errors_total")
                if self.store_healthy:
                    log.warning("store call failed, retrying with backoff: %s", exc)
                self.store_healthy = False
                self.last_store_error = str(exc)[:500]
                with self._cond:
                    if self._stopping and self._thread_should_abandon():
                        raise
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            self.metrics.observe(histogram, time.perf_counter() - started)
            if not self.store_healthy:
                log.info("store recovered")
            self.store_healthy = True
            self.last_store_error = ""
            return result

    def _thread_should_abandon(self) -> bool:
        """While stopping, give up on a dead store after a while: the WAL keeps the data."""
        return time.monotonic() - self._stop_started > 10

    def _run_commands(self) -> None:
        while True:
            with self._cond:
                if not self._commands:
                    return
                command = self._commands.popleft()
            try:
                command.future.set_result(command.run())
            except Exception as exc:
                command.future.set_exception(exc)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_reload_check >= 2.0:
            self._last_reload_check = now
            for reloadable in (self.pricing, *self.reloadables):
                reloadable.check()
        if now - self._last_state >= 1.0:
            self._last_state = now
            self.persist_state(clean=False)

    # -- state for crash recovery ---------------------------------------------------------

    def persist_state(self, *, clean: bool) -> None:
        state = {
            "node": self.node,
            "lwm_ns": self.stitcher.low_water_mark_ns() or time.time_ns(),
            "emit_checkpoint_ns": self._emit_checkpoint_ns,
            "wal_checkpoint": self.wal.checkpointed,
            "clean": clean,
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_path)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("%s is unreadable; recovering from the write-ahead log only", data_dir / STATE_FILE)
        return None
