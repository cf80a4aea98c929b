"""The controls' reads and writes: the statements of ``clickhouse.queries.controls`` run and
decoded (money to integer femto-USD, times to ns, payloads to dicts)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import controls as queries
from otelspend.record import FEMTO_PER_USD


def _femto(value: Any) -> int:
    return int(Decimal(value or 0) * FEMTO_PER_USD)


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).replace(microsecond=(ns // 1000) % 10**6)


# -- anomaly detectors ----------------------------------------------------------------------------


def first_hour(store: Store) -> int | None:
    """The first rollup hour holding runs (unix s), None on an empty ledger."""
    value = store.scalar(*queries.first_hour(store.database))
    return int(value) if value else None


def hourly_series(store: Store, dimension: str, start_s: int, end_s: int) -> list[tuple[int, str, int, int, int, int]]:
    """(hour, key, cost femto, runs, successful runs, unpriced calls) per hour and ``dimension`` value."""
    rows = store.rows(*queries.hourly_series(store.database, dimension, start_s, end_s))
    return [
        (int(h), str(key), _femto(cost), int(runs), int(ok), int(unpriced)) for h, key, cost, runs, ok, unpriced in rows
    ]


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
    db = store.database
    runs, ok, cost, calls, tokens, tools, retries = store.rows(*queries.workflow_totals(db, workflow_type, hours))[0]
    models = store.rows(*queries.workflow_model_costs(db, workflow_type, hours))
    return Drivers(
        int(runs or 0), int(ok or 0), _femto(cost), int(calls or 0), int(tokens or 0), int(tools or 0),
        int(retries or 0), {str(m): _femto(c) for m, c in models},
    )  # fmt: skip


def tenant_breakdown(store: Store, tenant: str, hours: Sequence[int]) -> dict[str, dict[str, int]]:
    """A tenant's cost (femto) by feature, workflow type and model over ``hours``."""
    out: dict[str, dict[str, int]] = {name: {} for name in queries.BREAKDOWN_TABLES}
    if not hours:
        return out
    for dimension in queries.BREAKDOWN_TABLES:
        rows = store.rows(*queries.tenant_costs_by(store.database, tenant, dimension, hours))
        out[dimension] = {str(name): _femto(cost) for name, cost in rows if name or dimension != "model"}
    return out


# -- budgets ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spend:
    """Signed sums over the runs (or breakdown rows) of a budget's filter in a window."""

    cost: int
    tokens: int
    unpriced: int
    calls: int
    runs: int


def budget_totals(store: Store, filters: Mapping[str, str], start_ns: int, end_ns: int, *, call_level: bool) -> Spend:
    """What the stored runs that started in ``[start_ns, end_ns)`` and match ``filters`` spent."""
    query = queries.budget_totals(store.database, filters, start_ns, end_ns, call_level=call_level)
    cost, tokens, unpriced, calls, runs = store.rows(*query)[0]
    return Spend(_femto(cost), int(tokens or 0), int(unpriced or 0), int(calls or 0), int(runs or 0))


def save_budget(store: Store, budget_id: str, definition: Mapping[str, Any] | None, version: int) -> None:
    """Store a budget created or changed over the API (``definition`` None: deleted)."""
    row = [budget_id, version, 0 if definition is not None else 1, json.dumps(definition or {}), _utc(version)]
    store.insert_rows(queries.table(store.database, "budgets"), [row], queries.BUDGET_COLUMNS)


def stored_budgets(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """Budgets created over the API and not deleted: (id, definition)."""
    rows = store.rows(*queries.stored_budgets(store.database))
    return [(str(budget_id), json.loads(definition)) for budget_id, definition, deleted in rows if not deleted]


# -- alert history ----------------------------------------------------------------------------------------


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
    db = store.database
    if alerts:
        store.insert_rows(queries.table(db, "alerts"), alerts, queries.ALERT_COLUMNS)
    if deliveries:
        store.insert_rows(
            queries.table(db, "alert_deliveries"), [d.row() for d in deliveries], queries.DELIVERY_COLUMNS
        )


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
    query = queries.alerts(
        store.database, start_ns=start_ns, end_ns=end_ns, types=types, status=status, run_id=run_id,
        incident_id=incident_id, limit=limit,
    )  # fmt: skip
    return _with_deliveries(store, [json.loads(payload) for (payload,) in store.rows(*query)])


def get_alert(store: Store, event_id: str) -> dict[str, Any] | None:
    """One alert event by id, with its delivery states."""
    rows = store.rows(*queries.alert(store.database, event_id))
    return _with_deliveries(store, [json.loads(rows[0][0])])[0] if rows else None


def _with_deliveries(store: Store, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not events:
        return events
    rows = store.dicts(*queries.deliveries(store.database, [event["id"] for event in events]))
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
