"""The spend controls of one process, assembled: what the app starts and the API asks.

``Controls`` is the pipeline's ledger observer (``otelspend.observers.LedgerObserver``):
spans and run deltas go to the controls thread (``engine``) without blocking. It owns the
journal (durable outbox), one delivery thread per webhook (``delivery``), the history
writer, the scheduler (budget loads, anomaly detectors), and the budgets and policy
files (reloaded like the rate card: an invalid edit keeps the previous version).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from fractions import Fraction
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.controls.baseline import Rules
from otelspend.controls.budgets import Budget, load_budget_file, parse_budget
from otelspend.controls.decision import CHECK_DIMENSIONS, decide, policy_reasons, run_action
from otelspend.controls.delivery import Policy as DeliveryPolicy
from otelspend.controls.delivery import Sink, SinkWorker
from otelspend.controls.engine import Engine, EngineOptions
from otelspend.controls.history import HistoryWriter
from otelspend.controls.incidents import IncidentBook
from otelspend.controls.journal import COMPACT_AFTER_RECORDS, Journal, done_record, recorded_record
from otelspend.controls.policy import MATCH_KEYS, Policy, UnitPriceCache, UnitPrices, load_policy
from otelspend.controls.scheduler import RunOnPipeline, Scheduler
from otelspend.controls.store import DeliveryState, save_budget, stored_budgets
from otelspend.controls.stream import StreamControls, StreamLimits
from otelspend.controls.validation import ControlsConfigError, Problem
from otelspend.enrich.pricing import PriceBook, Unpriced
from otelspend.metrics import Metrics
from otelspend.record import FEMTO_PER_USD
from otelspend.reloadable import Reloadable
from otelspend.settings import AlertsSettings, Settings

log = logging.getLogger("otelspend")
NS = 10**9
PRICE_CACHE_SECONDS = 60.0
BUDGET_WAIT_SECONDS = 30.0


class BudgetConflict(RuntimeError):
    """The budget cannot be changed as asked (it comes from the file, or the id is taken): 409."""


def sinks_of(alerts: AlertsSettings) -> list[Sink]:
    """The webhook sinks the settings name (``webhooks`` plus the ``webhook_url`` short form)."""
    sinks = [
        Sink(s.name, s.url.get_secret_value(), s.secret.get_secret_value().encode() if s.secret else None, s.format)
        for s in alerts.webhooks
    ]
    if alerts.webhook_url is not None:
        secret = alerts.webhook_secret.get_secret_value().encode() if alerts.webhook_secret else None
        name = "default" if all(s.name != "default" for s in sinks) else "default-env"
        sinks.append(Sink(name, alerts.webhook_url.get_secret_value(), secret, "json"))
    return sinks


class Controls:
    """Budgets, retry loops, model policy, anomalies, alerts and the decision endpoint."""

    def __init__(self, settings: Settings, store: Store, metrics: Metrics, price_book: Callable[[], PriceBook]) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.price_book = price_book
        c, a, b = settings.controls, settings.alerts, settings.budgets
        self.sinks = sinks_of(a)
        self.journal = Journal(settings.data_dir / "controls")
        self.policy_file: Reloadable[Policy] = Reloadable("model policy", c.policy, load_policy)
        self.budget_file: Reloadable[tuple[Budget, ...]] = Reloadable("budgets", b.path, load_budget_file)
        self.api_budgets: dict[str, Budget] = {}
        stream = StreamControls(
            StreamLimits(
                max_retries=c.retry_loop_max_retries,
                max_step_calls=c.retry_loop_max_step_calls,
                window_seconds=c.retry_loop_window_seconds,
                max_runs=c.max_tracked_runs,
                policy_wait_seconds=settings.runs.root_wait_seconds,
            ),
            self._unit_prices,
        )
        self.history = HistoryWriter(store, metrics, on_recorded=self._recorded)
        self.engine = Engine(
            EngineOptions(
                node=settings.node_id,
                base_url=a.public_url or f"http://{settings.api.address}",
                queue_batches=c.queue_batches,
                forecast_min_elapsed=Fraction(str(b.forecast_min_elapsed)),
                evaluate_interval_seconds=b.evaluate_interval_seconds,
                flag_ttl_seconds=c.flag_ttl_hours * 3600,
                idle_run_seconds=max(c.retry_loop_window_seconds, settings.runs.root_wait_seconds) + 60,
            ),
            stream=stream,
            book=IncidentBook(
                cooldown_ns=int(a.cooldown_seconds * NS), resolve_after_ns=int(a.resolve_after_seconds * NS)
            ),
            journal=self.journal,
            metrics=metrics,
            deliver=self._deliver,
            record=lambda event, now_ns: self.history.event(event, now_ns),
            load_budgets=lambda items: self.scheduler.load(items),
        )
        self.engine.sinks = tuple(sink.name for sink in self.sinks)
        self.scheduler = Scheduler(
            self.engine,
            store,
            metrics,
            rules=Rules(
                z_threshold=Fraction(str(c.anomaly_z)),
                factor=Fraction(str(c.anomaly_factor)),
                min_impact=Fraction(c.anomaly_min_impact_usd) * FEMTO_PER_USD,
                min_weeks=c.anomaly_min_weeks,
                weeks=c.anomaly_weeks,
            ),
            min_runs=c.anomaly_min_runs,
            interval_seconds=c.anomaly_interval_seconds,
        )
        policy = DeliveryPolicy(
            a.timeout_seconds, a.retry_initial_seconds, a.retry_max_seconds, a.give_up_after_hours * 3600
        )
        self.workers = {
            sink.name: SinkWorker(sink, policy, metrics, on_done=self._done, on_state=self.history.state)
            for sink in self.sinks
        }
        self._price_cache: dict[tuple[str, str], tuple[float, UnitPrices | str]] = {}
        self._policy_cache: tuple[Policy | None, dict[tuple[str, ...], list[dict[str, Any]]]] = (None, {})
        self._quotes: tuple[PriceBook | None, dict[tuple[str, str, int], Any]] = (None, {})
        self._unit_cache = UnitPriceCache()
        metrics.gauge("otelspend_alert_outbox_pending", lambda: sum(w.pending for w in self.workers.values()))
        metrics.gauge("otelspend_controls_tracked_runs", lambda: len(stream.runs))

    # -- the pipeline's observer -------------------------------------------------------------------

    def spans_priced(self, spans: Sequence[tuple[Any, ...]], ingested_ns: int) -> None:
        """Priced spans of one batch (pipeline thread; never blocks)."""
        if spans:
            self.engine.spans(spans)

    def runs_written(self, runs: Sequence[tuple[Any, ...]], calls: Sequence[tuple[Any, ...]]) -> None:
        """Signed run and breakdown rows just written (pipeline thread; never blocks)."""
        if runs or calls:
            self.engine.post("runs", (runs, calls))

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self, api_address: str | None = None) -> None:
        """Open the journal, resume undelivered alerts, start every thread."""
        a = self.settings.alerts
        if api_address and not a.public_url:
            self.engine.options = replace(self.engine.options, base_url=f"http://{api_address}")
        now = time.time_ns()
        state = self.journal.open(
            keep_incidents_after_ns=now - int(a.cooldown_seconds * NS),
            keep_flags_after_ns=now - int(self.settings.controls.flag_ttl_hours * 3600 * NS),
        )
        self.engine.restore(list(state.incidents.values()), list(state.flags.values()))
        for event_id in sorted(state.unrecorded, key=lambda i: state.events[i]["time"]):
            event = state.events[event_id]
            self.history.event(event, _ns(event["time"]))
        for event_id, sinks in state.pending.items():
            event = state.events[event_id]
            for name in sinks:
                worker = self.workers.get(name)
                if worker is None:  # a sink removed from the settings since
                    self._done(event_id, name, "failed", now)
                else:
                    worker.enqueue(event, _ns(event["time"]))
        if state.pending:
            log.info("controls: %d alert(s) from before the restart are being delivered", len(state.pending))
        self.engine.set_policy(self.policy_file.current)
        self.engine.every(2.0, self._reload)
        self.engine.every(60.0, self._compact)
        self.history.start()
        for worker in self.workers.values():
            worker.start()
        self.engine.start()
        self.scheduler.start()
        self._post_budgets()

    def attach_pipeline(self, run_on_pipeline: RunOnPipeline) -> None:
        """The store is migrated and the pipeline runs: read API budgets, load every budget's figures."""
        self.api_budgets = {}
        for budget_id, definition in stored_budgets(self.store):
            try:
                self.api_budgets[budget_id] = parse_budget(definition, f"stored budget {budget_id}")
            except ControlsConfigError as exc:
                log.error("controls: %s (skipped)", exc)
        self.scheduler.attach(run_on_pipeline)
        self._post_budgets()

    def stop(self) -> None:
        """Stop every thread (undelivered alerts stay in the journal); safe to call twice."""
        self.scheduler.stop()
        self.engine.stop()
        for worker in self.workers.values():
            worker.stop()
        self.history.stop()
        self.journal.close()

    def idle(self) -> bool:
        """Nothing queued for the controls thread, no budget loading, history written (asked
        for now: whoever waits for idle does not wait for the history's gathering interval)."""
        if not self.history.idle:
            self.history.flush()
            return False
        return self.engine.idle and self.scheduler.loading == 0 and self.history.idle

    def restated(self) -> None:
        """History changed outside emissions (a re-price): read every budget's figures again."""
        self.engine.post("stale", None)

    # -- the API -----------------------------------------------------------------------------------------

    def check(self, values: Mapping[str, str], run_id: str = "") -> dict[str, Any]:
        """``GET /v1/controls/check``, from memory: prepared budget reasons, flagged runs, and
        policy answers cached per (policy, attributes, model) until the policy changes."""
        published = self.engine.published
        return decide(
            {k: v for k, v in values.items() if v and k in CHECK_DIMENSIONS},
            run_id,
            checks=published.checks,
            policy_reasons=lambda given: self._policy_reasons(published.policy, given),
            flags=self.engine.flags,
        )

    def _policy_reasons(self, policy: Policy, values: Mapping[str, str]) -> list[dict[str, Any]]:
        if self._policy_cache[0] is not policy:
            self._policy_cache = (policy, {})
        cache = self._policy_cache[1]
        key = (*(values.get(k, "") for k in MATCH_KEYS), values.get("model", ""), values.get("provider", ""))
        found = cache.get(key)
        if found is None:
            found = policy_reasons(policy, values, self._check_prices)
            if len(cache) >= 10_000:
                cache.clear()
            cache[key] = found
        return found

    def run_action(self, run_id: str) -> dict[str, Any]:
        """``GET /v1/controls/runs/{run_id}``."""
        return run_action(self.engine.flag(run_id), run_id)

    def budgets(self) -> list[dict[str, Any]]:
        """Every budget in force with where it stands."""
        return [status.as_dict() for _, status in sorted(self.engine.published.budgets.items())]

    def budget(self, budget_id: str) -> dict[str, Any] | None:
        """One budget with where it stands; None when unknown."""
        status = self.engine.published.budgets.get(budget_id)
        return status.as_dict() if status is not None else None

    def put_budget(self, doc: Mapping[str, Any], *, budget_id: str | None = None) -> dict[str, Any]:
        """Create (``budget_id`` None) or replace a budget over the API; durable before return.

        Raises ControlsConfigError (422), BudgetConflict (409), KeyError (404)."""
        label = "request body"
        if not isinstance(doc, Mapping):
            raise ControlsConfigError(label, [Problem("", "", None, "expected a JSON object", False)])
        if budget_id is not None and doc.get("id", budget_id) != budget_id:
            raise ControlsConfigError(
                label, [Problem("", "id", doc.get("id"), f"expected {budget_id!r} (the id in the path)")]
            )
        budget = parse_budget({**doc, "id": budget_id} if budget_id else dict(doc), label)
        file_ids = {b.id for b in self.budget_file.current}
        if budget.id in file_ids:
            raise BudgetConflict(f"budget {budget.id!r} is defined in {self.settings.budgets.path}: edit the file")
        if budget_id is None and budget.id in self.api_budgets:
            raise BudgetConflict(f"budget {budget.id!r} exists: PUT /v1/budgets/{budget.id} replaces it")
        if budget_id is not None and budget_id not in self.api_budgets:
            raise KeyError(budget_id)
        save_budget(self.store, budget.id, budget.definition(), time.time_ns())
        self.api_budgets[budget.id] = budget
        self._post_budgets(wait=True)
        return self._settled(budget.id)

    def delete_budget(self, budget_id: str) -> bool:
        """Delete a budget created over the API (its open alerts resolve); False when unknown."""
        if budget_id in {b.id for b in self.budget_file.current}:
            raise BudgetConflict(f"budget {budget_id!r} is defined in {self.settings.budgets.path}: edit the file")
        if budget_id not in self.api_budgets:
            return False
        save_budget(self.store, budget_id, None, time.time_ns())
        del self.api_budgets[budget_id]
        self._post_budgets(wait=True)
        return True

    def status(self) -> dict[str, Any]:
        """What the controls are doing (``GET /v1/controls/status``)."""
        return {
            "policy": {
                "file": str(self.policy_file.path) if self.policy_file.path else None,
                "rules": [rule.id for rule in self.engine.published.policy.rules],
                "last_error": self.policy_file.last_error or None,
            },
            "budgets": {
                "file": str(self.budget_file.path) if self.budget_file.path else None,
                "in_force": len(self.engine.published.budgets),
                "loading": self.scheduler.loading,
                "last_error": self.budget_file.last_error or None,
            },
            "sinks": [{"name": name, "pending": worker.pending} for name, worker in sorted(self.workers.items())],
            "flagged_runs": len(self.engine.flags),
            "open_incidents": len(self.engine.book.open),
            "alerts_raised": self.engine.events_raised,
            "anomaly_detectors": self.scheduler.last_run or None,
            "history_error": self.history.last_error or None,
        }

    # -- internals ------------------------------------------------------------------------------------------

    def _post_budgets(self, *, wait: bool = False) -> None:
        merged = {budget.id: budget for budget in self.api_budgets.values()}
        merged.update({budget.id: budget for budget in self.budget_file.current})
        done: Future[None] | None = Future() if wait else None
        self.engine.post("budgets", (list(merged.values()), done))
        if done is not None:
            done.result(BUDGET_WAIT_SECONDS)

    def _settled(self, budget_id: str) -> dict[str, Any]:
        """The budget's status once its figures are loaded (or after BUDGET_WAIT_SECONDS)."""
        deadline = time.monotonic() + BUDGET_WAIT_SECONDS
        while True:
            status = self.engine.published.budgets.get(budget_id)
            if status is not None and status.loaded:
                return status.as_dict()
            if time.monotonic() > deadline:
                return status.as_dict() if status else {"id": budget_id, "status": "loading"}
            time.sleep(0.02)

    def _reload(self) -> None:
        """On the controls thread every 2 s: files changed (or SIGHUP)."""
        if self.policy_file.check():
            self.engine.set_policy(self.policy_file.current)
        if self.budget_file.check():
            self._post_budgets()

    def _compact(self) -> None:
        if self.journal.records >= COMPACT_AFTER_RECORDS:
            now = time.time_ns()
            self.journal.compact(
                now - int(self.settings.alerts.cooldown_seconds * NS),
                now - int(self.settings.controls.flag_ttl_hours * 3600 * NS),
            )

    def _deliver(self, event: dict[str, Any], now_ns: int) -> None:
        for worker in self.workers.values():
            worker.enqueue(event, now_ns)
            self.history.state(
                DeliveryState(str(event["id"]), worker.sink.name, "pending", 0, 0, "", now_ns, None, now_ns)
            )
        excess = sum(w.pending for w in self.workers.values()) - self.settings.alerts.outbox_max_events
        for worker in self.workers.values():
            if excess <= 0:
                break
            dropped = worker.drop_oldest(excess)
            excess -= len(dropped)
            for event_id in dropped:
                self.metrics.inc("otelspend_alert_deliveries_total", sink=worker.sink.name, outcome="dropped")
                self._done(event_id, worker.sink.name, "failed", now_ns)
                self.history.state(
                    DeliveryState(
                        event_id, worker.sink.name, "failed", 0, 0, "outbox full: dropped", None, None, now_ns
                    )
                )

    def _done(self, event_id: str, sink: str, status: str, at_ns: int) -> None:
        self._journal([done_record(event_id, sink, status, at_ns)])

    def _recorded(self, event_ids: list[str]) -> None:
        self._journal([recorded_record(event_id) for event_id in event_ids])

    def _journal(self, records: list[dict[str, Any]]) -> None:
        """Journal what was done; a failing disk costs at most a repeat after a restart (same id)."""
        try:
            self.journal.append(records)
        except OSError as exc:
            log.error("controls: cannot write the alert journal: %s", exc)
            self.metrics.inc("otelspend_controls_errors_total")

    def _unit_prices(self, provider: str, model: str, start_ns: int, input_tokens: int) -> UnitPrices | str:
        """List prices of a call (controls thread): the quote cached per book, model and hour."""
        book = self.price_book()
        if self._quotes[0] is not book:
            self._quotes = (book, {})
        quotes = self._quotes[1]
        key = (provider, model, start_ns // 3_600_000_000_000)
        compiled = quotes.get(key)
        if compiled is None:
            try:
                compiled = book.quote(provider, model, model, start_ns).compiled
            except Unpriced as exc:
                compiled = exc.reason
            if len(quotes) >= 10_000:
                quotes.clear()
            quotes[key] = compiled
        if isinstance(compiled, str):
            return compiled
        return self._unit_cache.prices(compiled, input_tokens)

    def _check_prices(self, provider: str, model: str) -> UnitPrices | str:
        key = (provider, model)
        now = time.monotonic()
        cached = self._price_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._unit_prices(provider, model, time.time_ns(), 0)
        if len(self._price_cache) > 10_000:
            self._price_cache.clear()
        self._price_cache[key] = (now + PRICE_CACHE_SECONDS, found)
        return found


def _ns(rfc3339: str) -> int:
    moment = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return int(moment.timestamp()) * NS + moment.microsecond * 1000
