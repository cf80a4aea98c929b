"""Margin per customer (or tenant) and unit costs: the rollup vocabulary's loaded metrics, shaped.

* ``margins``: revenue, direct, allocated and loaded cost, margin and margin % per customer;
  a customer is **margin-dilutive** when its margin % is below the margin % of all customers
  together in the window, or when it cost money and has no revenue on record.
* ``unit_costs``: for each unit of value of the cost-pools file, the loaded cost of the runs in
  its ``scope`` over the runs of that scope that also match its ``count`` (an outcome, a status
  or any run dimension): cost per resolution, per processed document, per transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from otelspend.api.query import rollup, usd_per
from otelspend.api.requests import RollupRequest
from otelspend.api.window import Window
from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.pools import Unit

MARGIN_METRICS = (
    "revenue_usd",
    "direct_cost_usd",
    "allocated_cost_usd",
    "loaded_cost_usd",
    "margin_usd",
    "margin_pct",
    "runs",
)
MAX_GROUPS = 100_000


def margins(
    store: Store, window: Window, by: Literal["customer", "tenant"], *, dilutive_only: bool = False
) -> dict[str, Any]:
    """Every customer (or tenant) with cost or revenue in the window, worst margin first."""
    table = rollup(store, RollupRequest(window, (by,), MARGIN_METRICS, (), "margin_usd", False, MAX_GROUPS))
    totals = table["totals"]
    overall = totals.get("margin_pct")
    rows = []
    for row in table["rows"]:
        loaded = Decimal(row["loaded_cost_usd"] or 0)
        if row["revenue_usd"] is None or Decimal(row["revenue_usd"]) == 0:
            dilutive, reason = loaded > 0, "cost without revenue on record" if loaded > 0 else ""
        elif overall is None:
            dilutive, reason = row["margin_pct"] is not None and row["margin_pct"] < 0, "negative margin"
        else:
            dilutive = row["margin_pct"] is not None and row["margin_pct"] < overall
            reason = f"margin {row['margin_pct']:.2f} % below the overall {overall:.2f} %" if dilutive else ""
        if dilutive_only and not dilutive:
            continue
        rows.append({**row, "dilutive": dilutive, "reason": reason or None})
    rows.sort(key=lambda r: (not r["dilutive"], r["margin_usd"] is not None, Decimal(r["margin_usd"] or 0)))
    return {
        **window.describe(),
        "by": by,
        "overall": {name: totals.get(name) for name in MARGIN_METRICS},
        "rows": rows,
        "total_groups": table["total_groups"],
    }


def _merge(scope: Mapping[str, Sequence[str]], count: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Both filters at once: values of a dimension named by both are those in both."""
    merged = {name: tuple(values) for name, values in scope.items()}
    for name, values in count.items():
        merged[name] = tuple(v for v in merged[name] if v in values) if name in merged else tuple(values)
    return merged


def unit_costs(store: Store, window: Window, units: Sequence[Unit], group_by: Sequence[str] = ()) -> dict[str, Any]:
    """Cost per unit of value, for each unit (and each group of ``group_by``)."""
    out = []
    money = ("direct_cost_usd", "allocated_cost_usd", "loaded_cost_usd")
    for unit in units:
        scope = tuple((name, tuple(values)) for name, values in unit.scope.items())
        counted = tuple(_merge(unit.scope, unit.count).items())
        cost = rollup(store, RollupRequest(window, tuple(group_by), (*money, "runs"), scope, "runs", True, MAX_GROUPS))
        count = rollup(store, RollupRequest(window, tuple(group_by), ("runs",), counted, "runs", True, MAX_GROUPS))
        counts = {tuple(row[d] for d in group_by): row["runs"] for row in count["rows"]}
        groups = []
        for row in cost["rows"] if group_by else [cost["totals"] | {}]:
            key = tuple(row[d] for d in group_by)
            units_counted = counts.get(key, 0) if group_by else count["totals"]["runs"] or 0
            groups.append(
                {
                    **{d: row[d] for d in group_by},
                    "units": units_counted,
                    "runs": row["runs"],
                    **{name: row[name] for name in money},
                    **{
                        name.replace("_usd", "_per_unit_usd"): (
                            None if row[name] is None else usd_per(Decimal(row[name]), units_counted)
                        )
                        for name in money
                    },
                }
            )
        out.append(
            {
                "unit": unit.id,
                "description": unit.description,
                "scope": {k: list(v) for k, v in unit.scope.items()},
                "count": {k: list(v) for k, v in unit.count.items()},
                "groups": groups,
            }
        )
    return {**window.describe(), "group_by": list(group_by), "units": out}
