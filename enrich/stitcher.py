"""Run stitching state: spans grouped by trace id until their run can be emitted.

Data flow (one owner thread, the pipeline's; nothing here does I/O; the store writer only
ever sees immutable snapshots of the runs handed out, ``pipeline.emission.RunSnapshot``):

    add(spans) ──► open runs (bounded) ──due()──► emission (otelspend.pipeline.emission)
        ▲               │ root seen + settle_seconds quiet, or root_wait_seconds quiet,
        │               │ or over max_open_runs (oldest first)
        └── reopen ◄── closed cache (recently emitted: span ids + emitted rows, bounded)

A span whose trace is neither open nor cached may belong to a run emitted long ago (a late
span) or before a restart: its run starts ``partial`` with an unknown previous emission,
and emission asks the store before computing. Exact duplicates of known spans are dropped
here (``is_known``) before they cost a write. Memory: open runs and the closed cache are
capped by count; evictions are counted, never silent.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otelspend.record import ApiOutcome, L

UNKNOWN: Any = object()
"""Previous emission not known in memory: the store must be asked."""


@dataclass
class OpenRun:
    """A run held open: its spans by id, whether its root arrived, and what emission needs to know."""

    run_id: str
    spans: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    has_root: bool = False
    last_activity: float = 0.0
    dirty_since_ns: int = 0
    """Ingest time of the earliest span not yet reflected in an emission (crash recovery)."""
    previous: Any = None
    """Emitted rows currently stored, None if never emitted, UNKNOWN if not known here."""
    partial: bool = False
    """``spans`` may not hold the whole run: load the stored spans before computing."""
    outcomes: list[ApiOutcome] = field(default_factory=list)
    load_outcomes: bool = False


@dataclass
class ClosedRun:
    """A recently emitted run, remembered so a late or duplicate span needs no store lookup."""

    previous: Any
    span_ids: frozenset[str]
    had_root: bool


@dataclass
class StitchStats:
    """What the stitcher dropped, evicted and reopened (counted, never silent)."""

    duplicates_dropped: int = 0
    evicted_open: int = 0
    evicted_closed: int = 0
    reopened: int = 0


class Stitcher:
    """Open runs by trace id until due, and a bounded cache of closed ones (module docstring)."""

    def __init__(
        self,
        *,
        settle_seconds: float = 3.0,
        root_wait_seconds: float = 300.0,
        max_open_runs: int = 100_000,
        max_spans_per_run: int = 50_000,
        closed_cache_runs: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settle = settle_seconds
        self.root_wait = root_wait_seconds
        self.max_open = max_open_runs
        self.max_spans = max_spans_per_run
        self.closed_cap = closed_cache_runs
        self.clock = clock
        self.rooted: OrderedDict[str, OpenRun] = OrderedDict()
        self.unrooted: OrderedDict[str, OpenRun] = OrderedDict()
        self.closed: OrderedDict[str, ClosedRun] = OrderedDict()
        self.stats = StitchStats()
        self.forced: OrderedDict[str, OpenRun] = OrderedDict()
        """Runs to emit at the next due(): over a cap, or reopened by an outcome."""
        self.emitting: dict[str, OpenRun] = {}
        """Runs handed out by due() and not yet reported back by emitted()."""

    # -- queries ------------------------------------------------------------------------

    def open_count(self) -> int:
        """Runs held open (rooted, unrooted, and forced out at the next ``due``)."""
        return len(self.rooted) + len(self.unrooted) + len(self.forced)

    def is_open(self, run_id: str) -> bool:
        """True while the run is held open (not yet handed out for emission)."""
        return self._open(run_id) is not None

    def _open(self, run_id: str) -> OpenRun | None:
        return self.rooted.get(run_id) or self.unrooted.get(run_id) or self.forced.get(run_id)

    def is_known(self, trace_id: str, span_id: str) -> bool:
        """True for an exact duplicate of a span this process already holds or emitted."""
        for run in (self._open(trace_id), self.emitting.get(trace_id)):
            if run is not None and span_id in run.spans:
                return True
        closed = self.closed.get(trace_id)
        return closed is not None and span_id in closed.span_ids

    def open_runs_of_workflow(self, workflow_id: str) -> list[str]:
        """Open runs with a span carrying this workflow id (for outcomes posted by workflow)."""
        return [
            run.run_id
            for queue in (self.rooted, self.unrooted, self.forced)
            for run in queue.values()
            if any(span[L.workflow_id] == workflow_id for span in run.spans.values())
        ]

    def low_water_mark_ns(self) -> int | None:
        """Earliest ingest time not yet reflected in an emission, if any run is open."""
        marks = [
            run.dirty_since_ns for q in (self.rooted, self.unrooted, self.forced, self.emitting) for run in q.values()
        ]
        return min(marks) if marks else None

    # -- input --------------------------------------------------------------------------

    def add(self, spans: Iterable[tuple[Any, ...]], ingested_ns: int) -> None:
        """Add span tuples to their runs (reopening closed ones); exact duplicates are dropped and counted."""
        now = self.clock()
        for span in spans:
            run_id = span[L.trace_id]
            run = self._get_or_reopen(run_id, ingested_ns)
            if span[L.span_id] in run.spans:
                self.stats.duplicates_dropped += 1
                continue
            run.spans[span[L.span_id]] = span
            run.last_activity = now
            if run_id in self.forced:
                run.has_root = run.has_root or not span[L.parent_span_id]
            elif not span[L.parent_span_id] and not run.has_root:
                run.has_root = True
                self.unrooted.pop(run_id, None)
                self.rooted[run_id] = run
            else:
                (self.rooted if run.has_root else self.unrooted).move_to_end(run_id)
            if len(run.spans) >= self.max_spans:
                self._force(run)
        self._enforce_cap()

    def add_outcome(self, run_id: str, outcome: ApiOutcome, ingested_ns: int) -> None:
        """Attach an API outcome to a run; a run not open is reopened and emitted at the next ``due``."""
        run = self._open(run_id)
        if run is None:
            # Not open: re-emit it at once with the outcome (nothing else is awaited).
            run = self._get_or_reopen(run_id, ingested_ns)
            run.partial = True
            self._force(run)
        run.outcomes.append(outcome)
        run.load_outcomes = True

    def _get_or_reopen(self, run_id: str, ingested_ns: int) -> OpenRun:
        run = self._open(run_id)
        if run is not None:
            return run
        emitting = self.emitting.get(run_id)
        if emitting is not None:
            # Being written right now: the writer stores it before this one is emitted, so
            # this one reads it back from the store (and waits like a run whose root came).
            run = OpenRun(run_id, has_root=emitting.has_root, previous=UNKNOWN, partial=True, load_outcomes=True)
            run.dirty_since_ns = ingested_ns
            (self.rooted if run.has_root else self.unrooted)[run_id] = run
            return run
        closed = self.closed.pop(run_id, None)
        if closed is not None:
            self.stats.reopened += 1
            # Its root was seen before: a late span waits settle_seconds, not root_wait_seconds.
            run = OpenRun(run_id, has_root=closed.had_root, previous=closed.previous, partial=True, load_outcomes=True)
        else:
            run = OpenRun(run_id, previous=UNKNOWN)
        run.dirty_since_ns = ingested_ns
        (self.rooted if run.has_root else self.unrooted)[run_id] = run
        return run

    def restore(self, run_id: str, spans: Iterable[tuple[Any, ...]], ingested_ns: int) -> None:
        """Re-open a run from stored spans after a restart (previous emission asked at close)."""
        run = self._get_or_reopen(run_id, ingested_ns)
        run.previous = UNKNOWN
        run.load_outcomes = True
        self.add(spans, ingested_ns)

    # -- output -------------------------------------------------------------------------

    def due(self, *, now: float | None = None, everything: bool = False) -> list[OpenRun]:
        """Pop the runs ready to emit (all of them with ``everything``)."""
        now = self.clock() if now is None else now
        ready = list(self.forced.values())
        self.forced.clear()
        for queue, wait in ((self.rooted, self.settle), (self.unrooted, self.root_wait)):
            while queue:
                run = next(iter(queue.values()))
                if not everything and run.last_activity + wait > now:
                    break  # queues are ordered by last activity
                queue.popitem(last=False)
                ready.append(run)
        for run in ready:
            self.emitting[run.run_id] = run
        return ready

    def emitted(self, run: OpenRun, previous: Any, span_ids: frozenset[str] | None = None) -> None:
        """A run handed out by due() is stored (or needed no write): remember it, so late
        spans and duplicates need no store lookup. ``span_ids``: every span id of the run
        the emission saw (stored ones included), when it knows more than ``run.spans``."""
        if self.emitting.get(run.run_id) is run:
            del self.emitting[run.run_id]
        if self.closed_cap <= 0:
            return
        known = frozenset(run.spans) if span_ids is None else span_ids
        self.closed[run.run_id] = ClosedRun(previous, known, run.has_root)
        self.closed.move_to_end(run.run_id)
        while len(self.closed) > self.closed_cap:
            self.closed.popitem(last=False)
            self.stats.evicted_closed += 1

    def _force(self, run: OpenRun) -> None:
        self.rooted.pop(run.run_id, None)
        self.unrooted.pop(run.run_id, None)
        self.forced[run.run_id] = run

    def _enforce_cap(self) -> None:
        while len(self.rooted) + len(self.unrooted) > self.max_open:
            queue = self.unrooted if self.unrooted else self.rooted
            _, run = queue.popitem(last=False)
            self.forced[run.run_id] = run
            self.stats.evicted_open += 1
