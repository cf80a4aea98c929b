"""Shared-cost allocation: the runs a pool is shared over, the allocations in force, listings.

``allocations`` (migration 0007) is a ``VersionedCollapsingMergeTree(sign, version)`` keyed by
``(pool, period_start, consumer, run_id)``: a restated row is cancelled (its stored copy with
``sign = -1``) and written again, like runs, so ``rollup_alloc_hourly`` / ``_daily`` move by
exact deltas. The rows in force are those whose signs net positive (``runs.current`` nets
fetched rows the same way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otelspend.clickhouse.queries import billing
from otelspend.clickhouse.queries.runs import RUN_ATTRIBUTION, RUNS_IN_FORCE, in_force, run_filters
from otelspend.clickhouse.queries.sql import Fragment, Params, Query, checked_columns, render
from otelspend.clickhouse.queries.vocabulary import DIMENSIONS, Filters

FIELDS: tuple[str, ...] = (
    "pool",
    "period_start",
    "consumer",
    "run_id",
    "version",
    "sign",
    "rule_version",
    "period",
    "period_end",
    "by",
    "method",
    "signal",
    "cost_kind",
    "unallocated",
    "start_time",
    "amount_usd",
    "run_quantity",
    "consumer_quantity",
    "pool_quantity",
    "consumer_ratio",
    *RUN_ATTRIBUTION,
    "written_at",
    "node",
)
"""Columns of ``allocations`` in table order (inserts name them)."""

IN_FORCE = in_force("pool", "period_start", "consumer", "run_id", "version", allowed=FIELDS)
"""Allocation rows in force: per row identity and version, the signs net positive."""

SIGNAL_WEIGHTS: dict[str, tuple[str, int]] = {
    "runs": ("1", 1),
    "spans": ("spans", 1),
    "calls": ("llm_calls", 1),
    "tokens": ("input_tokens + output_tokens", 1),
    "input_tokens": ("input_tokens", 1),
    "output_tokens": ("output_tokens", 1),
    "retrieval_queries": ("retrieval_queries", 1),
    "gpu_seconds": ("gpu_us", 10**6),
    "duration": ("duration_ms", 1),
    "direct_cost": ("toInt128(ifNull(cost_usd, toDecimal128(0, 15)) * 1000000000000000)", 10**15),
}
"""Signal -> (integer weight over a run's columns, weight units per signal unit): a signal is
split over as an exact integer (femto-USD for direct cost, GPU-microseconds, tokens, ...)."""

_SIGNALS = """
SELECT run_id, toUnixTimestamp64Nano(argMax(start_time, version)) AS start_ns,
       argMax({by}, version) AS consumer, toString(toInt128(argMax({weight}, version))) AS weight, {dims}
FROM {db}.runs WHERE {where}
{in_force}
ORDER BY consumer, run_id
"""


def signals(database: str, start_ns: int, end_ns: int, scope: Filters, by: str, signal: str) -> Query:
    """Every run in force that started in ``[start_ns, end_ns)`` and matches ``scope``: id, start,
    its ``by`` value, its signal as an integer weight (a decimal string: Int128 has no Arrow type),
    and its attribution (``RUN_ATTRIBUTION``, columns ``d_<name>``); by consumer, then run id
    (the order the split takes them in)."""
    if DIMENSIONS[by].level == "call":
        raise ValueError(f"{by} is a call-level dimension")
    params = Params()
    where = run_filters(database, start_ns, end_ns, scope, params)
    dims = ", ".join(f"argMax({name}, version) AS d_{name}" for name in RUN_ATTRIBUTION)
    sql = render(
        _SIGNALS,
        db=database,
        by=DIMENSIONS[by].column,
        weight=Fragment(SIGNAL_WEIGHTS[signal][0]),
        dims=Fragment(dims),
        where=Fragment(" AND ".join(where)),
        in_force=RUNS_IN_FORCE,
    )
    return Query(sql, params.values)


_STORED = """
SELECT pool, toUnixTimestamp(period_start) * 1000000000 AS period_start_ns, consumer, run_id,
       any(rule_version), any(period), toUnixTimestamp(any(period_end)) * 1000000000 AS period_end_ns, any(by),
       any(method), any(signal), any(cost_kind), any(unallocated), toUnixTimestamp64Nano(any(start_time)) AS start_ns,
       any(amount_usd), any(run_quantity), any(consumer_quantity), any(pool_quantity), any(consumer_ratio), {dims},
       version
FROM {db}.allocations
WHERE pool = {pool:String} AND period_start = toDateTime({period_start:Int64}, 'UTC')
{in_force}
"""


def stored(database: str, pool: str, period_start_s: int) -> Query:
    """The rows in force of one pool's period, netted in the query (``IN_FORCE``: a row and its
    cancel copy share every column, so ``any`` of the rest is exact); the last column is the
    row's version. Netting here rather than over fetched rows keeps a period restated many
    times as cheap to read as one written once."""
    dims = ", ".join(f"any({name})" for name in RUN_ATTRIBUTION)
    return Query(
        render(_STORED, db=database, dims=Fragment(dims), in_force=IN_FORCE),
        {"pool": pool, "period_start": period_start_s},
    )


_PERIODS_IN_FORCE = """
SELECT pool, toUnixTimestamp(period_start) AS period_start_s, rule_version, period
FROM {db}.allocations WHERE period_start >= toDateTime({since:Int64}, 'UTC')
{in_force}
"""
_RULES_IN_FORCE = in_force("pool", "period_start", "rule_version", "period", allowed=FIELDS)


def periods_in_force(database: str, since_s: int) -> Query:
    """Distinct (pool, period start, rule version, period kind) of the rows in force from
    ``since_s`` on. A cancel row is a copy of the row it cancels (same rule version), so the
    signs of one (pool, period, rule version) sum to the number of its rows in force: netting
    at that grain is exact and, over millions of rows, far cheaper than per row identity (the
    turn with nothing to do costs this query)."""
    return Query(render(_PERIODS_IN_FORCE, db=database, in_force=_RULES_IN_FORCE), {"since": since_s})


_DIRTY_DAYS = """
SELECT DISTINCT toUnixTimestamp(toStartOfDay(start_time)) FROM {db}.runs
WHERE written_at >= fromUnixTimestamp64Nano({since:Int64}) AND start_time >= fromUnixTimestamp64Nano({first:Int64})
"""


def dirty_days(database: str, since_ns: int, first_ns: int) -> Query:
    """UTC days (unix seconds) holding runs written since ``since_ns`` (new, late, re-emitted)
    that started after ``first_ns``."""
    return Query(render(_DIRTY_DAYS, db=database), {"since": since_ns, "first": first_ns})


_FIRST_RUN = "SELECT toUnixTimestamp64Nano(min(start_time)) FROM {db}.runs"


def first_run(database: str) -> Query:
    """The ledger's earliest run start (ns; 0 without runs)."""
    return Query(render(_FIRST_RUN, db=database), {})


_BY_CONSUMER = """
SELECT pool, toUnixTimestamp(period_start) AS period_start_s, toUnixTimestamp(period_end) AS period_end_s,
       consumer, rule_version, period, by, method, signal, cost_kind, unallocated,
       CAST(sum(amount_usd) AS Decimal(38, 15)) AS amount_usd, toInt64(countIf(run_id != '')) AS runs,
       any(consumer_quantity) AS consumer_quantity, any(pool_quantity) AS pool_quantity,
       any(consumer_ratio) AS consumer_ratio
FROM (
    SELECT pool, period_start, consumer, run_id, version, any(period_end) AS period_end,
           any(rule_version) AS rule_version, any(period) AS period, any(by) AS by, any(method) AS method,
           any(signal) AS signal, any(cost_kind) AS cost_kind, any(unallocated) AS unallocated,
           any(amount_usd) AS amount_usd, any(consumer_quantity) AS consumer_quantity,
           any(pool_quantity) AS pool_quantity, any(consumer_ratio) AS consumer_ratio
    FROM {db}.allocations
    WHERE period_start >= toDateTime({from:Int64}, 'UTC') AND period_start < toDateTime({to:Int64}, 'UTC'){pools}
    {in_force}
)
GROUP BY pool, period_start, period_end, consumer, rule_version, period, by, method, signal, cost_kind,
         unallocated
ORDER BY pool, period_start, unallocated, amount_usd DESC, consumer
"""


def by_consumer(database: str, from_s: int, to_s: int, pools: Sequence[str] = ()) -> Query:
    """Allocations in force per pool, period and consumer, for periods starting in ``[from_s, to_s)``.

    A consumer's quantities and ratio are the same on each of its rows in force (a change
    rewrites all of them), hence ``any``."""
    params: dict[str, Any] = {"from": from_s, "to": to_s}
    extra = ""
    if pools:
        extra = " AND pool IN {pools:Array(String)}"
        params["pools"] = list(pools)
    return Query(render(_BY_CONSUMER, db=database, pools=Fragment(extra), in_force=IN_FORCE), params)


# -- billed pools: the amount of imported bill lines (billing import, migration 0006) -------------

BILL_COLUMNS = frozenset(
    {
        "provider",
        "account_id",
        "project_id",
        "workspace_id",
        "api_key_id",
        "model",
        "model_billed",
        "kind",
        "charge",
        "format",
        "service_tier",
        "description",
    }
)
"""Columns of the bill lines in force a billed pool's filter may name."""
_BILLED_AMOUNT = """
SELECT CAST(sum(ifNull(amount, toDecimal128(0, 15))) AS Decimal(38, 15)), toInt64(count()),
       toInt64(countIf(amount IS NOT NULL))
FROM ({lines})
WHERE {filters}
"""


def billed_amount(database: str, start_s: int, end_s: int, bill_filter: Mapping[str, Sequence[str]]) -> Query:
    """(money, lines, lines stating money) of the bill lines in force whose period starts in
    ``[start_s, end_s)`` and that match ``bill_filter`` (column -> values)."""
    lines = billing.current_lines(database, start_s, end_s)
    params = Params()
    terms = [
        f"{column} IN {params.bind('b', list(bill_filter[column]), 'Array(String)')}"
        for column in checked_columns(sorted(bill_filter), BILL_COLUMNS)
    ]
    sql = render(_BILLED_AMOUNT, lines=Fragment(lines.sql), filters=Fragment(" AND ".join(terms) or "1"))
    return Query(sql, {**lines.parameters, **params.values})


_BILL_IMPORTS = """
SELECT toUnixTimestamp(period_start), toUnixTimestamp(period_end) FROM {db}.billing_imports
WHERE imported_at >= fromUnixTimestamp64Milli(intDiv({since:Int64}, 1000000))
"""


def bill_imports_since(database: str, since_ns: int) -> Query:
    """(period start, period end) in unix seconds of the bill imports recorded since ``since_ns``:
    the periods of billed pools to look at again."""
    return Query(render(_BILL_IMPORTS, db=database), {"since": since_ns})
