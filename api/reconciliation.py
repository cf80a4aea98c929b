"""The reconciliation read side: plain dicts in and out (the REST routes and the dashboard).

``reconciliation(store, request)`` sums the stored cells of a window per group (any of
``day``, ``provider``, ``model``, ``account``, ``confidence``): tokens by kind on both sides,
calculated and billed money, variance in USD and percent, the variance by cause and the
confidence (the weakest of the group's cells, with the count of each). Money is a decimal
string with 15 decimals; a billed quantity the bill never stated is null.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from otelspend.api.errors import QueryError
from otelspend.api.requests import check_limit, split_names
from otelspend.api.window import DAY_NS, NS, Window, parse_window, rfc3339
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import billing as sql
from otelspend.finance.billing import store as billing_store
from otelspend.finance.billing.names import model_key
from otelspend.finance.billing.reconcile import CAUSES

DIMENSIONS: tuple[str, ...] = tuple(sql.RECONCILIATION_DIMENSIONS)
DEFAULT_GROUP_BY: tuple[str, ...] = ("day", "provider", "model", "account")
DEFAULT_SPAN_NS = 30 * DAY_NS
MAX_ROWS = 10_000
CONFIDENCE = {3: "high", 2: "medium", 1: "low"}
KINDS = ("uncached_input", "cached_input", "cache_write_5m", "cache_write_1h", "output", "requests")


@dataclass(frozen=True)
class ReconciliationRequest:
    """A validated ``GET /v1/reconciliation`` request: window, grouping, filters (model filters as match keys), row
    limit."""

    window: Window
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    limit: int = 1_000


def reconciliation_request(
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    group_by: Iterable[str] | str | None = None,
    filters: Mapping[str, Iterable[str]] | None = None,
    limit: int | None = None,
    now_ns: int,
) -> ReconciliationRequest:
    """Validate parameters (names from the whitelist only); raises QueryError."""
    names = split_names(group_by)
    for name in names:
        if name not in DIMENSIONS:
            raise QueryError("group_by", f"unknown reconciliation dimension {name!r}", DIMENSIONS)
    checked = []
    for name, values in sorted((filters or {}).items()):
        if name not in DIMENSIONS:
            raise QueryError(f"filter.{name}", f"unknown reconciliation dimension {name!r}", DIMENSIONS)
        values = tuple(values)
        if len(values) > 100 or any(len(v) > 1_000 for v in values):
            raise QueryError(f"filter.{name}", "at most 100 values of at most 1000 characters")
        if name == "model":
            values = tuple(model_key(v) or v for v in values)  # any spelling of the model matches
        if values:
            checked.append((name, values))
    window = parse_window(start, end, now_ns=now_ns, default_span_ns=DEFAULT_SPAN_NS)
    return ReconciliationRequest(
        window, tuple(names) or DEFAULT_GROUP_BY, tuple(checked), check_limit(limit, 1_000, MAX_ROWS)
    )


def _usd(value: Any) -> str | None:
    if value is None:
        return None
    return f"{Decimal(value).quantize(Decimal('1e-15')):f}"


def _quantity(value: Any) -> str | None:
    if value is None:
        return None
    return f"{Decimal(value).normalize():f}"


def _row(raw: Mapping[str, Any], group_by: tuple[str, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {name: raw[f"g_{name}"] for name in group_by}
    if "model" in group_by:
        row["model_key"], row["model"] = raw["g_model"], raw["a_model_name"] or raw["g_model"]
    compared = Decimal(raw["a_compared_calculated_usd"])
    variance = None if raw["a_variance_usd"] is None else Decimal(raw["a_variance_usd"])
    row.update(
        {
            "cells": int(raw["a_cells"]),
            "ledger": {
                "calls": int(raw["a_ledger_calls"]),
                "unpriced_calls": int(raw["a_unpriced_calls"]),
                **{k: int(raw[f"a_ledger_{k}"]) for k in KINDS},
            },
            "billed": {k: _quantity(raw[f"a_billed_{k}"]) for k in (*KINDS, "web_search")},
            "calculated_usd": _usd(raw["a_calculated_usd"]),
            "billed_usd": _usd(raw["a_billed_usd"]),
            "variance_usd": _usd(variance),
            "variance_pct": float(variance / compared * 100) if variance is not None and compared else None,
            "quantity_only_cells": int(raw["a_quantity_only_cells"]),
            "causes": {name: _usd(raw[f"a_{name}_usd"]) for name in CAUSES},
            "confidence": CONFIDENCE[int(raw["a_confidence_rank"])],
            "confidence_cells": {
                "high": int(raw["a_cells_high"]),
                "medium": int(raw["a_cells_medium"]),
                "low": int(raw["a_cells_low"]),
            },
            "allocated": bool(raw["a_allocated"]),
        }
    )
    if raw["a_cells"] == 1:
        row["prices"] = json.loads(raw["a_prices"]) if raw["a_prices"] else {}
        row["line_ids"] = list(raw["a_line_ids"])
    return row


def reconciliation(store: Store, request: ReconciliationRequest) -> dict[str, Any]:
    """Stored reconciliation of the window, grouped; totals, other charges and the days' status."""
    start_s, end_s = request.window.start_ns // NS, -(-request.window.end_ns // NS)
    filters = dict(request.filters)
    rows = billing_store.reconciliation_groups(store, start_s, end_s, request.group_by, filters, request.limit)
    total = rows.pop(0) if rows and rows[0]["a_total"] else None
    first = dt.datetime.fromtimestamp(start_s, dt.UTC).date()
    end = dt.datetime.fromtimestamp(end_s - 1, dt.UTC).date() + dt.timedelta(days=1)
    other = billing_store.stored_other_charges(store, first, end)
    days = billing_store.reconciled_days(store, first, end)
    return {
        **request.window.describe(),
        "group_by": list(request.group_by),
        "filters": {name: list(values) for name, values in request.filters},
        "rows": [_row(raw, request.group_by) for raw in rows],
        "totals": _row(total, ()) if total and total["a_cells"] else None,
        "other_charges": [
            {
                "day": o["day"].isoformat(),
                "provider": o["provider"],
                "charge": o["charge"],
                "billed_usd": _usd(o["billed_usd"]),
            }
            for o in other
            if "provider" not in filters or o["provider"] in filters["provider"]
        ],
        "reconciled_days": [
            {
                "day": d["day"].isoformat(),
                "computed_at": d["computed_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "trueup": bool(d["with_trueup"]),
            }
            for d in days
        ],
    }


def cell_runs(
    store: Store, *, day: dt.date, provider: str, model: str, account: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The runs behind one cell with their billed share (the drill-down); unattributed first-class."""
    rows = billing_store.cell_runs(store, day, provider, model_key(model) or model, account, limit)
    return [
        {
            "run_id": row["run_id"] or None,
            "unattributed": bool(row["unattributed"]),
            "model": row["model"],
            "run_start": rfc3339(int(row["run_start_ns"])),
            "billed_usd": _usd(row["billed_usd"]),
            "calculated_usd": _usd(row["calculated_usd"]),
            "confidence": row["confidence"],
            "workflow_type": row["workflow_type"],
            "tenant": row["tenant"],
            "service": row["service"],
        }
        for row in rows
    ]


def run_billing(store: Store, run_id: str) -> list[dict[str, Any]]:
    """A run's true-up shares: billed money per reconciled cell, with confidence and the billing
    line ids it came from (empty when no bill covers the run)."""
    return [
        {
            "day": row["day"].isoformat(),
            "provider": row["provider"],
            "model": row["model"],
            "account": row["account"],
            "billed_usd": _usd(row["billed_usd"]),
            "calculated_usd": _usd(row["calculated_usd"]),
            "confidence": row["confidence"],
            "billing_lines": list(row["line_ids"]),
        }
        for row in billing_store.trueup_for_runs(store, [run_id])
    ]
