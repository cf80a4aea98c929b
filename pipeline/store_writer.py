"""One thread that performs the pipeline's store calls, in the order they were submitted.

ClickHouse does its work with the GIL released, so handing inserts and emissions to this
thread lets the pipeline thread price and stitch the next batch meanwhile: Python and the
database overlap instead of taking turns. Jobs run strictly in submission order (a run is
emitted after its spans are written; a read sees every earlier write), each retried with
backoff until the store takes it. ``submit`` blocks while ``max_jobs`` are waiting, which
bounds memory and carries back-pressure to the receivers.
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

log = logging.getLogger("otelspend")
_BACKOFF_START, _BACKOFF_MAX = 0.1, 5.0
_GIVE_UP_WHEN_STOPPING_SECONDS = 10.0


@dataclass
class _Job:
    run: Callable[[int], Any]
    """Called with the attempt number (1, 2, ...): a retried job may reconcile first."""
    histogram: str
    done: Callable[[Any], None] | None = None


class StoreWriter:
    def __init__(self, metrics: Metrics, *, max_jobs: int = 4) -> None:
        self.metrics = metrics
        self.max_jobs = max_jobs
        self.healthy = True
        self.last_error = ""
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._running = 0
        self._stopping = False
        self._stop_started = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="otelspend-store", daemon=True)
        self._thread.start()

    def submit(self, run: Callable[[int], Any], histogram: str, done: Callable[[Any], None] | None = None) -> None:
        """Queue a store call; blocks while ``max_jobs`` are already waiting."""
        with self._cond:
            while len(self._jobs) >= self.max_jobs and self._thread is not None:
                self._cond.wait(0.5)
            self._jobs.append(_Job(run, histogram, done))
            self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has run; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
        return True

    @property
    def pending(self) -> int:
        return len(self._jobs) + self._running

    def shutdown(self, timeout: float = 60.0) -> None:
        """Run what is queued (giving up on a dead store after a while), then stop."""
        with self._cond:
            if self._thread is None:
                return
            self._stopping = True
            self._stop_started = time.monotonic()
            self._cond.notify_all()
        self._thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._running = 1
                self._cond.notify_all()
            try:
                result = self._attempt(job)
            except _Abandoned:
                with self._cond:
                    self._jobs.clear()
                    self._running = 0
                    self._cond.notify_all()
                return
            if job.done is not None:
                job.done(result)
            with self._cond:
                self._running = 0
                self._cond.notify_all()

    def _attempt(self, job: _Job) -> Any:
        delay = _BACKOFF_START
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                result = job.run(attempt)
            except Exception as exc:  # any driver / engine error is treated as retryable
                self.metrics.inc("otelspend_store_errors_total")
                if self.healthy:
                    log.warning("store call failed, retrying with backoff: %s", exc)
                self.healthy = False
                self.last_error = str(exc)[:500]
                if self._stopping and time.monotonic() - self._stop_started > _GIVE_UP_WHEN_STOPPING_SECONDS:
                    # The write-ahead log and the persisted low-water mark make the next
                    # start recover whatever is given up here.
                    log.error("store still failing at shutdown; the next start recovers the rest")
                    raise _Abandoned from exc
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            self.metrics.observe(job.histogram, time.perf_counter() - started)
            if not self.healthy:
                log.info("store recovered")
            self.healthy = True
            self.last_error = ""
            return result


class _Abandoned(Exception):
    pass
