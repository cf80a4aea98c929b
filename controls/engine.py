"""The controls thread: everything the controls decide happens here, in order.

Inputs arrive on two queues, both filled without blocking:

* **stream** (bounded, ``controls.queue_batches``): batches of priced spans from the
  pipeline thread. When the thread falls behind, new batches are skipped and counted
  (``otelspend_controls_skipped_batches_total``): ingest is never slowed by a control.
* **ledger** (in order, never dropped): run deltas from the pipeline thread, budget
  figures loaded from the store (queued by the pipeline thread itself, so a load and the
  deltas around it are applied in the order they happened), budget changes, findings of
  the scheduled detectors, calls from the API.

Detections become incidents (``incidents.IncidentBook``); a new incident's event is
journaled (fsync) before it is handed to the webhook threads and the history writer, so
what was raised is delivered even across a crash. Memory the API reads (budget statuses,
flagged runs, the policy) is published as whole objects, swapped in one assignment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from otelspend.controls.budgets import Budget
from otelspend.controls.decision import BudgetCheck, Flag, budget_checks
from otelspend.controls.events import RETRY_LOOP, Detection, event_payload, new_id, resolved_payload
from otelspend.controls.incidents import Incident, IncidentBook
from otelspend.controls.journal import Journal, event_record, flag_record, incident_record
from otelspend.controls.policy import Policy
from otelspend.controls.spend import (
    BudgetLedger,
    BudgetStatus,
    Totals,
    detections,
    evaluate,
    forecast_key,
    still_on_pace,
)
from otelspend.controls.stream import StreamControls
from otelspend.metrics import Metrics
from otelspend.record import RUN_COLUMNS

log = logging.getLogger("otelspend")
NS = 10**9
TICK_SECONDS = 0.25
MAX_FLAGS = 100_000
_RUN_INDEX = {column.name: index for index, column in enumerate(RUN_COLUMNS)}
_RUN_ID, _RUN_SIGN = _RUN_INDEX["run_id"], _RUN_INDEX["sign"]


@dataclass(frozen=True)
class Published:
    """What the API reads, replaced as a whole by the controls thread."""

    budgets: dict[str, BudgetStatus] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    checks: tuple[BudgetCheck, ...] = ()
    """The budgets that add a reason to a decision, prepared for the check endpoint."""


@dataclass(frozen=True)
class EngineOptions:
    """Settings the controls thread needs."""

    node: str
    base_url: str
    queue_batches: int = 1_000
    forecast_min_elapsed: Fraction = Fraction(1, 10)
    evaluate_interval_seconds: float = 5.0
    flag_ttl_seconds: float = 24 * 3600.0
    idle_run_seconds: float = 900.0
    """Stream state of a run quiet this long is forgotten."""


class Engine:
    """The controls thread and the state it owns."""

    def __init__(
        self,
        options: EngineOptions,
        *,
        stream: StreamControls,
        book: IncidentBook,
        journal: Journal,
        metrics: Metrics,
        deliver: Callable[[dict[str, Any], int], None],
        record: Callable[[dict[str, Any], int], None],
        load_budgets: Callable[[list[tuple[Budget, int]]], None],
    ) -> None:
        self.options = options
        self.stream = stream
        self.book = book
        self.journal = journal
        self.metrics = metrics
        self.deliver = deliver
        """Hand a journaled event to every sink."""
        self.record = record
        """Hand an event to the history writer."""
        self.load_budgets = load_budgets
        """Ask for (budget, generation) figures to be loaded from the store."""
        self.ledger = BudgetLedger()
        self.flags: OrderedDict[str, Flag] = OrderedDict()
        self.published = Published()
        self.events_raised = 0
        self._stream: deque[tuple[Sequence[tuple[Any, ...]], float]] = deque()
        self._ledger: deque[tuple[str, Any]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._last_evaluation = 0.0
        self._last_tick = 0.0
        self._periodic: list[tuple[float, float, Callable[[], None]]] = []
        self._violations_counted: dict[str, int] = {}
        self._closed: list[str] = []
        """Runs written by emissions this turn (the stream controls forget them)."""

    # -- inputs (any thread; never block) ---------------------------------------------------------

    def spans(self, spans: Sequence[tuple[Any, ...]]) -> None:
        """A batch of priced spans (skipped and counted when the queue is full)."""
        with self._cond:
            if len(self._stream) >= self.options.queue_batches:
                self.metrics.inc("otelspend_controls_skipped_batches_total")
                return
            self._stream.append((spans, time.monotonic()))
            self._cond.notify()

    def post(self, kind: str, payload: Any) -> None:
        """A ledger-queue message: ``runs``, ``loaded``, ``budgets``, ``findings``, ``call``."""
        with self._cond:
            self._ledger.append((kind, payload))
            self._cond.notify()

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn`` on the controls thread and return its result."""
        future: Future[Any] = Future()
        self.post("call", (fn, future))
        return future.result(timeout)

    def every(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the controls thread every ``seconds`` (before start)."""
        self._periodic.append((seconds, 0.0, fn))

    @property
    def idle(self) -> bool:
        """Both queues empty and nothing in progress."""
        with self._cond:
            return not self._stream and not self._ledger and not self._busy

    # -- lifecycle -----------------------------------------------------------------------------------

    def restore(self, incidents: Sequence[Incident], flags: Sequence[Flag]) -> None:
        """State read from the journal (before start)."""
        for incident in incidents:
            self.book.restore(incident)
        cutoff = time.time_ns() - int(self.options.flag_ttl_seconds * NS)
        for flag in sorted(flags, key=lambda f: f.flagged_ns):
            if flag.flagged_ns >= cutoff:
                self.flags[flag.run_id] = flag

    def start(self) -> None:
        """Start the controls thread."""
        self._thread = threading.Thread(target=self._loop, name="otelspend-controls", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued work (up to ``timeout``), then stop; safe to call twice."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- the thread ------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._stream and not self._ledger and not self._stopping:
                    self._cond.wait(TICK_SECONDS)
                done = self._stopping and not self._stream and not self._ledger
                ledger = list(self._ledger)
                self._ledger.clear()
                stream = list(self._stream)
                self._stream.clear()
                self._busy = bool(ledger or stream)
            try:
                self._work(ledger, stream)
            except Exception as exc:  # a bug: keep the thread (and every control) alive, count it
                self._failed("a turn of the controls thread", exc)
            finally:
                with self._cond:
                    self._busy = False
            if done:
                return

    def _work(self, ledger: list[tuple[str, Any]], stream: list[tuple[Sequence[tuple[Any, ...]], float]]) -> None:
        now_ns = time.time_ns()
        found: list[Detection] = []
        budgets_moved = False
        for kind, payload in ledger:
            try:
                budgets_moved |= self._ledger_message(kind, payload, found, now_ns)
            except Exception as exc:  # a bug: this message is lost (counted, logged), the others go on
                self._failed(f"a {kind} message", exc)
                if kind in ("budgets", "call") and payload[1] is not None and not payload[1].done():
                    payload[1].set_exception(exc)
        for spans, _queued in stream:
            try:
                found.extend(self.stream.observe(spans, time.monotonic()))
            except Exception as exc:
                self._failed(f"a batch of {len(spans)} span(s)", exc)
        if self._closed:
            # After this turn's spans: every span the pipeline priced before writing these runs is in.
            closed, self._closed = self._closed, []
            try:
                self.stream.closed(closed, found)
            except Exception as exc:
                self._failed("forgetting written runs", exc)
        self._count_violations()
        if found:
            self.raise_detections(found, now_ns)
        monotonic = time.monotonic()
        if budgets_moved or monotonic - self._last_evaluation >= self.options.evaluate_interval_seconds:
            self._last_evaluation = monotonic
            self.evaluate_budgets(now_ns)
        if monotonic - self._last_tick >= TICK_SECONDS:  # busy or idle, housekeeping four times a second
            self._last_tick = monotonic
            self._tick(now_ns, monotonic)

    def _ledger_message(self, kind: str, payload: Any, found: list[Detection], now_ns: int) -> bool:
        if kind == "runs":
            runs, calls = payload
            self.ledger.apply(runs, calls)
            self._closed.extend(row[_RUN_ID] for row in runs if row[_RUN_SIGN] == 1)
            return True
        if kind == "loaded":
            budget_id, generation, period_start, totals = payload
            return self.ledger.load(budget_id, generation, period_start, totals)
        if kind == "budgets":
            budgets, done = payload
            to_load = self.ledger.replace(budgets)
            self._resolve_budgets_gone(now_ns)
            by_id = {budget.id: budget for budget in budgets}
            self.load_budgets([(by_id[budget_id], generation) for budget_id, generation in to_load])
            if done is not None:
                done.set_result(None)
            return True
        if kind == "stale":
            self.load_budgets([(self.ledger.tracked[i].budget, g) for i, g in self.ledger.stale()])
            return True
        if kind == "findings":
            detected, evaluated, resolution = payload
            found.extend(detected)
            keys = {d.key for d in detected}
            for key in evaluated:
                if key not in keys and key in self.book.open:
                    self._resolve(key, now_ns, resolution)
            return False
        if kind == "call":
            fn, future = payload
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)
            return False
        raise ValueError(f"unknown controls message {kind!r}")

    def _failed(self, what: str, exc: BaseException) -> None:
        log.error("controls: could not process %s: %s", what, exc, exc_info=exc)
        self.metrics.inc("otelspend_controls_errors_total")

    def _count_violations(self) -> None:
        """Every violating call counts in the metric, whether or not it opened an alert."""
        for rule, total in self.stream.stats.violations.items():
            counted = self._violations_counted.get(rule, 0)
            if total > counted:
                self.metrics.inc("otelspend_policy_violations_total", total - counted, rule=rule)
                self._violations_counted[rule] = total

    def _tick(self, now_ns: int, monotonic: float) -> None:
        found = self.stream.tick(monotonic)
        found += self.stream.forget_idle(monotonic, self.options.idle_run_seconds)
        if found:
            self.raise_detections(found, now_ns)
        for key in self.book.quiet(now_ns):
            self._resolve(key, now_ns, f"no new detection for {self.book.resolve_after_ns / NS:g} s")
        self.book.prune(now_ns)
        cutoff = now_ns - int(self.options.flag_ttl_seconds * NS)
        while self.flags and next(iter(self.flags.values())).flagged_ns < cutoff:
            self.flags.popitem(last=False)
        for index, (seconds, last, fn) in enumerate(self._periodic):
            if monotonic - last >= seconds:
                self._periodic[index] = (seconds, monotonic, fn)
                fn()

    # -- incidents and events --------------------------------------------------------------------------

    def raise_detections(self, found: Sequence[Detection], now_ns: int) -> None:
        """Open an incident (and journal, deliver, record its event) for each new detection."""
        records: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for detection in found:
            seen = self.book.seen(detection.key, now_ns)
            if seen == "ongoing":
                continue
            if seen == "suppressed":
                self.metrics.inc("otelspend_alerts_suppressed_total", type=detection.type)
                continue
            incident_id, event_id = new_id("inc"), new_id("evt")
            event = event_payload(
                detection, event_id=event_id, incident_id=incident_id, now_ns=now_ns,
                node=self.options.node, base_url=self.options.base_url,
            )  # fmt: skip
            incident = Incident(
                detection.key, incident_id, detection.type, event, now_ns, now_ns, detection.auto_resolve
            )
            self.book.opened(incident)
            records += [event_record(event, []), incident_record(incident)]
            if detection.run_id:
                flag = Flag(
                    detection.run_id, str(detection.details.get("reason", detection.title)), now_ns, incident_id
                )
                self.flags[flag.run_id] = flag
                while len(self.flags) > MAX_FLAGS:
                    self.flags.popitem(last=False)
                records.append(flag_record(flag))
            events.append(event)
        self._emit(records, events, now_ns)

    def _resolve(self, key: str, now_ns: int, resolution: str) -> None:
        incident = self.book.resolve(key, now_ns)
        if incident is None:
            return
        event = resolved_payload(incident.firing, event_id=new_id("evt"), now_ns=now_ns, resolution=resolution)
        self._emit([event_record(event, []), incident_record(incident)], [event], now_ns)

    def _emit(self, records: list[dict[str, Any]], events: list[dict[str, Any]], now_ns: int) -> None:
        if not events:
            return
        # Durable first: sinks are filled in by the service (its delivery targets).
        try:
            self.journal.append(self._with_sinks(records))
        except OSError as exc:  # a full or failing disk: still send the alerts, only not durably
            self._failed("the alert journal (alerts still sent, not kept across a restart)", exc)
        for event in events:
            self.events_raised += 1
            self.metrics.inc("otelspend_alerts_total", type=str(event["type"]))
            self.record(event, now_ns)
            self.deliver(event, now_ns)

    sinks: tuple[str, ...] = ()
    """Names of the webhook sinks every event is delivered to (set by the service)."""

    def _with_sinks(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "sinks": list(self.sinks)} if r["k"] == "event" else r for r in records]

    # -- budgets ------------------------------------------------------------------------------------------

    def evaluate_budgets(self, now_ns: int) -> None:
        """Re-evaluate every budget, raise and resolve its incidents, publish the statuses."""
        statuses: dict[str, BudgetStatus] = {}
        found: list[Detection] = []
        asserted: set[str] = set()
        for budget_id in list(self.ledger.tracked):
            status = evaluate(self.ledger, budget_id, now_ns, self.options.forecast_min_elapsed)
            statuses[budget_id] = status
            if not status.loaded:
                continue
            mine = detections(status)
            found.extend(mine)
            asserted.update(d.key for d in mine)
            if still_on_pace(status):
                asserted.add(forecast_key(status.budget, status.period))
        self.published = Published(statuses, self.published.policy, budget_checks(list(statuses.values())))
        if found:
            self.raise_detections(found, now_ns)
        for key in [k for k in self.book.open if k.startswith("budget.") and k not in asserted]:
            budget_id, label, version = _budget_of(key)
            current = statuses.get(budget_id)
            if current is None:
                if budget_id in self.ledger.tracked:
                    continue  # being loaded: decided once its figures are in
                self._resolve(key, now_ns, "budget deleted")
            elif current.budget.version != version:
                self._resolve(key, now_ns, "budget changed")
            elif not current.loaded:
                continue
            elif current.period.label != label:
                self._resolve(key, now_ns, f"period {label} ended")
            else:
                self._resolve(key, now_ns, "spend back under the threshold (history restated)")
        self.ledger.prune(now_ns)

    def _resolve_budgets_gone(self, now_ns: int) -> None:
        for key in [k for k in self.book.open if k.startswith("budget.")]:
            if _budget_of(key)[0] not in self.ledger.tracked:
                self._resolve(key, now_ns, "budget deleted")

    def set_policy(self, policy: Policy) -> None:
        """Use a new policy (controls thread)."""
        self.stream.set_policy(policy)
        self.published = Published(self.published.budgets, policy, self.published.checks)

    def flag(self, run_id: str) -> Flag | None:
        """The flag on a run, if any (any thread)."""
        return self.flags.get(run_id)

    @property
    def loops_flagged(self) -> int:
        """Runs currently flagged."""
        return sum(1 for key in self.book.open if key.startswith(RETRY_LOOP))


def _budget_of(key: str) -> tuple[str, str, str]:
    """``budget.threshold_crossed:<id>:<label>:<version>:<share>`` (or ``budget.forecast_exceeded:<id>:<label>:
    <version>``) -> (id, label, version)."""
    parts = key.split(":")
    return parts[1], parts[2], parts[3]


def totals_of(spend: Any) -> Totals:
    """A store read (``controls.store.Spend``) as ledger totals."""
    return Totals(spend.cost, spend.tokens, spend.unpriced, spend.calls, spend.runs)
