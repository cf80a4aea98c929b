"""The scheduled side of the controls, on its own thread: budget figures from the store, and
the anomaly detectors over the hourly rollups.

**Budget loads** run as one function on the pipeline thread (``Pipeline.call``): there,
every emission written so far has been reported to the controls and stored, and none is
being written, so the store's figures and the deltas the controls will see next add up
exactly. The function reads the figures and queues them behind those deltas.

**Anomalies** every ``controls.anomaly_interval_seconds``: one query per series (tenants,
workflow types) over the baseline weeks and the day being judged, the pure detectors of
``otelspend.controls.anomaly``, then, for what is out of range only, what moved (model
mix, input tokens per call, ... for a workflow; features, models, workflows for a tenant).
Series judged normal resolve their open incidents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.controls.anomaly import (
    DriverFigures,
    Evaluation,
    HourFigures,
    baseline_hours,
    cost_per_success,
    drivers,
    tenant_costs,
    top_changes,
)
from otelspend.controls.baseline import HOUR_S, WEEK_S, Rules
from otelspend.controls.budgets import Budget
from otelspend.controls.engine import Engine, totals_of
from otelspend.controls.events import TENANT_ANOMALY, WORKFLOW_SPIKE, Detection, Measure, rfc3339_ms, usd
from otelspend.controls.periods import period_at
from otelspend.controls.store import (
    budget_totals,
    first_hour,
    hourly_series,
    tenant_breakdown,
    workflow_drivers,
)
from otelspend.metrics import Metrics

log = logging.getLogger("otelspend")
NS = 10**9
RunOnPipeline = Callable[[Callable[[], Any]], Any]


class Scheduler:
    """Budget loads and anomaly runs, one thread."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        metrics: Metrics,
        *,
        rules: Rules,
        min_runs: int,
        interval_seconds: float,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.rules = rules
        self.min_runs = min_runs
        self.interval = interval_seconds
        self.clock_ns = clock_ns
        self.run_on_pipeline: RunOnPipeline | None = None
        self.last_run: dict[str, Any] = {}
        """What the last anomaly run looked at (``GET /v1/controls/status``)."""
        self._loads: dict[str, tuple[Budget, int]] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._next_anomaly = 0.0
        self._thread: threading.Thread | None = None

    def attach(self, run_on_pipeline: RunOnPipeline) -> None:
        """The pipeline is running: loads can go through its thread now."""
        with self._cond:
            self.run_on_pipeline = run_on_pipeline
            self._next_anomaly = time.monotonic() + min(self.interval, 5.0)
            self._cond.notify()

    def load(self, items: list[tuple[Budget, int]]) -> None:
        """Load these budgets' figures (newer generations replace queued ones)."""
        with self._cond:
            for budget, generation in items:
                self._loads[budget.id] = (budget, generation)
            self._cond.notify()

    @property
    def loading(self) -> int:
        """Budgets waiting for their figures."""
        return len(self._loads)

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._loop, name="otelspend-controls-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop (a detector run in progress finishes first)."""
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
                while not self._stopping:
                    ready = self.run_on_pipeline is not None
                    if ready and (self._loads or (self.interval and time.monotonic() >= self._next_anomaly)):
                        break
                    wait = self._next_anomaly - time.monotonic() if ready and self.interval else 1.0
                    self._cond.wait(max(min(wait, 1.0), 0.01))
                if self._stopping:
                    return
                loads, self._loads = dict(self._loads), {}
                run_on_pipeline = self.run_on_pipeline
            assert run_on_pipeline is not None
            try:
                if loads:
                    self._load(list(loads.values()), run_on_pipeline)
                if self.interval and time.monotonic() >= self._next_anomaly:
                    self._next_anomaly = time.monotonic() + self.interval
                    self.run_anomalies(self.clock_ns() // NS)
                delay = 0.5
            except Exception as exc:  # store down, pipeline busy, a bug: retry later, never die
                self.metrics.inc("otelspend_controls_errors_total")
                log.warning("controls scheduler: %s; retrying in %.1fs", str(exc)[:300], delay)
                with self._cond:
                    for budget_id, item in loads.items():
                        self._loads.setdefault(budget_id, item)
                    self._cond.wait(delay)
                delay = min(delay * 2, 30.0)

    # -- budgets ---------------------------------------------------------------------------------

    def _load(self, items: list[tuple[Budget, int]], run_on_pipeline: RunOnPipeline) -> None:
        def read_and_queue() -> None:
            now = self.clock_ns()
            for budget, generation in items:
                period = period_at(budget.spec.period, budget.tz, now)
                spend = budget_totals(
                    self.store, budget.spec.filter, period.start_ns, period.end_ns, call_level=budget.call_level
                )
                self.engine.post("loaded", (budget.id, generation, period.start_ns, totals_of(spend)))

        run_on_pipeline(read_and_queue)

    # -- anomalies ---------------------------------------------------------------------------------

    def run_anomalies(self, now_s: int) -> None:
        """Judge every tenant and workflow type now; hand findings to the controls thread."""
        started = time.perf_counter()
        first = first_hour(self.store)
        self.metrics.inc("otelspend_controls_detector_runs_total")
        if first is None:
            self.last_run = {"at": rfc3339_ms(now_s * NS), "series": 0, "judged": 0, "out_of_range": 0}
            return
        end = now_s // HOUR_S * HOUR_S
        start = max(first, end - self.rules.weeks * WEEK_S - 24 * HOUR_S)
        tenants = _series(hourly_series(self.store, "tenant", start, end))
        workflows = _series(hourly_series(self.store, "workflow_type", start, end))
        tenant_evals = tenant_costs(tenants, first, now_s, self.rules, self.min_runs)
        workflow_evals = cost_per_success(workflows, first, now_s, self.rules, self.min_runs)
        found = [self._tenant(key, evals, first) for key, evals in _out_of_range(tenant_evals).items()]
        found += [self._workflow(key, evals, first) for key, evals in _out_of_range(workflow_evals).items()]
        judged = {f"{TENANT_ANOMALY}:{e.key}" for e in tenant_evals if e.judgement is not None}
        judged |= {f"{WORKFLOW_SPIKE}:{e.key}" for e in workflow_evals if e.judgement is not None}
        self.engine.post("findings", (found, judged, "back within the expected range"))
        self.last_run = {
            "at": rfc3339_ms(now_s * NS),
            "first_hour": rfc3339_ms(first * NS),
            "tenants": len(tenants),
            "workflow_types": len(workflows),
            "judged": len(judged),
            "out_of_range": len(found),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _tenant(self, tenant: str, evals: list[Evaluation], first: int) -> Detection:
        worst = max(evals, key=lambda e: e.judgement.z if e.judgement else 0.0)
        judgement = worst.judgement
        assert judgement is not None
        current = list(range(worst.window.start_s, worst.window.end_s, HOUR_S))
        before = baseline_hours(worst.window, judgement.samples, first, self.rules.weeks)
        now_parts = tenant_breakdown(self.store, tenant, current)
        base_parts = tenant_breakdown(self.store, tenant, before)
        weeks = len(judgement.samples)
        top = {
            name: [
                {"name": n, "actual": str(usd(actual).value), "expected": usd(round(expected)).value}
                for n, actual, expected in top_changes(now_parts[name], base_parts[name], weeks)
            ]
            for name in ("feature", "model", "workflow_type")
        }
        label = "hour" if worst.window.name == "hour" else "24 hours"
        return Detection(
            type=TENANT_ANOMALY,
            key=f"{TENANT_ANOMALY}:{tenant}",
            severity="warning",
            title=f"Tenant {tenant}: cost in the last {label} {usd(worst.cost).value} USD, expected about "
            f"{usd(round(judgement.expected)).value} USD",
            dimensions={"tenant": tenant},
            observed=usd(worst.cost),
            expected=usd(round(judgement.expected)),
            details={
                "windows": [_window(e) for e in evals],
                "top_features": top["feature"],
                "top_models": top["model"],
                "top_workflows": top["workflow_type"],
                "unpriced_calls": worst.unpriced,
            },
            auto_resolve=False,
            links={"tenant": f"/runs?filter.tenant={tenant}"},
        )

    def _workflow(self, workflow: str, evals: list[Evaluation], first: int) -> Detection:
        worst = max(evals, key=lambda e: e.judgement.z if e.judgement else 0.0)
        judgement = worst.judgement
        assert judgement is not None
        current = workflow_drivers(self.store, workflow, range(worst.window.start_s, worst.window.end_s, HOUR_S))
        before = workflow_drivers(
            self.store, workflow, baseline_hours(worst.window, judgement.samples, first, self.rules.weeks)
        )
        label = "hour" if worst.window.name == "hour" else "24 hours"
        per_run = Measure(usd(round(judgement.actual)).value, "USD per successful run")
        expected = Measure(usd(round(judgement.expected)).value, "USD per successful run")
        return Detection(
            type=WORKFLOW_SPIKE,
            key=f"{WORKFLOW_SPIKE}:{workflow}",
            severity="warning",
            title=f"Workflow {workflow}: cost per successful run in the last {label} {per_run.value} USD, "
            f"expected about {expected.value} USD",
            dimensions={"workflow_type": workflow},
            observed=per_run,
            expected=expected,
            details={
                "windows": [_window(e, per_success=True) for e in evals],
                "drivers": drivers(_figures(current), _figures(before)),
                "successful_runs": worst.successful,
                "unpriced_calls": worst.unpriced,
            },
            auto_resolve=False,
            links={"workflow": f"/runs?filter.workflow_type={workflow}"},
        )


def _series(rows: list[tuple[int, str, int, int, int, int]]) -> dict[str, dict[int, HourFigures]]:
    series: dict[str, dict[int, HourFigures]] = {}
    for hour, key, cost, runs, successful, unpriced in rows:
        series.setdefault(key, {})[hour] = HourFigures(cost, runs, successful, unpriced)
    return series


def _out_of_range(evaluations: list[Evaluation]) -> dict[str, list[Evaluation]]:
    by_key: dict[str, list[Evaluation]] = {}
    for evaluation in evaluations:
        by_key.setdefault(evaluation.key, []).append(evaluation)
    return {key: evals for key, evals in by_key.items() if any(e.out_of_range for e in evals)}


def _money(value: Fraction) -> str:
    return usd(round(value)).value


def _window(evaluation: Evaluation, *, per_success: bool = False) -> dict[str, Any]:
    judgement = evaluation.judgement
    out: dict[str, Any] = {
        "window": evaluation.window.name,
        "from": rfc3339_ms(evaluation.window.start_s * NS),
        "to": rfc3339_ms(evaluation.window.end_s * NS),
        "runs": evaluation.runs,
        "successful_runs": evaluation.successful,
        "cost_usd": usd(evaluation.cost).value,
        "judged": judgement is not None,
    }
    if judgement is not None:
        unit = "per_successful_run_usd" if per_success else "usd"
        out.update(
            {
                f"actual_{unit}": _money(judgement.actual),
                f"expected_{unit}": _money(judgement.expected),
                "baseline_samples": [_money(s) for s in judgement.samples],
                "modified_z": None if judgement.z == float("inf") else round(judgement.z, 2),
                "out_of_range": judgement.out_of_range,
            }
        )
    return out


def _figures(drivers_: Any) -> DriverFigures:
    return DriverFigures(
        drivers_.runs, drivers_.successful, drivers_.cost, drivers_.calls, drivers_.input_tokens,
        drivers_.tool_calls, drivers_.retries, drivers_.cost_by_model,
    )  # fmt: skip
