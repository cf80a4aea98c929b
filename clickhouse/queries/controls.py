"""SQL of the spend controls: rollup series for the anomaly detectors, budget spend, alert
history and delivery state, budgets created over the API.

Values are bound parameters; the only identifiers taken from callers are dimension names,
checked against ``BUDGET_COLUMNS`` / ``SERIES_COLUMNS`` first. Money leaves as integer
femto-USD.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.record import FEMTO_PER_USD

SERIES_COLUMNS = frozenset({"tenant", "workflow_type"})
"""Dimensions the anomaly detectors read hourly series of."""
BUDGET_RUN_COLUMNS = frozenset(
    {"workflow_type", "workflow_id", "tenant", "customer", "feature", "user", "environment", "prompt_version",
     "team", "cost_center", "product", "owner", "service"}
)  # fmt: skip
BUDGET_CALL_COLUMNS = frozenset({"model", "provider", "agent", "tool", "operation"})
BUDGET_COLUMNS = BUDGET_RUN_COLUMNS | BUDGET_CALL_COLUMNS
HOUR = 3600


def _femto(value: Any) -> int:
    return int(Decimal(value or 0) * FEMTO_PER_USD)


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).replace(microsecond=(ns // 1000) % 10**6)


def _identifier(name: str, allowed: frozenset[str]) -> str:
    if name not in allowed:
        raise ValueError(f"unknown dimension {name!r}; expected one of {sorted(allowed)}")
    return f"`{name}`"


# -- anomaly detectors ------------------------------------------------------------------------------


def first_hour(store: Store) -> int | None:
    """The first rollup hour holding runs (unix s): history before it does not exist."""
    value = store.scalar(f"SELECT toUnixTimestamp(min(hour)) FROM {store.database}.rollup_runs_hourly")
    return int(value) if value else None


def hourly_series(store: Store, dimension: str, start_s: int, end_s: int) -> list[tuple[int, str, int, int, int, int]]:
    """(hour, key, cost femto, runs, successful runs, unpriced calls) per hour and ``dimension``
    value in ``[start_s, end_s)``, from the hourly run rollup (groups netting to no runs left out)."""
    column = _identifier(dimension, SERIES_COLUMNS)
    rows = store.rows(
        f"SELECT toUnixTimestamp(hour) AS h, {column} AS key, sum(cost_usd), sum(runs), sum(successful_runs), "
        f"sum(unpriced_calls) FROM {store.database}.rollup_runs_hourly "
        "WHERE hour >= toDateTime({start:UInt32}) AND hour < toDateTime({end:UInt32}) "
        "GROUP BY h, key HAVING sum(runs) != 0",
        {"start": start_s, "end": end_s},
    )
    return [
        (int(h), str(key), _femto(cost), int(runs), int(ok), int(unpriced)) for h, key, cost, runs, ok, unpriced in rows
    ]


def _hours_filter(hours: Sequence[int]) -> tuple[str, dict[str, Any]]:
    condition = (
        "hour >= toDateTime({first:UInt32}) AND hour <= toDateTime({last:UInt32}) "
        "AND has({hours:Array(UInt32)}, toUnixTimestamp(hour))"
    )
    return condition, {"first": min(hours), "last": max(hours), "hours": sorted(hours)}


@dataclass(frozen=True)
class Drivers:
    """Totals of one workflow type over some hours."""

    runs: int
    successful: int
    cost: int
    calls: int
    input_tokens: int
    tool_calls: int
    retries: int
    cost_by_model: dict[str, int]


def workflow_drivers(store: Store, workflow_type: str, hours: Sequence[int]) -> Drivers:
    """Runs, successes, cost, calls, input tokens, tool calls, retries and cost by model of a
    workflow type over ``hours`` (unix s of rollup hours)."""
    if not hours:
        return Drivers(0, 0, 0, 0, 0, 0, 0, {})
    condition, params = _hours_filter(hours)
    params["w"] = workflow_type
    db = store.database
    row = store.rows(
        f"SELECT sum(runs), sum(successful_runs), sum(cost_usd), sum(calls), sum(input_tokens), sum(tool_calls), "
        f"sum(retries) FROM {db}.rollup_runs_hourly WHERE workflow_type = {{w:String}} AND {condition}",
        params,
    )[0]
    models = store.rows(
        f"SELECT model, sum(cost_usd) FROM {db}.rollup_calls_hourly "
        f"WHERE workflow_type = {{w:String}} AND model != '' AND {condition} GROUP BY model",
        params,
    )
    runs, ok, cost, calls, tokens, tools, retries = row
    return Drivers(
        int(runs or 0), int(ok or 0), _femto(cost), int(calls or 0), int(tokens or 0), int(tools or 0),
        int(retries or 0), {str(m): _femto(c) for m, c in models},
    )  # fmt: skip


def tenant_breakdown(store: Store, tenant: str, hours: Sequence[int]) -> dict[str, dict[str, int]]:
    """A tenant's cost (femto) by feature, workflow type and model over ``hours``."""
    out: dict[str, dict[str, int]] = {"feature": {}, "workflow_type": {}, "model": {}}
    if not hours:
        return out
    condition, params = _hours_filter(hours)
    params["t"] = tenant
    db = store.database
    for dimension, table in (("feature", "rollup_runs_hourly"), ("workflow_type", "rollup_runs_hourly"),
                             ("model", "rollup_calls_hourly")):  # fmt: skip
        rows = store.rows(
            f"SELECT `{dimension}`, sum(cost_usd) FROM {db}.{table} WHERE tenant = {{t:String}} AND {condition} "
            f"GROUP BY `{dimension}`",
            params,
        )
        out[dimension] = {str(name): _femto(cost) for name, cost in rows if name or dimension != "model"}
    return out


# -- budgets ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spend:
    """Signed sums over the runs (or breakdown rows) of a budget's filter in a window."""

    cost: int
    tokens: int
    unpriced: int
    calls: int
    runs: int


def budget_totals(store: Store, filters: Mapping[str, str], start_ns: int, end_ns: int, *, call_level: bool) -> Spend:
    """What the stored runs that started in ``[start_ns, end_ns)`` and match ``filters`` spent.

    Signed sums without FINAL: every re-emission wrote a cancel row and a new row, so
    ``sum(sign x value)`` is the current total whether or not the parts have merged."""
    params: dict[str, Any] = {"start": start_ns, "end": end_ns}
    conditions = [
        "start_time >= fromUnixTimestamp64Nano({start:Int64})",
        "start_time < fromUnixTimestamp64Nano({end:Int64})",
    ]
    for index, (name, value) in enumerate(sorted(filters.items())):
        allowed = BUDGET_COLUMNS if call_level else BUDGET_RUN_COLUMNS
        conditions.append(f"{_identifier(name, allowed)} = {{f{index}:String}}")
        params[f"f{index}"] = value
    if call_level:
        table, calls, runs = "run_calls", "calls", "0"
    else:
        table, calls, runs = "runs", "llm_calls", "sum(toInt64(sign))"
    row = store.rows(
        f"SELECT sum(sign * ifNull(cost_usd, toDecimal128(0, 15))), "
        f"sum(toInt64(sign) * toInt64(input_tokens + output_tokens)), sum(toInt64(sign) * unpriced_calls), "
        f"sum(toInt64(sign) * {calls}), {runs} FROM {store.database}.{table} WHERE " + " AND ".join(conditions),
        params,
    )[0]
    cost, tokens, unpriced, call_count, run_count = row
    return Spend(_femto(cost), int(tokens or 0), int(unpriced or 0), int(call_count or 0), int(run_count or 0))


def save_budget(store: Store, budget_id: str, definition: Mapping[str, Any] | None, version: int) -> None:
    """Store a budget created or changed over the API (``definition`` None: deleted)."""
    store.insert_rows(
        f"{store.database}.budgets",
        [[budget_id, version, 0 if definition is not None else 1, json.dumps(definition or {}), _utc(version)]],
        ["id", "version", "deleted", "definition", "updated_at"],
    )


def stored_budgets(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """Budgets created over the API and not deleted: (id, definition)."""
    rows = store.rows(
        f"SELECT id, argMax(definition, version), argMax(deleted, version) FROM {store.database}.budgets GROUP BY id "
        "ORDER BY id"
    )
    return [(str(budget_id), json.loads(definition)) for budget_id, definition, deleted in rows if not deleted]


# -- alert history ----------------------------------------------------------------------------------------

ALERT_COLUMNS = (
    "id", "incident_id", "type", "status", "severity", "control", "time", "title", "dimensions", "run_id",
    "budget_id", "observed", "observed_unit", "payload", "node", "recorded_at",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "event_id", "sink", "status", "attempts", "http_status", "last_error", "next_attempt_at", "delivered_at",
    "updated_at",
)  # fmt: skip


def alert_row(event: Mapping[str, Any], time_ns: int, recorded_ns: int) -> list[Any]:
    """An alert event as a row of ``alerts``."""
    details = event.get("details") or {}
    observed = event.get("observed") or {}
    return [
        event["id"], event["incident_id"], event["type"], event["status"], event["severity"], event["control"],
        _utc(time_ns), event["title"], {k: str(v) for k, v in (event.get("dimensions") or {}).items()},
        str(details.get("run_id", "")), str(details.get("budget_id", "")), str(observed.get("value", "")),
        str(observed.get("unit", "")), json.dumps(event, separators=(",", ":")), str(event.get("node", "")),
        _utc(recorded_ns),
    ]  # fmt: skip


@dataclass(frozen=True)
class DeliveryState:
    """Where one event stands with one sink."""

    event_id: str
    sink: str
    status: str
    """pending | retrying | delivered | failed"""
    attempts: int
    http_status: int
    last_error: str
    next_attempt_ns: int | None
    delivered_ns: int | None
    updated_ns: int

    def row(self) -> list[Any]:
        """As a row of ``alert_deliveries``."""
        return [
            self.event_id, self.sink, self.status, self.attempts, self.http_status, self.last_error[:1000],
            _utc(self.next_attempt_ns) if self.next_attempt_ns else None,
            _utc(self.delivered_ns) if self.delivered_ns else None, _utc(self.updated_ns),
        ]  # fmt: skip


def insert_history(store: Store, alerts: Sequence[Sequence[Any]], deliveries: Sequence[DeliveryState]) -> None:
    """Write alert rows and delivery states (either may be empty)."""
    if alerts:
        store.insert_rows(f"{store.database}.alerts", alerts, ALERT_COLUMNS)
    if deliveries:
        store.insert_rows(f"{store.database}.alert_deliveries", [d.row() for d in deliveries], DELIVERY_COLUMNS)


def list_alerts(
    store: Store,
    *,
    start_ns: int,
    end_ns: int,
    types: Sequence[str] = (),
    status: str | None = None,
    run_id: str | None = None,
    incident_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alert events in ``[start_ns, end_ns)``, newest first, each with its delivery states."""
    conditions = ["time >= fromUnixTimestamp64Nano({start:Int64})", "time < fromUnixTimestamp64Nano({end:Int64})"]
    params: dict[str, Any] = {"start": start_ns, "end": end_ns, "limit": limit}
    if types:
        conditions.append("type IN {types:Array(String)}")
        params["types"] = list(types)
    if status:
        conditions.append("status = {status:String}")
        params["status"] = status
    if run_id:
        conditions.append("run_id = {run_id:String}")
        params["run_id"] = run_id
    if incident_id:
        conditions.append("incident_id = {incident:String}")
        params["incident"] = incident_id
    rows = store.rows(
        f"SELECT payload FROM {store.database}.alerts FINAL WHERE "
        + " AND ".join(conditions)
        + " ORDER BY time DESC, id LIMIT {limit:UInt32}",
        params,
    )
    events = [json.loads(payload) for (payload,) in rows]
    return _with_deliveries(store, events)


def get_alert(store: Store, event_id: str) -> dict[str, Any] | None:
    """One alert event by id, with its delivery states."""
    rows = store.rows(
        f"SELECT payload FROM {store.database}.alerts FINAL WHERE id = {{id:String}} LIMIT 1", {"id": event_id}
    )
    if not rows:
        return None
    return _with_deliveries(store, [json.loads(rows[0][0])])[0]


def _with_deliveries(store: Store, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not events:
        return events
    rows = store.dicts(
        "SELECT event_id, sink, argMax(status, updated_at) AS last_status, argMax(attempts, updated_at) AS tries, "
        "argMax(http_status, updated_at) AS last_http, argMax(last_error, updated_at) AS error, "
        "argMax(next_attempt_at, updated_at) AS next_at, argMax(delivered_at, updated_at) AS done_at, "
        f"max(updated_at) AS last_update FROM {store.database}.alert_deliveries "
        "WHERE event_id IN {ids:Array(String)} GROUP BY event_id, sink ORDER BY sink",
        {"ids": [event["id"] for event in events]},
    )
    by_event: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_event.setdefault(row["event_id"], []).append(
            {
                "sink": row["sink"],
                "status": row["last_status"],
                "attempts": row["tries"],
                "http_status": row["last_http"] or None,
                "last_error": row["error"] or None,
                "next_attempt_at": _rfc3339(row["next_at"]),
                "delivered_at": _rfc3339(row["done_at"]),
                "updated_at": _rfc3339(row["last_update"]),
            }
        )
    return [{**event, "deliveries": by_event.get(event["id"], [])} for event in events]


def _rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_counts(store: Store, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
    """(type, status, events) in ``[start_ns, end_ns)``."""
    rows = store.rows(
        f"SELECT type, status, count() FROM {store.database}.alerts FINAL "
        "WHERE time >= fromUnixTimestamp64Nano({start:Int64}) AND time < fromUnixTimestamp64Nano({end:Int64}) "
        "GROUP BY type, status ORDER BY type, status",
        {"start": start_ns, "end": end_ns},
    )
    return [(str(t), str(s), int(n)) for t, s, n in rows]
