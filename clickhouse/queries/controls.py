"""Statements of the spend controls: rollup series for the anomaly detectors, budget spend,
alert history and delivery states, budgets created over the API.

Templates and functions returning ``Query`` as in the rest of the package; the controls run
them and decode the rows (``otelspend.controls.store``). The identifiers a caller chooses are
dimension names, whitelisted here (``SERIES_DIMENSIONS``, ``BUDGET_RUN_DIMENSIONS``,
``BUDGET_CALL_DIMENSIONS``); every value is bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from otelspend.clickhouse.queries.sql import Fragment, Params, Query, render, time_range

SERIES_DIMENSIONS = ("tenant", "workflow_type")
"""Dimensions the anomaly detectors read hourly series of."""
BUDGET_RUN_DIMENSIONS = (
    "workflow_type", "workflow_id", "tenant", "customer", "feature", "user", "environment", "prompt_version",
    "team", "cost_center", "product", "owner", "service",
)  # fmt: skip
"""Run dimensions a budget filters on (columns of both ``runs`` and ``run_calls``)."""
BUDGET_CALL_DIMENSIONS = ("model", "provider", "agent", "tool", "operation")
"""Call dimensions: a budget filtering on one reads ``run_calls``."""
BREAKDOWN_TABLES = {
    "feature": "rollup_runs_hourly",
    "workflow_type": "rollup_runs_hourly",
    "model": "rollup_calls_hourly",
}
"""Where a tenant's cost by each of these dimensions is read."""

ALERT_COLUMNS = (
    "id", "incident_id", "type", "status", "severity", "control", "time", "title", "dimensions", "run_id",
    "budget_id", "observed", "observed_unit", "payload", "node", "recorded_at",
)  # fmt: skip
"""Columns of an inserted alert event, in this order."""
DELIVERY_COLUMNS = (
    "event_id", "sink", "status", "attempts", "http_status", "last_error", "next_attempt_at", "delivered_at",
    "updated_at",
)  # fmt: skip
"""Columns of an inserted delivery state, in this order."""
BUDGET_COLUMNS = ("id", "version", "deleted", "definition", "updated_at")
"""Columns of an inserted budget version, in this order."""

_FIRST_HOUR = "SELECT toUnixTimestamp(min(hour)) FROM {db}.rollup_runs_hourly"
_HOURLY_SERIES = """
SELECT toUnixTimestamp(hour) AS h, {dimension} AS key, sum(cost_usd), sum(runs), sum(successful_runs),
       sum(unpriced_calls)
FROM {db}.rollup_runs_hourly
WHERE hour >= toDateTime({start:UInt32}) AND hour < toDateTime({end:UInt32})
GROUP BY h, key HAVING sum(runs) != 0
"""
_HOURS = """hour >= toDateTime({first:UInt32}) AND hour <= toDateTime({last:UInt32})
AND has({hours:Array(UInt32)}, toUnixTimestamp(hour))"""
_WORKFLOW_TOTALS = """
SELECT sum(runs), sum(successful_runs), sum(cost_usd), sum(calls), sum(input_tokens), sum(tool_calls), sum(retries)
FROM {db}.rollup_runs_hourly WHERE workflow_type = {workflow:String} AND {hours}
"""
_WORKFLOW_MODELS = """
SELECT model, sum(cost_usd) FROM {db}.rollup_calls_hourly
WHERE workflow_type = {workflow:String} AND model != '' AND {hours} GROUP BY model
"""
_TENANT_BY = """
SELECT {dimension}, sum(cost_usd) FROM {db}.{table} WHERE tenant = {tenant:String} AND {hours} GROUP BY {dimension}
"""
_BUDGET_TOTALS = """
SELECT sum(sign * ifNull(cost_usd, toDecimal128(0, 15))),
       sum(toInt64(sign) * toInt64(input_tokens + output_tokens)),
       sum(toInt64(sign) * unpriced_calls),
       sum(toInt64(sign) * {calls}),
       {runs}
FROM {db}.{table}
WHERE {conditions}
"""
_STORED_BUDGETS = """
SELECT id, argMax(definition, version), argMax(deleted, version) FROM {db}.budgets GROUP BY id ORDER BY id
"""
_ALERTS = "SELECT payload FROM {db}.alerts FINAL WHERE {conditions} ORDER BY time DESC, id LIMIT {limit:UInt32}"
_ALERT = "SELECT payload FROM {db}.alerts FINAL WHERE id = {id:String} LIMIT 1"
_DELIVERIES = """
SELECT event_id, sink, argMax(status, updated_at) AS last_status, argMax(attempts, updated_at) AS tries,
       argMax(http_status, updated_at) AS last_http, argMax(last_error, updated_at) AS error,
       argMax(next_attempt_at, updated_at) AS next_at, argMax(delivered_at, updated_at) AS done_at,
       max(updated_at) AS last_update
FROM {db}.alert_deliveries WHERE event_id IN {ids:Array(String)} GROUP BY event_id, sink ORDER BY sink
"""


def table(database: str, name: str) -> str:
    """``alerts``, ``alert_deliveries`` or ``budgets``, for inserts."""
    if name not in ("alerts", "alert_deliveries", "budgets"):
        raise ValueError(f"not a controls table: {name!r}")
    return render("{db}.{table}", db=database, table=name)


def _identifier(name: str, allowed: Sequence[str]) -> str:
    if name not in allowed:
        raise ValueError(f"unknown dimension {name!r}; expected one of {list(allowed)}")
    return name


# -- anomaly detectors ----------------------------------------------------------------------------


def first_hour(database: str) -> Query:
    """The first rollup hour (unix s; 0 when the rollup is empty): history before it does not exist."""
    return Query(render(_FIRST_HOUR, db=database), {})


def hourly_series(database: str, dimension: str, start_s: int, end_s: int) -> Query:
    """(hour, key, cost, runs, successful runs, unpriced calls) per hour and ``dimension``
    value in ``[start_s, end_s)``; groups netting to no runs left out."""
    sql = render(_HOURLY_SERIES, db=database, dimension=_identifier(dimension, SERIES_DIMENSIONS))
    return Query(sql, {"start": start_s, "end": end_s})


def _hours(hours: Sequence[int]) -> dict[str, object]:
    return {"first": min(hours), "last": max(hours), "hours": sorted(hours)}


def workflow_totals(database: str, workflow_type: str, hours: Sequence[int]) -> Query:
    """Runs, successful runs, cost, calls, input tokens, tool calls, retries of a workflow type
    over rollup ``hours`` (unix s; not empty)."""
    sql = render(_WORKFLOW_TOTALS, db=database, hours=Fragment(_HOURS))
    return Query(sql, {"workflow": workflow_type, **_hours(hours)})


def workflow_model_costs(database: str, workflow_type: str, hours: Sequence[int]) -> Query:
    """(model, cost) of a workflow type over rollup ``hours`` (not empty)."""
    sql = render(_WORKFLOW_MODELS, db=database, hours=Fragment(_HOURS))
    return Query(sql, {"workflow": workflow_type, **_hours(hours)})


def tenant_costs_by(database: str, tenant: str, dimension: str, hours: Sequence[int]) -> Query:
    """(value, cost) of a tenant by ``feature``, ``workflow_type`` or ``model`` over ``hours`` (not empty)."""
    name = _identifier(dimension, tuple(BREAKDOWN_TABLES))
    sql = render(_TENANT_BY, db=database, dimension=name, table=BREAKDOWN_TABLES[name], hours=Fragment(_HOURS))
    return Query(sql, {"tenant": tenant, **_hours(hours)})


# -- budgets ----------------------------------------------------------------------------------------


def budget_totals(database: str, filters: Mapping[str, str], start_ns: int, end_ns: int, *, call_level: bool) -> Query:
    """Signed sums (cost, tokens, unpriced calls, calls, runs) of the stored runs that started in
    ``[start_ns, end_ns)`` and match ``filters``: ``runs``, or ``run_calls`` for a call-level budget.

    No FINAL: every re-emission wrote a cancel row and a new row, so ``sum(sign x value)`` is
    the current total whether or not the parts have merged."""
    params = Params()
    allowed = BUDGET_RUN_DIMENSIONS + (BUDGET_CALL_DIMENSIONS if call_level else ())
    terms: list[str] = [time_range("start_time", params, start_ns, end_ns)]
    for name, value in sorted(filters.items()):
        terms.append(f"`{_identifier(name, allowed)}` = {params.bind('f', value, 'String')}")
    sql = render(
        _BUDGET_TOTALS,
        db=database,
        table="run_calls" if call_level else "runs",
        calls="calls" if call_level else "llm_calls",
        runs=Fragment("0" if call_level else "sum(toInt64(sign))"),
        conditions=Fragment(" AND ".join(terms)),
    )
    return Query(sql, params.values)


def stored_budgets(database: str) -> Query:
    """(id, latest definition JSON, deleted) of every budget created over the API."""
    return Query(render(_STORED_BUDGETS, db=database), {})


# -- alert history ------------------------------------------------------------------------------------


def alerts(
    database: str,
    *,
    start_ns: int,
    end_ns: int,
    types: Sequence[str] = (),
    status: str | None = None,
    run_id: str | None = None,
    incident_id: str | None = None,
    limit: int = 100,
) -> Query:
    """The JSON payloads of the alert events in ``[start_ns, end_ns)``, newest first."""
    params = Params()
    terms: list[str] = [time_range("time", params, start_ns, end_ns)]
    if types:
        terms.append(f"type IN {params.bind('v', list(types), 'Array(String)')}")
    for column, value in (("status", status), ("run_id", run_id), ("incident_id", incident_id)):
        if value:
            terms.append(f"{column} = {params.bind('v', value, 'String')}")
    sql = render(_ALERTS, db=database, conditions=Fragment(" AND ".join(terms)))
    return Query(sql, {**params.values, "limit": limit})


def alert(database: str, event_id: str) -> Query:
    """The JSON payload of one alert event."""
    return Query(render(_ALERT, db=database), {"id": event_id})


def deliveries(database: str, event_ids: Sequence[str]) -> Query:
    """The latest delivery state of each (event, sink) for these events (``dicts`` rows)."""
    return Query(render(_DELIVERIES, db=database), {"ids": list(event_ids)})
