"""What the Reconciliation dashboard pages show: the ledger against the bill, no FastAPI.

``reconciliation_page``: billed against calculated per day (chart), the variance per day x
provider (table, each row drilling down to its cells), the variance by cause (bars), every
cell with its causes and confidence, other charges. ``cell_page``: the runs behind one cell
with their billed share (true-up), each linking to its run. Figures come from
``otelspend.api.reconciliation``, as ``GET /v1/reconciliation`` does, so they agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from otelspend.api import display, svg
from otelspend.api import reconciliation as recon
from otelspend.api.pages import Period, link
from otelspend.api.window import DAY_NS, NS, Window
from otelspend.clickhouse.client import Store
from otelspend.finance.billing.reconcile import CAUSES

CAUSE_LABELS = {
    "missing_telemetry": "billed, never seen by the ledger",
    "not_in_bill": "seen by the ledger, not billed",
    "price_mismatch": "price differs from the rate card",
    "discount": "cache / batch / priority rates",
    "unpriced_in_ledger": "unpriced in the ledger",
    "untagged": "billed to no mapped owner",
}


def day_window(p: Period) -> Window:
    """Bills come in whole UTC days: the page covers the days its period touches."""
    start = p.window.start_ns // DAY_NS * DAY_NS
    end = -(-p.window.end_ns // DAY_NS) * DAY_NS
    return Window(start, end)


def _request(window: Window, group_by: tuple[str, ...], **filters: str) -> recon.ReconciliationRequest:
    return recon.ReconciliationRequest(
        window, group_by, tuple((k, (v,)) for k, v in sorted(filters.items()) if v), recon.MAX_ROWS
    )


def _money(value: str | None) -> float:
    return float(Decimal(value)) if value is not None else 0.0


def _shown(value: str | None) -> str:
    return "no money on the bill" if value is None else display.usd(value)


def _top_cause(row: dict[str, Any]) -> str:
    causes = {name: Decimal(value) for name, value in row["causes"].items() if value is not None and Decimal(value)}
    return max(causes, key=lambda name: abs(causes[name])) if causes else ""


def reconciliation_page(store: Store, p: Period, *, provider: str = "", day: str = "") -> dict[str, Any]:
    """Template data of the Reconciliation page: per-day chart, causes, provider days, cells."""
    window = day_window(p)
    by_day = recon.reconciliation(store, _request(window, ("day",), provider=provider, day=day))
    by_provider = recon.reconciliation(store, _request(window, ("day", "provider"), provider=provider, day=day))
    cells = recon.reconciliation(store, _request(window, ("day", "provider", "model", "account"),
                                                 provider=provider, day=day))["rows"]  # fmt: skip
    days = [dt.datetime.fromtimestamp(t // NS, dt.UTC) for t in range(window.start_ns, window.end_ns, DAY_NS)]
    found = {row["day"]: row for row in by_day["rows"]}
    keys = [d.date().isoformat() for d in days]
    billed = [_money(found[k]["billed_usd"]) if k in found else None for k in keys]
    calculated = [_money(found[k]["calculated_usd"]) if k in found else None for k in keys]
    chart = svg.time_chart(
        svg.Chart(
            "chart-billed-calculated",
            "Billed and calculated per day",
            "Usage money the provider billed and the ledger's calculated cost of the same calls, per UTC day, "
            "on the days a bill covers.",
        ),
        [d.strftime("%b %d (UTC)") for d in days],
        [d.strftime("%b %d") for d in days],
        [
            svg.Series("Billed", billed, [_shown(found[k]["billed_usd"]) if k in found else "no bill" for k in keys]),
            svg.Series(
                "Calculated",
                calculated,
                [display.usd(found[k]["calculated_usd"]) if k in found else "no bill" for k in keys],
            ),
        ],
        lambda v: display.usd(Decimal(repr(v))),
    )
    totals = by_day["totals"]
    cause_bars = []
    if totals:
        for name in CAUSES:
            value = totals["causes"][name]
            if Decimal(value):
                cause_bars.append(
                    svg.Bar(name.replace("_", " "), abs(_money(value)), display.usd(value), None, CAUSE_LABELS[name])
                )
    for row in by_provider["rows"]:
        row["top_cause"] = _top_cause(row)
        row["href"] = link("/reconciliation", p, provider=row["provider"], day=row["day"])
    for row in cells:
        row["top_cause"] = _top_cause(row)
        row["href"] = link("/reconciliation/cell", p, day=row["day"], provider=row["provider"],
                           model=row["model_key"], account=row["account"])  # fmt: skip
    return {
        "recon_window": window.describe(),
        "filters": {"provider": provider, "day": day},
        "totals": totals,
        "chart": chart,
        "causes_chart": svg.bar_chart(
            svg.Chart(
                "chart-causes",
                "Variance by cause",
                "The variance of the period split by cause (absolute amounts; the text keeps the sign).",
            ),
            cause_bars,
            width=560,
            label_width=150,
            value_width=90,
        ),
        "by_provider": by_provider["rows"],
        "cells": cells,
        "other_charges": by_day["other_charges"],
        "reconciled_days": by_day["reconciled_days"],
        "cause_labels": CAUSE_LABELS,
        "causes": CAUSES,
    }


def cell_page(store: Store, *, day: dt.date, provider: str, model: str, account: str) -> dict[str, Any] | None:
    """One cell: its reconciliation row and the runs behind it (largest billed share first)."""
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * NS
    rows = recon.reconciliation(
        store,
        _request(Window(start, start + DAY_NS), ("day", "provider", "model", "account"), provider=provider,
                 model=model, account=account),
    )["rows"]  # fmt: skip
    rows = [r for r in rows if r["account"] == account]  # '' is a real account: the filter skips empties
    if not rows:
        return None
    (cell,) = rows[:1]
    cell["top_cause"] = _top_cause(cell)
    runs = recon.cell_runs(store, day=day, provider=provider, model=model, account=account, limit=500)
    return {"cell": cell, "runs": runs, "cause_labels": CAUSE_LABELS, "causes": CAUSES}
