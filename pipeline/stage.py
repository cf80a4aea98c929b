"""The pipeline stage: accepted batches -> priced rows -> ClickHouse -> runs.

Receivers call ``reserve`` (bounded, counted in spans), append the request to the
write-ahead log, then ``submit``; only then do they acknowledge. The pipeline thread owns
the in-memory work: pricing, stitching, choosing runs to emit, and commands from the API
(outcomes, repricing). Every store call goes to one writer thread (pipeline.store_writer)
in order: the span insert followed by the write-ahead-log checkpoint, run emissions after
the spans they read. ClickHouse works with the GIL released, so the two threads overlap.

A failing store is retried with backoff while the queue fills; a full queue (or a store
known to be failing) makes receivers answer UNAVAILABLE / 503 with Retry-After. Nothing
accepted is lost on the way: until stored it is in the log, until emitted its run is
recoverable from stored spans (``data/state.json`` keeps the low-water mark).
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

from otelspend.clickhouse.columnar import table_from_rows
from otelspend.clickhouse.writer import SpanWriter
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import initial_role
from otelspend.enrich.stitcher import UNKNOWN, OpenRun, Stitcher
from otelspend.metrics import Metrics
from otelspend.observers import LedgerObserver
from otelspend.pipeline.emission import EmitStats, Emitter
from otelspend.pipeline.store_writer import StoreWriter
from otelspend.pipeline.wal import FORMAT_JSON, FORMAT_PROTOBUF, WriteAheadLog
from otelspend.receiver.sink import AcceptedRequest
from otelspend.record import SPAN_COLUMNS, F, lite_from_row
from otelspend.reloadable import Reloadable

log = logging.getLogger("otelspend")

STATE_FILE = "state.json"
_PURGE_SECONDS = 5.0
"""How often the embedded engine hands memory freed by its allocator back to the OS."""


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
        emit_batch_runs: int = 5_000,
        emit_interval: float = 1.0,
        store_maintenance: Callable[[], None] | None = None,
        observer: LedgerObserver | None = None,
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
        self.emit_batch_runs = emit_batch_runs
        self.emit_interval = emit_interval
        self.store = StoreWriter(metrics, max_jobs=2)
        self._queue: deque[Submission] = deque()
        self._commands: deque[_Command] = deque()
        self._cond = threading.Condition()
        self._reserved = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pending_runs: list[OpenRun] = []
        self._pending_since = 0.0
        self._emitted: deque[tuple[OpenRun, Any]] = deque()
        """Emissions the writer finished, to be remembered by the stitcher (pipeline thread)."""
        self._emit_checkpoint_ns = time.time_ns()
        self._checkpoint_ceiling = 2**63  # lowered below a batch that failed to process
        self._last_state = 0.0
        self._last_reload_check = 0.0
        self._last_purge = 0.0
        self.store_maintenance = store_maintenance
        self.observer = observer
        """Told about priced spans and written run deltas (the spend controls); never blocks."""
        self._written: deque[EmitStats] = deque()
        """Emissions written, to be told to the observer (pipeline thread)."""
        metrics.gauge("otelspend_queue_spans", lambda: self._reserved)
        metrics.gauge("otelspend_open_runs", stitcher.open_count)
        metrics.gauge("otelspend_wal_pending_bytes", lambda: wal.pending_bytes)

    # -- receiver side ------------------------------------------------------------------

    def reserve(self, spans: int) -> str | None:
        """Claim room for ``spans``: None when claimed, else the reason to answer UNAVAILABLE."""
        with self._cond:
            if self._thread is None:
                return "starting: the store is not ready yet"
            if self._stopping:
                return "shutting down"
            if not self.store.healthy:
                return "store unavailable"
            if self._reserved + spans > self.capacity:
                return "ingest queue full"
            self._reserved += spans
            return None

    def claim(self, spans: int) -> None:
        """Count spans that are already accepted (write-ahead-log replay) against the queue."""
        with self._cond:
            self._reserved += spans

    def release(self, spans: int) -> None:
        with self._cond:
            self._reserved -= spans

    def submit(self, request: AcceptedRequest) -> None:
        """Append the request to the write-ahead log (durable on return), then queue it."""
        seq = self.wal.append(
            request.payload, format=FORMAT_JSON if request.json_body else FORMAT_PROTOBUF, token=request.token
        )
        self.enqueue(Submission(seq, request.rows, request.resources, len(request.payload)))

    def enqueue(self, submission: Submission) -> None:
        """Queue a submission already in the write-ahead log."""
        with self._cond:
            self._queue.append(submission)
            self._cond.notify()

    def call(self, fn: Callable[[], Any], timeout: float | None = 60.0) -> Any:
        """Run ``fn`` on the pipeline thread (it owns the stitcher), after every store call
        submitted so far has completed, and wait for its result."""
        command = _Command(fn)
        with self._cond:
            self._commands.append(command)
            self._cond.notify()
        return command.future.result(timeout)

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def store_healthy(self) -> bool:
        return self.store.healthy

    @property
    def last_store_error(self) -> str:
        return self.store.last_error

    @property
    def queued_spans(self) -> int:
        return self._reserved

    @property
    def pending_runs(self) -> int:
        """Closed runs not yet stored (waiting for their batch, or being written)."""
        return len(self.stitcher.emitting)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.start_store()
        self._thread = threading.Thread(target=self._run, name="otelspend-pipeline", daemon=True)
        self._thread.start()

    def start_store(self) -> None:
        """Start the writer thread alone (crash recovery replays through it before start())."""
        if self.store._thread is None:
            self.store.start()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Store everything accepted, emit every open run, persist state. Safe to call twice."""
        with self._cond:
            if self._stopping and self._thread is None:
                return
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.store.shutdown()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = self._take()
            if items:
                try:
                    self.process(items)
                except Exception:
                    # A bug, not bad input (the normaliser rejects that): keep serving, and keep
                    # the batch in the write-ahead log (checkpoints stop below it) for the next start.
                    log.exception("could not process a batch of %d span(s)", sum(len(i.rows) for i in items))
                    self.metrics.inc("otelspend_pipeline_errors_total")
                    below = min(item.seq for item in items) - 1
                    self._checkpoint_ceiling = min(self._checkpoint_ceiling, below)
                    self.release(sum(len(item.rows) for item in items))
            self._remember_emitted()
            self._run_commands()
            self._collect_due()
            self._housekeeping()
            with self._cond:
                done = self._stopping and not self._queue and not self._commands
            if done:
                break
        self._pending_runs.extend(self.stitcher.due(everything=True))
        self._emit_pending()
        if self.store.drain(timeout=120) and self.store.healthy:
            self._remember_emitted()
            self.persist_state(clean=True)
        else:
            # A store that stayed down through shutdown: the write-ahead log and the persisted
            # low-water mark make the next start recover everything.
            log.error("stopped before everything was stored; the next start recovers it")

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
        """Price and stitch one batch now; store it (then checkpoint the log) on the writer."""
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
        table = table_from_rows(SPAN_COLUMNS, rows)  # Arrow built here; the writer only inserts
        for row in rows:
            if row[F.parent_span_id]:
                row[F.attributes] = None  # stored now; runs only ever read their root's attributes
        spans = list(map(lite_from_row, rows))
        self.stitcher.add(spans, now_ns)
        if self.observer is not None and spans:
            self.observer.spans_priced(spans, now_ns)
        for row in rows:
            reason = row[F.unpriced_reason]
            if reason:
                self.metrics.inc("otelspend_calls_unpriced_total", reason=reason)
        if duplicates:
            self.metrics.inc("otelspend_spans_duplicate_total", duplicates)
        last = min(max(item.seq for item in items), self._checkpoint_ceiling)
        payload = sum(item.payload_bytes for item in items)
        accepted = sum(len(item.rows) for item in items)
        written = len(rows)

        def stored(_: Any) -> None:
            self.wal.checkpoint(last, payload)
            self.release(accepted)
            self.metrics.inc("otelspend_spans_written_total", written)

        # The writer job holds the Arrow table only; the rows die with this batch.
        self.store.submit(lambda _attempt: self.writer.write([], resources, table), "otelspend_insert_seconds", stored)

    def _collect_due(self) -> None:
        """Gather runs ready to emit; write them in large batches.

        Every insert through the rollup views costs a fixed 15-30 ms of ClickHouse CPU on top
        of a few microseconds per row, so emissions are grouped: at least ``emit_batch_runs``
        runs, or whatever is pending after ``emit_interval`` seconds.
        """
        due = self.stitcher.due()
        if due:
            if not self._pending_runs:
                self._pending_since = time.monotonic()
            self._pending_runs.extend(due)
        if self._pending_runs and (
            len(self._pending_runs) >= self.emit_batch_runs
            or time.monotonic() - self._pending_since >= self.emit_interval
        ):
            self._emit_pending()

    def _emit_pending(self) -> None:
        runs = _merge_same_runs(self._pending_runs)
        self._pending_runs = []
        if not runs:
            return
        for run in runs:  # a merged run stands for the ones folded into it
            self.stitcher.emitting[run.run_id] = run
        started: list[int] = []
        plan = self.emitter.plan(runs)  # here, on the pipeline thread: the writer only writes

        def emit(attempt: int) -> EmitStats:
            started.append(time.time_ns())
            remember = self._emitted.append
            if attempt == 1:
                return self.emitter.commit(plan, lambda run, stored: remember((run, stored)))
            # A failed attempt may have written part of it: reconcile everything against the store.
            for run in runs:
                run.previous, run.partial, run.load_outcomes = UNKNOWN, True, True
            return self.emitter.emit(runs, lambda run, stored: remember((run, stored)))

        def done(stats: EmitStats) -> None:
            self._emit_checkpoint_ns = started[-1]
            self.metrics.inc("otelspend_runs_emitted_total", stats.emitted)
            self.metrics.inc("otelspend_runs_unchanged_total", stats.unchanged)
            if stats.late_ignored:
                self.metrics.inc("otelspend_late_spans_ignored_total", stats.late_ignored)
            if self.observer is not None and (stats.run_rows or stats.call_rows):
                self._written.append(stats)

        self.store.submit(emit, "otelspend_emit_seconds", done)

    def _remember_emitted(self) -> None:
        while self._emitted:
            run, previous = self._emitted.popleft()
            self.stitcher.emitted(run, previous)
        while self._written and self.observer is not None:
            stats = self._written.popleft()
            self.observer.runs_written([tuple(row) for row in stats.run_rows], [tuple(row) for row in stats.call_rows])

    def _run_commands(self) -> None:
        if not self._commands:
            return
        self.store.drain()
        self._remember_emitted()
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
        if self.store_maintenance is not None and now - self._last_purge >= _PURGE_SECONDS:
            self._last_purge = now
            self.store.submit(lambda _attempt: self.store_maintenance(), "otelspend_maintenance_seconds")
        if now - self._last_reload_check >= 2.0:
            self._last_reload_check = now
            for reloadable in (self.pricing, *self.reloadables):
                reloadable.check()
        if now - self._last_state >= 1.0:
            self._last_state = now
            self.persist_state(clean=False)

    # -- state for crash recovery ---------------------------------------------------------

    def low_water_mark_ns(self) -> int:
        """Earliest ingest time not yet reflected in a stored run (open, pending or in flight)."""
        mark = self.stitcher.low_water_mark_ns()
        return mark if mark is not None else time.time_ns()

    def persist_state(self, *, clean: bool) -> None:
        state = {
            "node": self.node,
            "lwm_ns": self.low_water_mark_ns(),
            "emit_checkpoint_ns": self._emit_checkpoint_ns,
            "wal_checkpoint": self.wal.checkpointed,
            "clean": clean,
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_path)


def _merge_same_runs(runs: list[OpenRun]) -> list[OpenRun]:
    """One run per id in a batch: a straggler reopened while its run waited for the batch
    joins it, so the batch never writes the same run twice."""
    by_id: dict[str, OpenRun] = {}
    for run in runs:
        first = by_id.get(run.run_id)
        if first is None:
            by_id[run.run_id] = run
            continue
        for span_id, span in run.spans.items():
            first.spans.setdefault(span_id, span)
        first.outcomes.extend(run.outcomes)
        first.has_root = first.has_root or run.has_root
        first.partial = first.partial or run.partial
        first.load_outcomes = first.load_outcomes or run.load_outcomes
        first.dirty_since_ns = min(first.dirty_since_ns, run.dirty_since_ns)
    return list(by_id.values())


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("%s is unreadable; recovering from the write-ahead log only", data_dir / STATE_FILE)
        return None
