"""Statements of a month from the store (the rollups), and their CSV and JSON forms."""

from __future__ import annotations

import csv
import io
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import statements as queries
from otelspend.finance.statements.model import (
    Line,
    MonthStatements,
    OwnerMoney,
    PoolShare,
    Statement,
    build,
    month_window,
    previous_month,
    usd,
)
from otelspend.money import usd_to_femto


def monthly(store: Store, month: str, by: str, *, top: int = 5) -> MonthStatements:
    """Every owner's statement for ``month`` (YYYY-MM), owners by ``by`` (team | cost_center | tenant)."""
    start, end = month_window(month)
    db = store.database
    try:
        before_window: tuple[int, int] | None = month_window(previous_month(month))
    except ValueError:  # the first month otelspend can hold has no previous one
        before_window = None
    before = store.dicts(*queries.owner_totals(db, by, *before_window)) if before_window else []
    result = build(
        month,
        by,
        store.dicts(*queries.owner_totals(db, by, start, end)),
        before,
        store.dicts(*queries.owner_breakdown(db, by, "workflow_type", start, end)),
        store.dicts(*queries.owner_breakdown(db, by, "feature", start, end)),
        money=OwnerMoney(
            billed=store.dicts(*queries.owner_billed(db, by, start, end)),
            allocated=store.dicts(*queries.owner_allocated(db, by, start, end)),
        ),
        top=top,
    )
    result.check()
    return result


def _lines(lines: tuple[Line, ...]) -> list[dict[str, Any]]:
    return [{"name": line.name, "cost_usd": usd(line.cost_femto), "runs": line.runs} for line in lines]


def statement_json(statement: Statement) -> dict[str, Any]:
    """One statement as JSON (money as exact decimal strings)."""
    change = statement.change_pct
    return {
        "owner": statement.owner,
        "label": statement.label,
        "direct_cost_usd": usd(statement.direct_femto),
        "allocated_cost_usd": usd(statement.allocated_femto),
        "allocated": [{"pool": share.pool, "cost_usd": usd(share.cost_femto)} for share in statement.allocated],
        "total_cost_usd": usd(statement.total_femto),
        "billed_cost_usd": usd(statement.billed_femto),
        "variance_usd": usd(statement.variance_femto),
        "billed_confidence": statement.billed_confidence,
        "runs": statement.runs,
        "successful_runs": statement.successful_runs,
        "calls": statement.calls,
        "unpriced_calls": statement.unpriced_calls,
        "previous_month_cost_usd": usd(statement.previous_femto),
        "change_pct": None if change is None else str(change),
        "top_workflows": _lines(statement.top_workflows),
        "top_features": _lines(statement.top_features),
    }


def to_json(result: MonthStatements) -> dict[str, Any]:
    """The month's statements as JSON (what ``GET /v1/statements`` answers)."""
    return {
        "month": result.month,
        "by": result.by,
        "month_cost_usd": usd(result.month_femto),
        "previous_month": result.previous_month,
        "previous_month_cost_usd": usd(result.previous_month_femto),
        "statements": [statement_json(s) for s in result.statements],
        "notes": list(result.notes),
    }


def _f(value: str | None) -> int | None:
    return None if value is None else usd_to_femto(value)


def _calculated(item: dict[str, Any]) -> int | None:
    billed, variance = _f(item["billed_cost_usd"]), _f(item["variance_usd"])
    return None if billed is None or variance is None else billed - variance


def from_json(document: dict[str, Any]) -> MonthStatements:
    """The inverse of ``to_json`` (the CLI renders statements it fetched from the API)."""

    def lines(items: list[dict[str, Any]]) -> tuple[Line, ...]:
        return tuple(Line(i["name"], usd_to_femto(i["cost_usd"]), int(i["runs"])) for i in items)

    statements = tuple(
        Statement(
            owner=s["owner"],
            direct_femto=usd_to_femto(s["direct_cost_usd"]),
            runs=int(s["runs"]),
            successful_runs=int(s["successful_runs"]),
            calls=int(s["calls"]),
            unpriced_calls=int(s["unpriced_calls"]),
            previous_femto=usd_to_femto(s["previous_month_cost_usd"]),
            top_workflows=lines(s["top_workflows"]),
            top_features=lines(s["top_features"]),
            allocated=tuple(PoolShare(a["pool"], usd_to_femto(a["cost_usd"])) for a in s["allocated"]),
            billed_femto=_f(s["billed_cost_usd"]),
            billed_calculated_femto=_calculated(s),
            billed_confidence=s["billed_confidence"],
        )
        for s in document["statements"]
    )
    return MonthStatements(
        month=document["month"],
        by=document["by"],
        statements=statements,
        month_femto=usd_to_femto(document["month_cost_usd"]),
        previous_month=document["previous_month"],
        previous_month_femto=usd_to_femto(document["previous_month_cost_usd"]),
        notes=tuple(document.get("notes", ())),
    )


CSV_COLUMNS = (
    "month", "by", "owner", "direct_cost_usd", "allocated_cost_usd", "allocated_by_pool", "total_cost_usd",
    "billed_cost_usd",
    "variance_usd", "billed_confidence", "runs", "successful_runs", "calls", "unpriced_calls",
    "previous_month_cost_usd", "change_pct", "top_workflows", "top_features",
)  # fmt: skip


def to_csv(result: MonthStatements) -> str:
    """One line per owner (the unattributed bucket included, owner empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for statement in result.statements:
        item = statement_json(statement)
        writer.writerow(
            [
                result.month, result.by, statement.owner, item["direct_cost_usd"], item["allocated_cost_usd"],
                "; ".join(f"{share['pool']}={share['cost_usd']}" for share in item["allocated"]),
                item["total_cost_usd"], item["billed_cost_usd"] or "", item["variance_usd"] or "",
                item["billed_confidence"] or "", statement.runs, statement.successful_runs, statement.calls,
                statement.unpriced_calls, item["previous_month_cost_usd"], item["change_pct"] or "",
                "; ".join(f"{line['name'] or '(none)'}={line['cost_usd']}" for line in item["top_workflows"]),
                "; ".join(f"{line['name'] or '(none)'}={line['cost_usd']}" for line in item["top_features"]),
            ]
        )  # fmt: skip
    return buffer.getvalue()
