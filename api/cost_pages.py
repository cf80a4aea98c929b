"""The "Cost to serve" dashboard page: per tenant or customer, direct cost, allocated cost by
pool, loaded cost, revenue and margin; the margin-dilutive ones; the pools and the units of value.

Every figure comes from the same query functions as the REST API (``GET /v1/rollups`` with the
loaded metrics, ``GET /v1/margins``, ``GET /v1/allocations``, ``GET /v1/unit-costs``), so the
page and the API always agree.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any, Literal

from otelspend.api import svg
from otelspend.api.allocation import allocations, pool_record
from otelspend.api.display import usd
from otelspend.api.economics import margins, unit_costs
from otelspend.api.pages import Period, link
from otelspend.api.query import rollup
from otelspend.api.requests import RollupRequest
from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.pools import CostRules

By = Literal["tenant", "customer"]
TABLE_ROWS = 100
TOP_N = 10
LOADED_METRICS = (
    "direct_cost_usd",
    "allocated_cost_usd",
    "loaded_cost_usd",
    "revenue_usd",
    "margin_usd",
    "margin_pct",
    "runs",
)


def cost_to_serve(store: Store, rules: CostRules, p: Period, by: By, *, late_horizon_ns: int) -> dict[str, Any]:
    """Everything the page shows, for ``by`` (tenant or customer) over the page's window."""
    table = rollup(store, RollupRequest(p.window, (by,), LOADED_METRICS, (), "loaded_cost_usd", True, TABLE_ROWS))
    rows: list[dict[str, Any]] = table["rows"]
    per_pool = rollup(
        store, RollupRequest(p.window, (by, "pool"), ("allocated_cost_usd",), (), "allocated_cost_usd", True, 10_000)
    )["rows"]
    pool_ids = [pool.id for pool in rules.pools]
    pool_ids += sorted({r["pool"] for r in per_pool if r["pool"] and r["pool"] not in pool_ids})
    by_pool: dict[str, dict[str, str]] = {}
    for r in per_pool:
        if r["pool"]:
            by_pool.setdefault(r[by], {})[r["pool"]] = r["allocated_cost_usd"]
    dilutive = margins(store, p.window, by, dilutive_only=True)
    dilutive_keys = {r[by] for r in dilutive["rows"]}
    for row in rows:
        row["pools"] = [by_pool.get(row[by], {}).get(pool_id) for pool_id in pool_ids]
        row["dilutive"] = row[by] in dilutive_keys
    return {
        "by": by,
        "other_by": "customer" if by == "tenant" else "tenant",
        "rows": rows,
        "total_groups": table["total_groups"],
        "totals": table["totals"],
        "pool_ids": pool_ids,
        "dilutive": dilutive["rows"][:TABLE_ROWS],
        "overall_margin_pct": dilutive["overall"]["margin_pct"],
        "pools": _pools(store, rules, p, late_horizon_ns),
        "units": unit_costs(store, p.window, rules.units)["units"],
        "loaded_chart": svg.bar_chart(
            svg.Chart("chart-loaded", f"Loaded cost by {by}", f"{by.title()}s ranked by fully loaded cost."),
            [
                svg.Bar(
                    row[by] or "(not set)",
                    float(Decimal(row["loaded_cost_usd"] or 0)),
                    usd(row["loaded_cost_usd"]),
                    link("/runs", p, **{f"filter.{by}": row[by]}) if row[by] != "(unallocated)" else None,
                    f"direct {usd(row['direct_cost_usd'])} + allocated {usd(row['allocated_cost_usd'])}",
                )
                for row in rows[:TOP_N]
            ],
            width=600,
            label_width=170,
            value_width=90,
        ),
    }


def _pools(store: Store, rules: CostRules, p: Period, late_horizon_ns: int) -> list[dict[str, Any]]:
    """Each pool in force with what its periods starting in the window amount to, and how much of
    it no consumer took."""
    listing = allocations(store, p.window, [], now_ns=time.time_ns(), closed_after_ns=late_horizon_ns)
    amount: dict[str, Decimal] = {}
    unallocated: dict[str, Decimal] = {}
    periods: dict[str, int] = {}
    for period in listing["periods"]:
        amount[period["pool"]] = amount.get(period["pool"], Decimal(0)) + Decimal(period["amount_usd"])
        periods[period["pool"]] = periods.get(period["pool"], 0) + 1
    for row in listing["rows"]:
        if row["unallocated"]:
            unallocated[row["pool"]] = unallocated.get(row["pool"], Decimal(0)) + Decimal(row["amount_usd"])
    today = dt.datetime.now(dt.UTC).date()
    return [
        {
            **pool_record(pool, today),
            "periods_in_range": periods.get(pool.id, 0),
            "allocated_in_range_usd": _usd(amount.get(pool.id, Decimal(0)) - unallocated.get(pool.id, Decimal(0))),
            "unallocated_in_range_usd": _usd(unallocated.get(pool.id, Decimal(0))),
        }
        for pool in rules.pools
    ]


def _usd(value: Decimal) -> str:
    return format(value.quantize(Decimal("1e-15")), "f")
