"""Alert history in ClickHouse: events and delivery states, written by one thread.

Alerts must leave even when the store is down, so the store is never on the alert path:
events and delivery states wait here (bounded) and are written in batches, retried with
backoff while the store fails. An event written is journaled as ``recorded``; one whose
write was lost to a crash is written again after the restart (the table replaces rows by
id, so twice is harmless).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.controls.store import DeliveryState, alert_row, insert_history
from otelspend.metrics import Metrics

log = logging.getLogger("otelspend")
FLUSH_SECONDS = 5.0
"""Rows are gathered this long per insert while alerts keep coming (the first after a quiet
spell is written at once): an insert through ClickHouse costs about 20 ms of CPU measured,
whatever it holds."""
MAX_WAITING = 50_000
_BACKOFF_MAX = 30.0


class HistoryWriter:
    """Writes alert events and delivery states to the store, in the background."""

    def __init__(self, store: Store, metrics: Metrics, *, on_recorded: Callable[[list[str]], None]) -> None:
        self.store = store
        self.metrics = metrics
        self.on_recorded = on_recorded
        self._alerts: list[tuple[str, list[Any]]] = []
        self._states: list[DeliveryState] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._writing = False
        self._hurry = False
        self._thread: threading.Thread | None = None
        self.last_error = ""

    def start(self) -> None:
        """Start writing."""
        self._thread = threading.Thread(target=self._loop, name="otelspend-alert-history", daemon=True)
        self._thread.start()

    def event(self, event: Mapping[str, Any], time_ns: int) -> None:
        """An alert event to record."""
        with self._cond:
            self._alerts.append((str(event["id"]), alert_row(event, time_ns, time.time_ns())))
            self._cond.notify()

    def state(self, state: DeliveryState) -> None:
        """A delivery's new state (older states of waiting rows are dropped first when full)."""
        with self._cond:
            if len(self._states) >= MAX_WAITING:
                del self._states[: MAX_WAITING // 10]
                self.metrics.inc("otelspend_alert_history_dropped_total", MAX_WAITING // 10)
            self._states.append(state)
            self._cond.notify()

    def flush(self) -> None:
        """Write what waits now instead of at the end of the gathering interval."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being written."""
        with self._cond:
            return not self._alerts and not self._states and not self._writing

    def stop(self, timeout: float = 10.0) -> None:
        """Write what waits (for up to ``timeout``), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        delay = 0.5
        while True:
            with self._cond:
                while not self._alerts and not self._states and not self._stopping:
                    self._cond.wait()
                if not self._alerts and not self._states:
                    return
                alerts, self._alerts = self._alerts, []
                states, self._states = self._states, []
                self._writing = True
            try:
                insert_history(self.store, [row for _, row in alerts], states)
            except Exception as exc:  # any store error: keep the rows, retry with backoff
                self.metrics.inc("otelspend_alert_history_errors_total")
                if not self.last_error:
                    log.warning("alert history: store write failed, retrying: %s", exc)
                self.last_error = str(exc)[:300]
                with self._cond:
                    self._alerts[:0] = alerts
                    self._states[:0] = states
                    self._writing = False
                    if self._stopping:
                        return  # the journal re-records the events on the next start
                    self._cond.wait(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            delay = 0.5
            self.last_error = ""
            if alerts:
                self.on_recorded([event_id for event_id, _ in alerts])
            with self._cond:
                self._writing = False
                deadline = time.monotonic() + FLUSH_SECONDS  # gather the next batch
                while not self._stopping and not self._hurry and (remaining := deadline - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                self._hurry = False
