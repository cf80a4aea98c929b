"""The pipeline stage: accepted batches -> priced rows -> ClickHouse -> runs.

Receivers call ``reserve`` (bounded, counted in spans), append the request to the
write-ahead log, then ``submit``; only then do they acknowledge. The pipeline thread owns
the in-memory work: pricing, stitching, choosing runs to emit, and commands from the API
(outcomes, repricing). Every store call goes to one writer thread (pipeline.store_writer)
in order: the span insert followed by the write-ahead-log checkpoint, run emissions after
the spans they read. ClickHouse works with the GIL released, so the two threads overlap.

A failing store is retried with backoff while the queue fills; a full queue (or a store
known to be failing) makes receivers answer UNAVAILABLE / 503 with Retry-After. What the
store refuses for good is quarantined (``pipeline.errors``, ``pipeline.quarantine``). Nothing
accepted is lost on the way: until stored it is in the log, until emitted its run is
recoverable from stored spans (``data/state.json`` keeps the low-water mark).

Every step of the loop runs guarded (``pipeline.guard``): an error is logged once, counted,
and the loop goes on; a step failing for good stops the thread cleanly with a reason that
``problem()`` reports (``/readyz``) and ``reserve`` refuses with.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from otelspend.clickhouse.writer import SpanWriter
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.stitcher import UNKNOWN, OpenRun, Stitcher
from otelspend.metrics import Metrics
from otelspend.observers import NO_OBSERVER, LedgerObserver
from otelspend.pipeline.emission import EmitPlan, EmitStats, Emitter
from otelspend.pipeline.errors import ErrorKind, classify, describe
from otelspend.pipeline.guard import GIVE_UP_SECONDS, LoopGuard
from otelspend.pipeline.prepare import PreparedBatch, compact_spans
from otelspend.pipeline.quarantine import Quarantine, Refused, insert_isolating
from otelspend.pipeline.resources import ResourceCache
from otelspend.pipeline.store_writer import StoreWriter
from otelspend.pipeline.wal import FORMAT_JSON, FORMAT_PROTOBUF, WriteAheadLog
from otelspend.receiver.sink import AcceptedRequest
from otelspend.record import L
from otelspend.reloadable import Reloadable

log = logging.getLogger("otelspend")
T = TypeVar("T")

STATE_FILE = "state.json"
QUARANTINE_DIR = "quarantine"
_PURGE_SECONDS = 5.0
"""How often the embedded engine hands memory freed by its allocator back to the OS."""
COMMAND_DRAIN_SECONDS = 1.0
"""Commands wait for earlier store calls this long per loop turn (their callers' timeouts
bound the whole wait); the loop goes on meanwhile."""
FINAL_DRAIN_SECONDS = 30.0
"""At shutdown, how long the last store calls may take before the rest is left to recovery."""


class PipelineStopped(RuntimeError):
    """The pipeline thread is not running (stopped for good, or shut down)."""


@dataclass
class Submission:
    """One accepted request in the queue: its write-ahead-log sequence and its prepared spans."""

    seq: int
    batch: PreparedBatch
    payload_bytes: int


@dataclass
class _Command:
    run: Callable[[], Any]
    future: Future[Any]


@dataclass(frozen=True)
class _EmissionDone:
    """An emission's result, handed from the store writer back to the pipeline thread."""

    batch: int
    started_ns: int = 0
    stats: EmitStats | None = None
    """None: the emission failed for good (its runs were quarantined)."""


@dataclass(frozen=True)
class PipelineConfig:
    """Where the pipeline keeps its state and how it batches, bounds and emits (from settings)."""

    node: str
    """This replica's id, stamped on every span it stores."""
    data_dir: Path
    """Home of ``state.json`` and the quarantine."""
    queue_spans: int
    """Spans accepted but not yet stored, at most; beyond, ``reserve`` refuses (UNAVAILABLE / 503)."""
    batch_rows: int
    """Spans per store insert, at most."""
    flush_interval: float
    """Seconds a batch waits to fill before it is stored anyway."""
    emit_batch_runs: int = 5_000
    """Closed runs gathered into one emission, at most..."""
    emit_interval: float = 1.0
    """...or whatever is pending after this many seconds."""
    give_up_seconds: float = GIVE_UP_SECONDS
    """How long a loop step may keep failing before the process is marked not ready."""


@dataclass(frozen=True)
class Housekeeping:
    """Chores the pipeline thread does between batches: reload changed files, maintain the store."""

    reloadables: tuple[Reloadable[Any], ...] = ()
    """Files checked for changes every two seconds (the rate card always is)."""
    store_maintenance: Callable[[], None] | None = None
    """Run on the store writer every few minutes (embedded engine: release memory)."""


class Pipeline:
    """The ingest queue and the pipeline thread; implements the receiver's ``BatchSink``."""

    def __init__(
        self,
        *,
        writer: SpanWriter,
        pricing: Reloadable[PriceBook],
        stitcher: Stitcher,
        emitter: Emitter,
        wal: WriteAheadLog,
        metrics: Metrics,
        config: PipelineConfig,
        housekeeping: Housekeeping | None = None,
    ) -> None:
        housekeeping = housekeeping or Housekeeping()
        self.writer = writer
        self.pricing = pricing
        self.stitcher = stitcher
        self.emitter = emitter
        self.wal = wal
        self.metrics = metrics
        self.node = config.node
        self.state_path = config.data_dir / STATE_FILE
        self.capacity = config.queue_spans
        self.batch_rows = config.batch_rows
        self.flush_interval = config.flush_interval
        self.reloadables = housekeeping.reloadables
        self.emit_batch_runs = config.emit_batch_runs
        self.emit_interval = config.emit_interval
        # The emitter's resource cache: filled here from each batch, read when runs are planned.
        self.resources = emitter.resources if emitter.resources is not None else ResourceCache()
        self.store = StoreWriter(metrics, max_jobs=2)
        self.quarantine = Quarantine(config.data_dir / QUARANTINE_DIR, fsync=wal.fsync)
        self.guard = LoopGuard("pipeline", metrics, give_up_seconds=config.give_up_seconds)
        self._queue: deque[Submission] = deque()
        self._commands: deque[_Command] = deque()
        self._cond = threading.Condition()
        self._reserved = 0
        self._stopping = False
        self._stopped = False
        self._fatal: str | None = None
        self._thread: threading.Thread | None = None
        self._pending_runs: list[OpenRun] = []
        self._pending_since = 0.0
        self._batches = itertools.count(1)
        self._in_flight: dict[int, dict[str, OpenRun]] = {}
        """Emissions handed to the writer and not yet reported back, by batch (pipeline thread)."""
        self._emitted: deque[_EmissionDone] = deque()
        """Emissions the writer finished (appended there, consumed here)."""
        self._emit_checkpoint_ns = time.time_ns()
        self._wal_hold: int | None = None
        """Store writer thread only: checkpoints stay below a batch whose refused rows could
        not be quarantined (the next start replays it)."""
        self._wal_hold_reason: str | None = None
        self._last_state = 0.0
        self._last_reload_check = 0.0
        self._last_purge = 0.0
        self.store_maintenance = housekeeping.store_maintenance
        self.observer: LedgerObserver = NO_OBSERVER
        """Told about priced spans and written run deltas (the spend controls set themselves here); never blocks."""
        metrics.gauge("otelspend_queue_spans", lambda: self._reserved)
        metrics.gauge("otelspend_open_runs", stitcher.open_count)
        metrics.gauge("otelspend_wal_pending_bytes", lambda: wal.pending_bytes)

    # -- receiver side ------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why a request would be refused now, claiming nothing (None: go ahead)."""
        with self._cond:
            reason = self._not_accepting()
            if reason is None and self._reserved >= self.capacity:
                reason = "ingest queue full"
            return reason

    def reserve(self, spans: int) -> str | None:
        """Claim room for ``spans``: None when claimed, else the reason to answer UNAVAILABLE."""
        with self._cond:
            reason = self._not_accepting()
            if reason is None and self._reserved + spans > self.capacity:
                reason = "ingest queue full"
            if reason is None:
                self._reserved += spans
            return reason

    def _not_accepting(self) -> str | None:
        """Why no span can be taken now, whatever the room (None: spans can be)."""
        if self._stopping:
            return "shutting down"
        if self._fatal is not None:
            return self._fatal
        if self._thread is None:
            return "starting: the store is not ready yet"
        if not self._thread.is_alive():
            return "the pipeline thread is not running"
        return "store unavailable" if self.store.problem() is not None else None

    def claim(self, spans: int) -> None:
        """Count spans that are already accepted (write-ahead-log replay) against the queue."""
        with self._cond:
            self._reserved += spans

    def release(self, spans: int) -> None:
        """Give back room claimed by ``reserve`` or ``claim``."""
        with self._cond:
            self._reserved -= spans

    def submit(self, request: AcceptedRequest) -> None:
        """Append the request to the write-ahead log (durable on return), then queue it."""
        seq = self.wal.append(
            request.payload, format=FORMAT_JSON if request.json_body else FORMAT_PROTOBUF, token=request.token
        )
        self.enqueue(Submission(seq, request.batch, len(request.payload)))

    def enqueue(self, submission: Submission) -> None:
        """Queue a submission already in the write-ahead log."""
        with self._cond:
            self._queue.append(submission)
            self._cond.notify()

    def call(self, fn: Callable[[], T], timeout: float = 60.0) -> T:
        """Run ``fn`` on the pipeline thread (it owns the stitcher), after every store call
        submitted so far has completed, and wait for its result.

        Raises ``TimeoutError`` after ``timeout`` seconds (the command is then cancelled if
        it has not started) and ``PipelineStopped`` when the thread is not running.
        """
        future: Future[T] = Future()
        command = _Command(fn, future)
        with self._cond:
            if self._fatal is not None:
                raise PipelineStopped(self._fatal)
            if self._thread is not None and not self._thread.is_alive():
                raise PipelineStopped("the pipeline thread is not running")
            self._commands.append(command)
            self._cond.notify()
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.cancel():
                raise TimeoutError(f"the pipeline did not run the command within {timeout:g}s") from None
            return future.result(timeout)  # started meanwhile: it finishes soon

    @property
    def started(self) -> bool:
        """Whether ``start`` has run."""
        return self._thread is not None

    @property
    def store_healthy(self) -> bool:
        """Whether the store writer's last store call succeeded."""
        return self.store.healthy

    @property
    def last_store_error(self) -> str:
        """The store writer's last error ("" when none)."""
        return self.store.last_error

    @property
    def queued_spans(self) -> int:
        """Spans accepted and not yet stored (what ``reserve`` counts against the queue)."""
        return self._reserved

    @property
    def pending_runs(self) -> int:
        """Closed runs not yet stored (waiting for their batch, or being written)."""
        return len(self.stitcher.emitting)

    def problem(self) -> str | None:
        """None while the pipeline accepts and stores spans; else why not (``/readyz``)."""
        if self._fatal is not None:
            return self._fatal
        if self._thread is not None and not self._thread.is_alive() and not self._stopping:
            return "the pipeline thread is not running"
        reason = self._storage_problem()
        if reason is None and self._reserved >= self.capacity:
            reason = "ingest queue full"
        return reason

    def _storage_problem(self) -> str | None:
        """Why accepted spans are not being stored or checkpointed (None: they are)."""
        writer = self.store.problem()
        if writer is not None:
            return writer
        if self.wal.failing is not None:
            return f"write-ahead log checkpoint failing: {self.wal.failing}"
        return self._wal_hold_reason

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the store writer (if recovery has not) and the pipeline thread."""
        self.start_store()
        self._thread = threading.Thread(target=self._run, name="otelspend-pipeline", daemon=True)
        self._thread.start()

    def start_store(self) -> None:
        """Start the writer thread alone (crash recovery replays through it before start())."""
        self.store.start()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Store everything accepted, emit every open run, persist state. Safe to call twice."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("pipeline thread did not stop within %.0fs; the next start recovers what it held", timeout)
        self.store.shutdown(timeout)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._turn():
                stuck = self.guard.stuck()
                if stuck is not None:
                    self._stop_for_good(stuck)
                    return
            self._finish()
        except BaseException as exc:  # a bug outside the guarded steps: stop cleanly, say why
            self._stop_for_good(f"pipeline thread stopped: {describe(exc)}", exc)

    def _turn(self) -> bool:
        """One loop iteration; False once a shutdown has nothing left to do."""
        items = self._take()
        if items:
            self._process_guarded(items)
        self.guard.run("remember emitted runs", self._remember_emitted)
        self.guard.run("commands", self._run_commands)
        self.guard.run("collect runs", self._collect_due)
        self._housekeeping()
        with self._cond:
            return not (self._stopping and not self._queue and not self._commands)

    def _finish(self) -> None:
        """Clean stop: emit every open run, wait for the writer, persist a clean state."""
        self._pending_runs.extend(self.stitcher.due(everything=True))
        self._emit_pending()
        if self.store.drain(timeout=FINAL_DRAIN_SECONDS) and self.store.problem() is None:
            self._remember_emitted()
            self.persist_state(clean=True)
        else:
            # A store that stayed down through shutdown: the write-ahead log and the persisted
            # low-water mark make the next start recover everything.
            log.error("stopped before everything was stored; the next start recovers it")

    def _stop_for_good(self, reason: str, exc: BaseException | None = None) -> None:
        """The loop cannot go on: say why (``/readyz``, receivers, commands) and end cleanly."""
        log.error("%s; not ready until restarted (the next start recovers everything accepted)", reason, exc_info=exc)
        with self._cond:
            self._fatal = reason
            commands, self._commands = list(self._commands), deque()
            self._cond.notify_all()
        for command in commands:
            if command.future.set_running_or_notify_cancel():
                command.future.set_exception(PipelineStopped(reason))
        with contextlib.suppress(Exception):
            self.persist_state(clean=False)

    def _process_guarded(self, items: list[Submission]) -> None:
        started = time.thread_time()
        self.metrics.inc("otelspend_cpu_seconds_total", sum(i.batch.cpu_seconds for i in items), stage="prepare")
        try:
            self.process(items)
        except Exception as exc:
            # A bug, not bad input (the normaliser rejects that): keep serving, and keep
            # the batch in the write-ahead log (checkpoints stop below it) for the next start.
            self.guard.failed("process", exc)
            self.metrics.inc("otelspend_pipeline_errors_total")
            self.release(sum(item.batch.count for item in items if item.batch.spans is not None))
        else:
            if all(item.batch.spans is not None for item in items):  # else _prepare_failed counted it
                self.guard.succeeded("process")
        finally:
            self.metrics.inc("otelspend_cpu_seconds_total", time.thread_time() - started, stage="stitch")

    def _take(self) -> list[Submission]:
        deadline = time.monotonic() + self.flush_interval
        with self._cond:
            while True:
                rows = sum(s.batch.count for s in self._queue)
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
                count += item.batch.count
            return taken

    def process(self, items: list[Submission]) -> None:
        """Stitch one batch now; store it (then checkpoint the log) on the writer.

        The spans arrive priced and in Arrow (``pipeline.prepare``); here exact duplicates of
        spans this process knows are dropped, and the compact spans join their runs. A
        request whose preparation failed is left in the write-ahead log, unstored, for the
        next start (like a batch this thread fails on).
        """
        good = [item for item in items if item.batch.spans is not None]
        for item in items:
            if item.batch.spans is None:
                self._prepare_failed(item)
        if not good:
            return
        resources: dict[int, Any] = {}
        seen: set[tuple[str, str]] = set()
        unpriced: Counter[str] = Counter()
        tables: list[pa.Table] = []
        duplicates = 0
        for item in good:
            resources.update(item.batch.resources)
            table, dropped = self._stitch_new(item.batch, seen, unpriced)
            tables.append(table)
            duplicates += dropped
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        self.resources.remember(resources)
        for reason, count in unpriced.items():
            self.metrics.inc("otelspend_calls_unpriced_total", count, reason=reason)
        if duplicates:
            self.metrics.inc("otelspend_spans_duplicate_total", duplicates)
        self._store_spans(table, good, resources)

    def _stitch_new(
        self, batch: PreparedBatch, seen: set[tuple[str, str]], unpriced: Counter[str]
    ) -> tuple[pa.Table, int]:
        """Add the batch's spans this process does not know to their runs; its table without
        the others, and how many those were (exact duplicates, dropped before any write)."""
        assert batch.spans is not None
        lite = compact_spans(batch)
        kept: list[Any] = []
        keep: list[bool] | None = None
        is_known = self.stitcher.is_known
        for index, span in enumerate(lite):
            key = (span[L.trace_id], span[L.span_id])
            if key in seen or is_known(*key):
                if keep is None:
                    keep = [True] * len(lite)
                keep[index] = False
                continue
            seen.add(key)
            kept.append(span)
            if span[L.unpriced_reason]:
                unpriced[span[L.unpriced_reason]] += 1
        self.stitcher.add(kept, batch.ingested_ns)
        self.observer.spans_priced(kept, batch.ingested_ns)
        if keep is None:
            return batch.spans, 0
        return batch.spans.filter(pa.array(keep)), len(lite) - len(kept)

    def _store_spans(self, table: pa.Table, items: list[Submission], resources: dict[int, Any]) -> None:
        """Hand the insert to the store writer; once stored, give the queue room back and
        checkpoint the write-ahead log (the writer job holds the Arrow table only)."""
        first = min(item.seq for item in items)
        last = max(item.seq for item in items)
        seqs = [item.seq for item in items]
        accepted = sum(item.batch.count for item in items)
        written = table.num_rows
        writer, refusal = self.writer, self._count_refusal

        def insert(_attempt: int) -> list[Refused]:
            return insert_isolating(lambda part: writer.write([], resources, part), table, on_refusal=refusal)

        def stored(refused: list[Refused]) -> None:
            self.release(accepted)
            quarantined = sum(r.rows.num_rows for r in refused)
            self.metrics.inc("otelspend_spans_written_total", written - quarantined)
            if refused:
                self.metrics.inc("otelspend_spans_quarantined_total", quarantined)
                self.emitter.refuse(_span_keys(refused))
                self._quarantine_spans(refused, first, last)
            self._checkpoint_wal(self.wal.complete(seqs))

        self.store.submit(insert, "otelspend_insert_seconds", stored)

    def _prepare_failed(self, item: Submission) -> None:
        """Pricing or Arrow building failed on this request (a bug): count it, give its room
        back, never checkpoint past it (the next start stores it from the log)."""
        self.guard.failed("process", RuntimeError(item.batch.failure or "preparing the request failed"))
        self.metrics.inc("otelspend_pipeline_errors_total")
        self.release(item.batch.count)

    # -- on the store writer thread: the write-ahead log checkpoint ---------------------------

    def checkpoint_after(self, seq: int) -> None:
        """Checkpoint the log at ``seq`` in order with the inserts queued before it (recovery:
        a logged request that no longer decodes has nothing to store)."""
        self.store.submit(
            lambda _attempt: None, "otelspend_insert_seconds", lambda _: self._checkpoint_wal(self.wal.complete([seq]))
        )

    def _checkpoint_wal(self, seq: int) -> None:
        if self._wal_hold is not None:
            seq = min(seq, self._wal_hold)
        self.wal.checkpoint(seq)

    def _count_refusal(self, error: BaseException) -> None:
        self.metrics.inc("otelspend_store_permanent_errors_total")

    def _quarantine_spans(self, refused: list[Refused], first: int, last: int) -> None:
        try:
            self.quarantine.spans(refused, first_seq=first, last_seq=last)
        except OSError as exc:
            # Neither stored nor quarantined: the write-ahead log keeps it for the next start.
            below = first - 1
            self._wal_hold = below if self._wal_hold is None else min(self._wal_hold, below)
            self._wal_hold_reason = (
                f"write-ahead log held below seq {first}: refused rows could not be quarantined ({describe(exc)})"
            )
            raise

    # -- runs ---------------------------------------------------------------------------------

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
        """Plan the pending runs here and hand the plan to the writer.

        Until the writer has the job, the runs stay pending: an error on the way (in the
        plan, or a stopped writer) leaves them to the next turn, never half handed over.
        """
        runs = _merge_same_runs(self._pending_runs)
        if not runs:
            self._pending_runs = []
            return
        started = time.thread_time()
        plan = self.emitter.plan(runs)  # here, on the pipeline thread: the writer only writes
        self.metrics.inc("otelspend_cpu_seconds_total", time.thread_time() - started, stage="runs")
        batch = next(self._batches)
        done, failed = self._emission_done(batch), self._emission_failed(batch, plan)
        self.store.submit(self._emission(plan), "otelspend_emit_seconds", done, failed=failed)
        self._pending_runs = []
        self._in_flight[batch] = {run.run_id: run for run in runs}
        for run in runs:  # a merged run stands for the ones folded into it
            self.stitcher.emitting[run.run_id] = run

    def _emission(self, plan: EmitPlan) -> Callable[[int], tuple[int, EmitStats]]:
        emitter = self.emitter

        def emit(attempt: int) -> tuple[int, EmitStats]:
            started = time.time_ns()
            try:
                # A failed attempt may have written part of it: reconcile everything against the store.
                return started, emitter.commit(plan if attempt == 1 else plan.retry())
            except Exception as exc:
                if classify(exc) is not ErrorKind.PERMANENT:
                    raise
                self._count_refusal(exc)
                return started, emitter.commit_isolating(plan, on_refusal=self._count_refusal)

        return emit

    def _emission_done(self, batch: int) -> Callable[[tuple[int, EmitStats]], None]:
        def done(result: tuple[int, EmitStats]) -> None:
            started, stats = result
            self._emitted.append(_EmissionDone(batch, started, stats))
            self.metrics.inc("otelspend_runs_emitted_total", stats.emitted)
            self.metrics.inc("otelspend_runs_unchanged_total", stats.unchanged)
            if stats.late_ignored:
                self.metrics.inc("otelspend_late_spans_ignored_total", stats.late_ignored)
            if stats.failed:
                self.metrics.inc("otelspend_runs_quarantined_total", len(stats.failed))
                for reason, run_ids in _by_reason(stats.failed).items():
                    self.quarantine.runs(run_ids, reason)

        return done

    def _emission_failed(self, batch: int, plan: EmitPlan) -> Callable[[BaseException], None]:
        def failed(error: BaseException) -> None:
            self._emitted.append(_EmissionDone(batch))
            self.metrics.inc("otelspend_runs_quarantined_total", len(plan.snapshots))
            self.quarantine.runs(
                [s.run_id for s in plan.snapshots], f"the store refused the emission: {describe(error)}"
            )

        return failed

    def _remember_emitted(self) -> None:
        """Take back what the writer finished: the stitcher remembers emitted runs (pipeline thread)."""
        while self._emitted:
            done = self._emitted.popleft()
            runs = self._in_flight.pop(done.batch)
            stats = done.stats
            if stats is None:
                for run in runs.values():
                    self.stitcher.emitted(run, UNKNOWN)
                continue
            self._emit_checkpoint_ns = done.started_ns
            for written in stats.written:
                # The closed cache keeps span ids (duplicates are dropped without the store), not
                # the rows written: a late span's run is reloaded from the store anyway (its
                # stored spans), and its rows come with them; holding every emitted run's rows
                # cost more memory than anything else the pipeline keeps.
                self.stitcher.emitted(runs[written.run_id], UNKNOWN, written.span_ids)
            for run_id, _ in stats.failed:
                self.stitcher.emitted(runs[run_id], UNKNOWN)
            self.resources.learn(stats.fetched_resources)
            self.observer.runs_written(list(map(tuple, stats.run_rows)), list(map(tuple, stats.call_rows)))

    # -- commands and housekeeping -------------------------------------------------------------

    def _run_commands(self) -> None:
        with self._cond:
            if not self._commands:
                return
            self._commands = deque(c for c in self._commands if not c.future.cancelled())
        if not self.store.drain(timeout=COMMAND_DRAIN_SECONDS):
            return  # earlier store calls still running: the commands wait, the loop goes on
        self._remember_emitted()
        while True:
            with self._cond:
                if not self._commands:
                    return
                command = self._commands.popleft()
            if not command.future.set_running_or_notify_cancel():
                continue  # its caller gave up waiting
            try:
                command.future.set_result(command.run())
            except Exception as exc:
                command.future.set_exception(exc)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        maintenance = self.store_maintenance
        if maintenance is not None and now - self._last_purge >= _PURGE_SECONDS:
            self._last_purge = now
            self.guard.run("store maintenance", lambda: self._submit_maintenance(maintenance))
        if now - self._last_reload_check >= 2.0:
            self._last_reload_check = now
            for reloadable in (self.pricing, *self.reloadables):
                self.guard.run(f"reload {reloadable.name}", reloadable.check)
        if now - self._last_state >= 1.0:
            self._last_state = now
            self.guard.run("persist state", lambda: self.persist_state(clean=False))

    def _submit_maintenance(self, maintenance: Callable[[], None]) -> None:
        self.store.submit(lambda _attempt: maintenance(), "otelspend_maintenance_seconds", best_effort=True)

    # -- state for crash recovery ---------------------------------------------------------

    def low_water_mark_ns(self) -> int:
        """Earliest ingest time not yet reflected in a stored run (open, pending or in flight)."""
        mark = self.stitcher.low_water_mark_ns()
        return mark if mark is not None else time.time_ns()

    def persist_state(self, *, clean: bool) -> None:
        """Write ``state.json`` atomically: what a restart after a crash must redo."""
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


def _span_keys(refused: list[Refused]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for part in refused:
        keys.extend(zip(part.rows.column("trace_id").to_pylist(), part.rows.column("span_id").to_pylist(), strict=True))
    return keys


def _by_reason(failed: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for run_id, reason in failed:
        grouped.setdefault(reason, []).append(run_id)
    return grouped


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
    """The state the last run persisted (None when there is none or it is unreadable)."""
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
        return state
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("%s is unreadable; recovering from the write-ahead log only", data_dir / STATE_FILE)
        return None
