"""Cost pools and their allocations as the API shows them (plain dicts; money as exact strings).

Each allocation is listed per pool, period and consumer with the rule that produced it (pool
id and rule version: ``AllocatedMethodId``) and the FOCUS 1.3 ``AllocatedMethodDetails``
(``{"Elements": [{"AllocatedRatio", "UsageUnit", "UsageQuantity"}]}``, JSON numbers as FOCUS
writes them), beside exact decimal strings of the same figures.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from otelspend.api.window import NS, Window, rfc3339
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import allocation as queries
from otelspend.finance.allocation.engine import UNALLOCATED
from otelspend.finance.allocation.pools import SIGNALS, CostRules, Pool


def usd(value: Decimal) -> str:
    """A Decimal amount with 15 places, as every money figure of the API."""
    return format(Decimal(value).quantize(Decimal("1e-15")), "f")


def pool_record(pool: Pool, today: dt.date) -> dict[str, Any]:
    """A pool as ``GET /v1/cost-pools`` lists it."""
    return {
        "id": pool.id,
        "owner": pool.owner,
        "description": pool.description,
        "review": pool.review.isoformat(),
        "review_due": pool.review <= today,
        "rule_version": pool.rule_version,
        "amount_usd": usd(pool.amount_usd) if pool.amount_usd is not None else None,
        "billed": {key: list(values) for key, values in pool.bill_filter.items()} or None,
        "period": pool.period,
        "scope": {key: list(values) for key, values in pool.scope_filter.items()},
        "signal": pool.signal,
        "signal_unit": SIGNALS[pool.signal][0],
        "method": pool.method,
        "by": pool.by,
        "coefficients": {key: str(pct) for key, pct in pool.coefficients.items()} if pool.coefficients else None,
        "cost_kind": pool.cost_kind,
        "effective_from": pool.effective_from.isoformat() if pool.effective_from else None,
        "effective_to": pool.effective_to.isoformat() if pool.effective_to else None,
    }


def cost_pools(rules: CostRules, status: dict[str, Any] | None, today: dt.date) -> dict[str, Any]:
    """Every pool and unit in force, the file they came from and the allocation job's state."""
    return {
        "source": rules.source or None,
        "pools": [pool_record(pool, today) for pool in rules.pools],
        "units": [
            {
                "id": unit.id,
                "description": unit.description,
                "scope": {k: list(v) for k, v in unit.scope.items()},
                "count": {k: list(v) for k, v in unit.count.items()},
            }
            for unit in rules.units
        ],
        "allocation": status,
    }


def allocations(store: Store, window: Window, pools: list[str], *, now_ns: int, closed_after_ns: int) -> dict[str, Any]:
    """Allocations in force for the periods starting in the window, per pool, period and consumer.

    A period is ``closed`` once it ended more than ``closed_after_ns`` ago (the late-span
    horizon): its figures are final unless late data or a rule change restates them (both do,
    by exact deltas)."""
    query = queries.by_consumer(store.database, window.start_ns // NS, -(-window.end_ns // NS), pools)
    rows = []
    totals: dict[tuple[str, int], Decimal] = {}
    for record in store.dicts(*query):
        start_ns, end_ns = int(record["period_start_s"]) * NS, int(record["period_end_s"]) * NS
        amount = Decimal(record["amount_usd"])
        totals[(record["pool"], start_ns)] = totals.get((record["pool"], start_ns), Decimal(0)) + amount
        ratio, quantity = Decimal(record["consumer_ratio"]), Decimal(record["consumer_quantity"])
        unit = SIGNALS[record["signal"]][0] if record["signal"] in SIGNALS else record["signal"]
        unallocated = bool(record["unallocated"])
        rows.append(
            {
                "pool": record["pool"],
                "period": record["period"],
                "period_start": rfc3339(start_ns),
                "period_end": rfc3339(end_ns),
                "status": "closed" if end_ns + closed_after_ns <= now_ns else "open",
                "by": record["by"],
                "consumer": record["consumer"],
                "unallocated": unallocated,
                "amount_usd": usd(amount),
                "runs": int(record["runs"]),
                "rule_version": record["rule_version"],
                "method": record["method"],
                "signal": record["signal"],
                "cost_kind": record["cost_kind"],
                "consumer_ratio": format(ratio, "f"),
                "consumer_quantity": format(quantity.normalize(), "f"),
                "pool_quantity": format(Decimal(record["pool_quantity"]).normalize(), "f"),
                "AllocatedMethodId": f"{record['pool']}@{record['rule_version']}",
                "AllocatedMethodDetails": None
                if unallocated
                else {
                    "Elements": [{"AllocatedRatio": float(ratio), "UsageUnit": unit, "UsageQuantity": float(quantity)}]
                },
            }
        )
    periods = [
        {"pool": pool, "period_start": rfc3339(start), "amount_usd": usd(total)}
        for (pool, start), total in sorted(totals.items())
    ]
    return {**window.describe(), "rows": rows, "periods": periods, "unallocated_consumer": UNALLOCATED}


def _details(ratio: Decimal, unit: str, quantity: Decimal) -> dict[str, Any]:
    """FOCUS 1.3 ``AllocatedMethodDetails``: JSON numbers, as the specification writes them."""
    return {"Elements": [{"AllocatedRatio": float(ratio), "UsageUnit": unit, "UsageQuantity": float(quantity)}]}
