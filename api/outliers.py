"""Outliers: where to look first. Each section is a ranked list over runs started in the window.

* ``costliest_workflows``: workflow types by cost.
* ``costliest_runs``: single runs by cost.
* ``cost_jumps``: workflow types whose cost per successful run in a bucket (day or hour)
  is at least ``jump_factor`` times their rolling baseline (the ``baseline_buckets``
  buckets before it).
* ``highest_retry_rates``: agents by retries per call (at least ``min_calls`` calls).
* ``costliest_agents``: agents by the cost of their calls.
* ``lowest_acceptance_prompts``: prompt versions by acceptance rate (at least
  ``min_runs`` runs with an outcome).
* ``costliest_unsuccessful_calls``: single counted calls that did not lead to a
  successful result: the call failed, its run failed, or its run's outcome is rejected or
  escalated.

Every figure comes from the same query layer as ``GET /v1/rollups`` and ``GET /v1/runs``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from otelspend.api.query import metric_value, usd, usd_per
from otelspend.api.requests import BUCKET_NS, RollupRequest
from otelspend.api.runs import RunsRequest, list_runs
from otelspend.api.window import NS, Window, rfc3339
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import outliers as outlier_queries
from otelspend.clickhouse.queries.rollup_plan import plan_for
from otelspend.clickhouse.queries.rollups import AggregateOptions, aggregate_query


@dataclass(frozen=True)
class OutliersRequest:
    """``GET /v1/outliers``: the window, rows per section and the thresholds of the sections."""

    window: Window
    limit: int = 10
    bucket: Literal["hour", "day"] = "day"
    baseline_buckets: int = 7
    jump_factor: float = 1.5
    min_runs: int = 5
    min_calls: int = 20


def outliers(store: Store, request: OutliersRequest) -> dict[str, Any]:
    """All sections at once: ``{"from", "to", <section>: [rows], ...}``."""
    w, n = request.window, request.limit
    return {
        **w.describe(),
        "costliest_workflows": _ranked(
            store, RollupRequest(w, ("workflow_type",), ("cost_usd", "runs", "cost_per_success_usd"), limit=n)
        ),
        "costliest_runs": list_runs(store, RunsRequest(w, limit=n))["runs"],
        "cost_jumps": cost_jumps(store, request),
        "highest_retry_rates": _ranked(
            store,
            RollupRequest(w, ("agent",), ("retry_rate", "retries", "calls"), order_by="retry_rate", limit=n),
            minimum=("calls", request.min_calls),
        ),
        "costliest_agents": _ranked(
            store, RollupRequest(w, ("agent",), ("cost_usd", "calls", "runs"), limit=n), minimum=("calls", 1)
        ),
        "lowest_acceptance_prompts": _ranked(
            store,
            RollupRequest(
                w,
                ("prompt_version",),
                ("acceptance_rate", "accepted_runs", "rated_runs", "runs"),
                order_by="acceptance_rate",
                descending=False,
                limit=n,
            ),
            minimum=("rated_runs", request.min_runs),
        ),
        "costliest_unsuccessful_calls": unsuccessful_calls(store, w, n),
    }


def _ranked(store: Store, request: RollupRequest, minimum: tuple[str, int] | None = None) -> list[dict[str, Any]]:
    """Rollup rows, skipping groups with an empty dimension value or below ``minimum``."""
    plan = plan_for(request.group_by, request.filters)
    sql, params, _ = aggregate_query(
        store.database,
        plan,
        request.window,
        request.group_by,
        request.computed_metrics,
        request.filters,
        AggregateOptions(
            order=[(request.order_by, request.descending)], limit=request.limit, nonempty_groups=True, minimum=minimum
        ),
    )
    dims = len(request.group_by)
    out = []
    for row in store.rows(sql, params):
        item: dict[str, Any] = dict(zip(request.group_by, row[:dims], strict=True))
        for name, value in zip(request.computed_metrics, row[dims:], strict=True):
            item[name] = metric_value(name, value)
        out.append(item)
    return out


def cost_jumps(store: Store, request: OutliersRequest) -> list[dict[str, Any]]:
    """Buckets where a workflow type's cost per successful run jumped above its baseline."""
    size = BUCKET_NS[request.bucket]
    window = request.window
    first_bucket = window.start_ns // size * size
    history = Window(first_bucket - request.baseline_buckets * size, window.end_ns)
    plan = plan_for(("workflow_type",), ())
    sql, params, _ = aggregate_query(
        store.database,
        plan,
        history,
        ("workflow_type",),
        ("cost_usd", "successful_runs"),
        (),
        AggregateOptions(bucket=request.bucket),
    )
    by_type: dict[str, dict[int, tuple[Decimal, int]]] = defaultdict(dict)
    for workflow_type, bucket, cost, successful in store.rows(sql, params):
        if workflow_type:
            by_type[workflow_type][int(bucket) * NS] = (Decimal(cost), int(successful))
    jumps: list[dict[str, Any]] = []
    for workflow_type, buckets in by_type.items():
        for start, (cost, successful) in buckets.items():
            if start < first_bucket or successful < request.min_runs:
                continue
            prior = [buckets.get(start - k * size) for k in range(1, request.baseline_buckets + 1)]
            base_cost = sum((p[0] for p in prior if p), Decimal(0))
            base_ok = sum(p[1] for p in prior if p)
            if base_ok < request.min_runs or base_cost <= 0:
                continue
            # Compared exactly ((cost / ok) / (base_cost / base_ok) in integers); shown as the
            # rollup shows cost per success (truncated to 1e-15 USD).
            ratio = (cost * base_ok) / (base_cost * successful)
            if ratio >= Decimal(str(request.jump_factor)):
                jumps.append(
                    {
                        "workflow_type": workflow_type,
                        "bucket": rfc3339(start),
                        "cost_per_success_usd": usd_per(cost, successful),
                        "baseline_cost_per_success_usd": usd_per(base_cost, base_ok),
                        "ratio": float(ratio),
                        "successful_runs": successful,
                        "cost_usd": usd(cost),
                    }
                )
    jumps.sort(key=lambda j: (-j["ratio"], j["workflow_type"], j["bucket"]))
    return jumps[: request.limit]


def unsuccessful_calls(store: Store, window: Window, limit: int) -> list[dict[str, Any]]:
    """The costliest counted calls without a successful result, in runs started in the window."""
    query = outlier_queries.unsuccessful_calls(store.database, window.start_ns, window.end_ns, limit)
    out = []
    for row in store.rows(*query):
        (trace_id, span_id, name, start_ns, provider, model, operation, status_code, error_type, cost,
         run_status, outcome, workflow_type, workflow_id, tenant) = row  # fmt: skip
        reasons = []
        if status_code == "ERROR":
            reasons.append("call_failed")
        if run_status != "success":
            reasons.append(f"run_{run_status}")
        if outcome in ("rejected", "escalated"):
            reasons.append(f"outcome_{outcome}")
        out.append(
            {
                "run_id": trace_id,
                "span_id": span_id,
                "name": name,
                "start_time": rfc3339(int(start_ns)),
                "provider": provider,
                "model": model,
                "operation": operation,
                "error_type": error_type,
                "cost_usd": usd(cost),
                "run_status": run_status,
                "outcome": outcome,
                "workflow_type": workflow_type,
                "workflow_id": workflow_id,
                "tenant": tenant,
                "reasons": reasons,
            }
        )
    return out
