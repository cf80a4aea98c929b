"""Keep a background loop alive through one step's error, and say when it cannot go on.

Every step of a background loop (the pipeline thread's batch processing, run collection,
housekeeping; the store writer's callbacks) runs through ``LoopGuard.run``: an exception is
counted in ``otelspend_loop_errors_total{thread, step}`` every time and logged, with its
traceback, once per streak (the first failure; the recovery is logged too), so a step that
fails on every iteration neither floods the log nor goes unseen. The loop goes on.

A step that has failed on every attempt for ``give_up_seconds`` (and at least
``GIVE_UP_MIN_FAILURES`` times) is stuck: ``stuck()`` names it, and the loop's owner stops
the loop cleanly and reports the reason as not ready (``/readyz`` 503).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from otelspend.metrics import Metrics
from otelspend.pipeline.errors import describe

log = logging.getLogger("otelspend")
T = TypeVar("T")

GIVE_UP_SECONDS = 60.0
"""How long a step may fail on every attempt before its loop stops and reports not ready."""
GIVE_UP_MIN_FAILURES = 3


@dataclass
class _Streak:
    since: float
    failures: int
    last_error: str


class LoopGuard:
    """Error bookkeeping for one thread's loop (used by that thread only)."""

    def __init__(
        self,
        thread: str,
        metrics: Metrics,
        *,
        give_up_seconds: float = GIVE_UP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thread = thread
        self.metrics = metrics
        self.give_up_seconds = give_up_seconds
        self.clock = clock
        self._streaks: dict[str, _Streak] = {}

    def run(self, step: str, fn: Callable[[], T]) -> T | None:
        """``fn()``; on an exception, record it and return None (the loop goes on)."""
        try:
            result = fn()
        except Exception as exc:
            self.failed(step, exc)
            return None
        self.succeeded(step)
        return result

    def failed(self, step: str, exc: BaseException) -> None:
        """Count a failure of ``step``; log it if it starts a streak."""
        self.metrics.inc("otelspend_loop_errors_total", thread=self.thread, step=step)
        streak = self._streaks.get(step)
        if streak is None:
            self._streaks[step] = _Streak(self.clock(), 1, describe(exc))
            log.error(
                "%s thread: %s failed; going on (logged once until it succeeds again)",
                self.thread,
                step,
                exc_info=exc,
            )
            return
        streak.failures += 1
        streak.last_error = describe(exc)

    def succeeded(self, step: str) -> None:
        """End ``step``'s streak of failures, if any."""
        streak = self._streaks.pop(step, None)
        if streak is not None:
            log.info(
                "%s thread: %s works again after %d failure(s) over %.1fs",
                self.thread,
                step,
                streak.failures,
                self.clock() - streak.since,
            )

    def stuck(self) -> str | None:
        """Why the loop cannot go on (a step failing on every attempt for too long), or None."""
        now = self.clock()
        for step, streak in self._streaks.items():
            if streak.failures >= GIVE_UP_MIN_FAILURES and now - streak.since >= self.give_up_seconds:
                return (
                    f"{self.thread} thread stopped: {step} failed {streak.failures} times over "
                    f"{now - streak.since:.0f}s; last error: {streak.last_error}"
                )
        return None
