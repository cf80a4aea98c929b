"""SQL of monthly chargeback statements: the hourly run rollups summed per owner over a month.

A month is whole UTC hours, so the hourly rollup answers it exactly (the same partials the
rollups API sums: a statement and ``GET /v1/rollups`` for the same month and owner agree).
Owner dimensions are whitelisted identifiers; values are bound parameters.
"""

from __future__ import annotations

from otelspend.clickhouse.queries import billing
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


# Reconciled billed money of the month's runs per owner (issue 13's current true-up shares, placed
# by run start like every figure), the calculated cost of the same calls (the variance's base)
# and the weakest confidence behind it. Shares no run took (billing labels their attribution
# '(unattributed)') belong to the statements' one unattributed owner, ''.
_BILLED = """
SELECT if(unattributed = 1, '', {owner}) AS owner, sum(billed_usd) AS billed_usd, sum(calculated_usd) AS calculated_usd,
       min(multiIf(confidence = 'high', 3, confidence = 'medium', 2, 1)) AS confidence_rank
FROM {db}.billing_trueup
WHERE run_start >= fromUnixTimestamp64Nano({start_ns:Int64}) AND run_start < fromUnixTimestamp64Nano({end_ns:Int64})
  AND {current}
GROUP BY owner
"""

# Shared costs allocated to the month's runs per owner and pool (issue 14's hourly allocation
# rollup, the partials behind the rollups API's allocated_cost_usd, placed by run start). Money a
# pool had no consumer for carries '(unallocated)' in its by dimension only: under another owner
# dimension it is the unattributed owner's, ''.
_ALLOCATED = """
SELECT {owner} AS owner, pool, CAST(sum(allocated_usd) AS Decimal(38, 15)) AS allocated_usd
FROM {db}.rollup_alloc_hourly
WHERE hour >= fromUnixTimestamp({start:Int64}) AND hour < fromUnixTimestamp({end:Int64})
GROUP BY owner, pool
HAVING allocated_usd != 0
ORDER BY owner, pool
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


def owner_billed(database: str, owner: str, start_s: int, end_s: int) -> Query:
    """Per owner value: reconciled ``billed_usd``, the ``calculated_usd`` of the same calls and
    ``confidence_rank`` (1 low, 2 medium, 3 high), for runs that started in ``[start_s, end_s)``."""
    sql = render(_BILLED, db=database, owner=_check(owner, OWNER_DIMENSIONS), current=billing.current(database))
    return Query(sql, {"start_ns": start_s * 10**9, "end_ns": end_s * 10**9})


def owner_allocated(database: str, owner: str, start_s: int, end_s: int) -> Query:
    """Per (owner, pool): ``allocated_usd`` of the runs that started in ``[start_s, end_s)``."""
    sql = render(_ALLOCATED, db=database, owner=_check(owner, OWNER_DIMENSIONS))
    return Query(sql, {"start": start_s, "end": end_s})
