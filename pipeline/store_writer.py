"""One thread that performs the pipeline's store calls, in the order they were submitted.

ClickHouse does its work with the GIL released, so handing inserts and emissions to this
thread lets the pipeline thread price and stitch the next batch meanwhile: Python and the
database overlap instead of taking turns. Jobs run strictly in submission order (a run is
emitted after its spans are written; a read sees every earlier write). ``submit`` blocks
while ``max_jobs`` are waiting, which bounds memory and carries back-pressure to the
receivers.

What a failure does (``pipeline/errors.py`` classifies it):

* **retryable** (store down, timeout, connection error, anything unmarked): the job is
  retried with backoff (0.1 s doubling to 5 s) until the store takes it; meanwhile
  ``problem()`` says "store failing: <error>" (``/readyz`` 503, receivers refuse). The
  outage is logged once and every failed call counted (``otelspend_store_errors_total``).
  Nothing is dropped: at shutdown a store still failing after 10 s is given up, and the
  write-ahead log and the persisted low-water mark make the next start redo the rest.
* **permanent** (bad data): not retried; the job's ``failed(error)`` callback quarantines
  what it concerns (``otelspend_store_permanent_errors_total``).
* a **best-effort** job (periodic maintenance) is counted and skipped on any error.

``done`` / ``failed`` callbacks run guarded: an exception there is logged once per streak,
counted (``otelspend_loop_errors_total{thread="store-writer", step="insert callback"}``) and the
thread goes on. Anything else ends the thread cleanly: ``problem()`` gives the reason,
``submit`` raises ``WriterStopped`` and ``drain`` returns False instead of waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otelspend.metrics import Metrics
from otelspend.pipeline.errors import ErrorKind, classify, describe
from otelspend.pipeline.guard import LoopGuard

log = logging.getLogger("otelspend")
BACKOFF_START_SECONDS, BACKOFF_MAX_SECONDS = 0.1, 5.0
GIVE_UP_WHEN_STOPPING_SECONDS = 10.0
"""A store still failing this long after shutdown began is given up (the next start recovers)."""
_WAIT_SLICE_SECONDS = 0.5


class WriterStopped(RuntimeError):
    """The store writer thread is not running: nothing submitted now would be written."""


@dataclass
class _Job:
    run: Callable[[int], Any]
    """Called with the attempt number (1, 2, ...): a retried job may reconcile first."""
    histogram: str
    done: Callable[[Any], None] | None = None
    failed: Callable[[BaseException], None] | None = None
    """Called instead of ``done`` when the job failed with a permanent error."""
    best_effort: bool = False

    @property
    def step(self) -> str:
        """The job's name in logs and ``otelspend_loop_errors_total``: ``insert``, ``emit``, ..."""
        return self.histogram.removeprefix("otelspend_").removesuffix("_seconds")


class StoreWriter:
    """The store writer thread and its bounded queue of jobs."""

    def __init__(self, metrics: Metrics, *, max_jobs: int = 4) -> None:
        self.metrics = metrics
        self.max_jobs = max_jobs
        self.healthy = True
        """False while a store call keeps failing with a retryable error (written by the thread)."""
        self.last_error = ""
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._running = 0
        self._stopping = threading.Event()
        self._stop_started = 0.0
        self._stopped_reason: str | None = None
        self._thread: threading.Thread | None = None
        self._guard = LoopGuard("store-writer", metrics)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread; a second call does nothing."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name="otelspend-store", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        """Whether ``start`` has run."""
        return self._thread is not None

    @property
    def alive(self) -> bool:
        """Whether the writer thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def problem(self) -> str | None:
        """None while store calls succeed; else why not (for readiness)."""
        if self._stopped_reason is not None:
            return self._stopped_reason
        if not self.healthy:
            return f"store failing: {self.last_error}"
        return None

    def shutdown(self, timeout: float = 60.0) -> None:
        """Run what is queued (giving up on a dead store after a while), then stop."""
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            if not self._stopping.is_set():
                self._stop_started = time.monotonic()
                self._stopping.set()
            self._cond.notify_all()
        thread.join(timeout)
        if thread.is_alive():
            log.error("store writer did not stop within %.0fs; the next start recovers what it held", timeout)

    # -- jobs ---------------------------------------------------------------------------------

    def submit(
        self,
        run: Callable[[int], Any],
        histogram: str,
        done: Callable[[Any], None] | None = None,
        *,
        failed: Callable[[BaseException], None] | None = None,
        best_effort: bool = False,
    ) -> None:
        """Queue a store call; blocks while ``max_jobs`` are waiting and the thread works on them.

        Raises ``WriterStopped`` when the thread has stopped (the wait ends with it).
        """
        with self._cond:
            while len(self._jobs) >= self.max_jobs and self.alive:
                self._cond.wait(_WAIT_SLICE_SECONDS)
            if self._thread is not None and not self.alive:
                raise WriterStopped(self._stopped_reason or "the store writer has stopped")
            self._jobs.append(_Job(run, histogram, done, failed, best_effort))
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted job has run; False on timeout or if the thread stopped."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.alive:
                    return False
                self._cond.wait(min(remaining, _WAIT_SLICE_SECONDS))
        return True

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return len(self._jobs) + self._running

    # -- the thread ---------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            while (job := self._next()) is not None:
                self._run(job)
        except BaseException as exc:  # a bug in the loop itself: stop cleanly, say why
            self._stopped_reason = f"store writer stopped: {describe(exc)}"
            log.exception("store writer thread stopped; the next start recovers what it held")
        finally:
            with self._cond:
                if self._stopped_reason is not None:
                    self._jobs.clear()
                self._running = 0
                self._cond.notify_all()

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._jobs and not self._stopping.is_set():
                self._cond.wait(_WAIT_SLICE_SECONDS)
            if not self._jobs:
                return None
            job = self._jobs.popleft()
            self._running = 1
            self._cond.notify_all()
            return job

    def _run(self, job: _Job) -> None:
        try:
            result = self._attempt(job)
        except _Abandoned:
            with self._cond:
                self._jobs.clear()
            self._stopping.set()
            return
        except _Permanent as permanent:
            failed, error = job.failed, permanent.error
            if failed is not None:
                self._guard.run(f"{job.step} callback", lambda: failed(error))
        except _Skipped:
            pass
        else:
            done = job.done
            if done is not None:
                self._guard.run(f"{job.step} callback", lambda: done(result))
        finally:
            with self._cond:
                self._running = 0
                self._cond.notify_all()

    def _attempt(self, job: _Job) -> Any:
        delay = BACKOFF_START_SECONDS
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            cpu_started = time.thread_time()
            try:
                result = job.run(attempt)
            except Exception as exc:
                self._failed(job, exc)
                if self._stopping.is_set() and time.monotonic() - self._stop_started > GIVE_UP_WHEN_STOPPING_SECONDS:
                    log.error("store still failing at shutdown; the next start recovers the rest")
                    raise _Abandoned from exc
                self._stopping.wait(delay)  # returns early at shutdown, to give up sooner
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            self.metrics.observe(job.histogram, time.perf_counter() - started)
            self.metrics.inc("otelspend_cpu_seconds_total", time.thread_time() - cpu_started, stage=job.step)
            if job.best_effort:
                self._guard.succeeded(job.step)
            elif not self.healthy:
                log.info("store recovered")
                self.healthy = True
                self.last_error = ""
            return result

    def _failed(self, job: _Job, exc: Exception) -> None:
        """Account for one failed attempt; raise to stop retrying it."""
        if job.best_effort:
            self._guard.failed(job.step, exc)
            raise _Skipped from exc
        if classify(exc) is ErrorKind.PERMANENT:
            self.metrics.inc("otelspend_store_permanent_errors_total")
            log.error("store refused a call for good (%s); quarantining what it concerns", describe(exc, 300))
            raise _Permanent(exc) from exc
        self.metrics.inc("otelspend_store_errors_total")
        if self.healthy:
            log.warning("store call failed, retrying with backoff: %s", describe(exc, 300))
        self.healthy = False
        self.last_error = describe(exc)


class _Abandoned(Exception):
    pass


class _Skipped(Exception):
    pass


class _Permanent(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
