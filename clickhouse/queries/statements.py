"""SQL of monthly chargeback statements: the hourly run rollups summed per owner over a month.

A month is whole UTC hours, so the hourly rollup answers it exactly (the same partials the
rollups API sums: a statement and ``GET /v1/rollups`` for the same month and owner agree).
Owner dimensions are whitelisted identifiers; values are bound parameters.
"""

from __future__ import annotations

from otelspend.clickhouse.queries.sql import Query, render

OWNER_DIMENSIONS: tuple[str, ...] = ("team", "cost_center", "tenant")
BREAKDOWNS: tuple[str, ...] = ("workflow_type", "feature")

_TOTALS = """
SELECT {owner} AS owner,
       CAST(sum(cost_usd) AS Decimal(38, 15)) AS cost_usd,
       sum(runs) AS runs, sum(successful_runs) AS successful_runs, sum(calls) AS calls,
       sum(unpriced_calls) AS unpriced_calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
FROM {db}.rollup_runs_hourly
WHERE hour >= fromUnixTimestamp({start:Int64}) AND hour < fromUnixTimestamp({end:Int64})
GROUP BY owner
"""

_BREAKDOWN = """
SELECT {owner} AS owner, {dim} AS value, CAST(sum(cost_usd) AS Decimal(38, 15)) AS cost_usd, sum(runs) AS runs
FROM {db}.rollup_runs_hourly
WHERE hour >= fromUnixTimestamp({start:Int64}) AND hour < fromUnixTimestamp({end:Int64})
GROUP BY owner, value
"""


def _check(name: str, allowed: tuple[str, ...]) -> str:
    if name not in allowed:
        raise ValueError(f"{name!r} is not one of {', '.join(allowed)}")
    return name


def owner_totals(database: str, owner: str, start_s: int, end_s: int) -> Query:
    """Per owner value ('' = unattributed): cost, runs, calls, unpriced calls, tokens."""
    sql = render(_TOTALS, db=database, owner=_check(owner, OWNER_DIMENSIONS))
    return Query(sql, {"start": start_s, "end": end_s})


def owner_breakdown(database: str, owner: str, dimension: str, start_s: int, end_s: int) -> Query:
    """Per (owner, workflow type | feature): cost and runs."""
    sql = render(_BREAKDOWN, db=database, owner=_check(owner, OWNER_DIMENSIONS), dim=_check(dimension, BREAKDOWNS))
    return Query(sql, {"start": start_s, "end": end_s})
