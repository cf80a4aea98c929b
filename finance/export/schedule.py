"""The scheduled export: every completed UTC day as a FOCUS file in a directory.

A background thread wakes every ``schedule_interval_seconds`` and writes the files of the last
``schedule_days`` days that ended at least ``schedule_delay_hours`` ago and have no file yet.
File names carry the day and the grain (``focus-2026-11-30--2026-12-01-day.csv``), so a pass is
idempotent: a day is written once, atomically (a temporary file renamed into place), and a
restart or a second pass finds it there. To re-export a day after late data, delete its file.

The thread never dies silently: a failed pass is logged and counted
(``otelspend_export_scheduled_total{outcome="failed"}``) and retried on the next one; every
wait is bounded by the interval, and ``shutdown`` stops it within one query.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from otelspend.clickhouse.client import Store
from otelspend.finance.export.service import NS, ExportRequest, export, file_name
from otelspend.finance.export.writers import Format
from otelspend.metrics import Metrics

log = logging.getLogger("otelspend.export")
DAY_S = 86_400


@dataclass(frozen=True)
class Schedule:
    """Where, how and how often the scheduled export writes its daily files."""

    directory: Path
    fmt: Format
    granularity: str
    days: int
    delay_s: float
    interval_s: float


def due_days(now_s: float, days: int, delay_s: float) -> list[int]:
    """Start (unix seconds) of each of the last ``days`` UTC days that ended ``delay_s`` ago, oldest first."""
    newest_end = int((now_s - delay_s) // DAY_S) * DAY_S
    return [newest_end - DAY_S * back for back in range(days, 0, -1)]


def write_atomically(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` through a temporary file renamed into place; returns the bytes written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    written = 0
    try:
        with temporary.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return written


class ScheduledExport:
    """The background thread (``start`` / ``shutdown``; shutdown is safe to call twice)."""

    def __init__(
        self,
        store: Store,
        schedule: Schedule,
        metrics: Metrics,
        request: Callable[[int, int], ExportRequest],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.schedule = schedule
        self.metrics = metrics
        self.request = request
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self._failing_since: float | None = None
        self._failures = 0

    def start(self) -> None:
        """Start the thread (the directory is created on its first pass)."""
        self._thread = threading.Thread(target=self._loop, name="otelspend-export", daemon=True)
        self._thread.start()
        log.info("scheduled FOCUS export into %s every %.0fs", self.schedule.directory, self.schedule.interval_s)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop after the file being written (bounded wait: the thread is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        # The guard pattern of the pipeline's loops (pipeline/guard.py, which finance/ may not
        # import): every failure counted, the traceback logged once per streak, the recovery
        # logged; the thread never ends before shutdown. A failing export does not touch
        # readiness: ingest does not depend on it.
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a failed pass is retried on the next one; the thread lives on
                self._failed(exc)
            else:
                self._succeeded()
            self._stop.wait(self.schedule.interval_s)

    def _failed(self, exc: Exception) -> None:
        self.last_error = self.store.scrub(f"{type(exc).__name__}: {exc}")[:500]
        self.metrics.inc("otelspend_export_scheduled_total", outcome="failed")
        self.metrics.inc("otelspend_loop_errors_total", thread="export", step="scheduled export")
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.error(
                "export thread: scheduled export failed; retried every %.0fs (logged once until it succeeds again)",
                self.schedule.interval_s,
                exc_info=exc,
            )

    def _succeeded(self) -> None:
        if self._failing_since is not None:
            log.info(
                "export thread: scheduled export works again after %d failure(s) over %.1fs",
                self._failures,
                time.monotonic() - self._failing_since,
            )
        self._failing_since, self._failures, self.last_error = None, 0, ""

    def run_once(self) -> list[Path]:
        """Write every due day that has no file yet; returns the files written."""
        written = []
        s = self.schedule
        s.directory.mkdir(parents=True, exist_ok=True)
        for day in due_days(self.clock(), s.days, s.delay_s):
            if self._stop.is_set():
                break
            start_ns, end_ns = day * NS, (day + DAY_S) * NS
            path = s.directory / file_name(start_ns, end_ns, s.granularity, s.fmt)
            if path.exists():
                continue
            size = write_atomically(path, export(self.store, self.request(start_ns, end_ns), s.fmt))
            self.metrics.inc("otelspend_export_scheduled_total", outcome="written")
            log.info("wrote %s (%d bytes)", path, size)
            written.append(path)
        return written
