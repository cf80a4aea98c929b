"""Revenue per tenant and/or customer (optionally feature) and day (migration 0007).

``revenue`` is a ``ReplacingMergeTree(version)`` keyed by ``(tenant, customer, feature, day)``:
importing the same day again replaces it (read with ``FINAL``; the table is small: one row per
customer and day).
"""

from __future__ import annotations

from otelspend.clickhouse.queries.sql import Query, render

COLUMNS: tuple[str, ...] = (
    "day",
    "tenant",
    "customer",
    "feature",
    "amount_usd",
    "line_start",
    "line_end",
    "line_amount_usd",
    "source",
    "imported_at",
    "version",
)
"""Columns an import writes, in table order."""


def table(database: str) -> str:
    """``<db>.revenue`` for inserts."""
    return render("{db}.revenue", db=database)


_TOTALS = """
SELECT tenant, customer, feature, CAST(sum(amount_usd) AS Decimal(38, 15)) AS revenue_usd,
       toString(min(day)) AS first_day, toString(max(day)) AS last_day, count() AS days
FROM {db}.revenue FINAL
WHERE day >= toDate({from:String}) AND day < toDate({to:String})
GROUP BY tenant, customer, feature
ORDER BY revenue_usd DESC, tenant, customer, feature
"""


def totals(database: str, from_day: str, to_day: str) -> Query:
    """Revenue in force per (tenant, customer, feature) over the days in ``[from_day, to_day)``."""
    return Query(render(_TOTALS, db=database), {"from": from_day, "to": to_day})
