"""Build the SQL of aggregate queries from the vocabulary: identifiers from its tables only,
every request value a bound parameter.

Shape of a query (``aggregate_query``)::

    SELECT g0, ..., <Metric.expr over the merged partials a_*>
    FROM (
        SELECT g0, ..., sum(p_runs) AS a_runs, quantiles...Merge(p_q) AS a_latency_q, ...
        FROM (
            SELECT <dims> AS g0, ..., <row partials> AS p_*      -- whole days: a daily rollup
            FROM rollup_*_daily WHERE day in full days AND filters  -- (its dimensions only)
            UNION ALL
            SELECT <dims> AS g0, ..., <row partials> AS p_*      -- whole hours: a rollup
            FROM rollup_*_hourly WHERE hour in the other full hours AND filters
            UNION ALL
            SELECT <dims> AS g0, ..., <aggregate partials> AS p_* -- edge hours: raw rows
            FROM runs | run_calls WHERE start_time in edge ranges AND filters GROUP BY g0, ...
        )
        GROUP BY g0, ...
    )
    ORDER BY ... LIMIT ...

Raw rows are summed with their sign (``VersionedCollapsingMergeTree``: a cancelled
emission is a -1 row), exactly what the rollup materialized views did, so both parts
produce identical partials and a figure is the same whichever part answered it.

One case needs more than sums: distinct runs at call level when a call-dimension filter
has several values on a dimension not grouped by (``filter.model=a&filter.model=b``
grouped by tenant: a run calling both models is one run). The run counts then come from
the raw breakdown rows, per (group, run), joined to the other partials by group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from otelspend.api.requests import Filters
from otelspend.api.vocabulary import (
    BILLING_PARTIALS,
    BILLING_UNSUPPORTED_DIMENSIONS,
    CALL_BITS,
    DIMENSIONS,
    METRICS,
    PARTIALS,
    Source,
    metric_partials,
)
from otelspend.api.window import Window

ROLLUP_TABLE: dict[str, str] = {
    "runs_rollup": "rollup_runs_hourly",
    "calls_rollup": "rollup_calls_hourly",
    "runs_daily": "rollup_runs_daily",
    "calls_daily": "rollup_calls_daily",
}
DAILY: dict[str, tuple[Source, frozenset[str]]] = {
    "runs_rollup": ("runs_daily", frozenset({"workflow_type", "tenant"})),
    "calls_rollup": ("calls_daily", frozenset({"tenant", "model", "provider"})),
}
"""Each hourly rollup's daily counterpart (migration 0005) and the only dimensions it keeps."""
RAW_TABLE: dict[str, str] = {"runs": "runs", "run_calls": "run_calls"}
BucketExpr = Literal["hour", "day"]


@dataclass(frozen=True)
class Plan:
    """Which tables answer a query, decided by the dimensions it touches."""

    level: Literal["run", "call"]
    raw_only: bool
    subset: int
    """Bitmask of the call dimensions involved (a run_mask bit index)."""
    distinct_runs: bool = False
    """Run counts need true distinct counting over raw run_calls: a call-dimension filter
    with several values on a dimension not grouped by (a run with calls of two matching
    models is one run, but it is first-of-its-projection once per model)."""
    daily: bool = False
    """Every dimension touched is in the level's daily rollup: whole days can come from it."""

    @property
    def rollup(self) -> Source:
        return "calls_rollup" if self.level == "call" else "runs_rollup"

    @property
    def raw(self) -> Source:
        return "run_calls" if self.level == "call" else "runs"

    def whole_days(self, window: Window, bucket: BucketExpr | None) -> tuple[int, int] | None:
        """The whole days a daily rollup answers, or None (another dimension, hourly buckets)."""
        if self.raw_only or not self.daily or bucket == "hour":
            return None
        return window.full_days

    def describe(self, window: Window, bucket: BucketExpr | None = None) -> dict[str, Any]:
        """For responses: where the figures came from (documented, not part of the contract)."""
        tables = [RAW_TABLE[self.raw]] if self.raw_only else [ROLLUP_TABLE[self.rollup], RAW_TABLE[self.raw]]
        if self.whole_days(window, bucket) is not None:
            tables.insert(0, ROLLUP_TABLE[DAILY[self.rollup][0]])
        return {"level": self.level, "tables": tables}


def plan_for(group_by: Sequence[str], filters: Filters) -> Plan:
    touched = set(group_by) | {name for name, _ in filters}
    levels = {DIMENSIONS[name].level for name in touched}
    subset = sum(CALL_BITS[name] for name in touched if name in CALL_BITS)
    distinct = any(name in CALL_BITS and len(values) > 1 and name not in group_by for name, values in filters)
    # The calls rollup counts distinct runs per single call dimension only: over two or
    # more, run counts come from the raw breakdown rows.
    distinct = distinct or subset.bit_count() > 1
    level: Literal["run", "call"] = "call" if "call" in levels else "run"
    daily = touched <= DAILY["calls_rollup" if level == "call" else "runs_rollup"][1]
    return Plan(level, "raw" in levels, subset, distinct, daily)


RUN_COUNTS: dict[str, str] = {
    "runs": "sum(toInt64(sign))",
    "successful_runs": "sum(toInt64(sign) * successful)",
    "accepted_runs": "sum(toInt64(sign) * accepted)",
    "rated_runs": "sum(toInt64(sign) * (outcome != ''))",
}
"""Per (group, run): the net count of current matching breakdown rows, and of those that are
successful / accepted / rated; the run counts in the group when it is positive."""


def needed_partials(metrics: Sequence[str], level: Literal["run", "call"]) -> list[str]:
    names: list[str] = []
    for metric in metrics:
        for partial in metric_partials(METRICS[metric], level):
            if partial not in names:
                names.append(partial)
    return names


class Params:
    """Collects bound parameters under generated names."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, prefix: str, value: Any, type_: str) -> str:
        name = f"{prefix}{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_}}}"


def _filter_sql(filters: Filters, params: Params) -> list[str]:
    return [
        f"{DIMENSIONS[name].column} IN {params.bind('f', list(values), 'Array(String)')}" for name, values in filters
    ]


def _bucket_sql(bucket: BucketExpr | None, column: str) -> str | None:
    """The bucket of a row by its time column: ``start_time`` (raw rows), ``hour`` or ``day``."""
    if bucket is None:
        return None
    if bucket == "hour" and column == "start_time":
        return f"toUnixTimestamp(toStartOfHour({column}))"
    return f"toUnixTimestamp(toStartOfDay({column}))" if bucket == "day" else f"toUnixTimestamp({column})"


def aggregate_query(
    database: str,
    plan: Plan,
    window: Window,
    group_by: Sequence[str],
    metrics: Sequence[str],
    filters: Filters,
    *,
    bucket: BucketExpr | None = None,
    keys: Sequence[tuple[str, ...]] | None = None,
    order: Sequence[tuple[str, bool]] = (),
    limit: int | None = None,
    nonempty_groups: bool = False,
    minimum: tuple[str, int] | None = None,
) -> tuple[str, dict[str, Any], list[str]]:
    """SQL, bound parameters and output column names (``g<i>`` dims, ``b`` bucket, metrics).

    ``keys`` restricts the groups to these group_by value tuples (top series of a
    timeseries). ``order`` is ``(metric or dimension name, descending)`` pairs.
    ``nonempty_groups`` drops groups with an empty dimension value; ``minimum`` is
    ``(partial, value)``: drop groups whose partial is below the value (outliers).
    """
    params = Params()
    params.values["subset"] = plan.subset
    groups = [f"g{i}" for i in range(len(group_by))] + (["b"] if bucket else [])
    partials = needed_partials(metrics, plan.level)
    if minimum is not None and minimum[0] not in partials:
        partials.append(PARTIALS[minimum[0]].name)
    if groups and "latency_count" not in partials:
        partials.append("latency_count")  # cheap; tells live groups from cancelled ones

    common_where = _filter_sql(filters, params)
    if keys is not None:
        columns = ", ".join(DIMENSIONS[name].column for name in group_by)
        tuple_type = ", ".join("String" for _ in group_by)
        key_values = [tuple(k) for k in keys]
        common_where.append(f"tuple({columns}) IN {params.bind('k', key_values, f'Array(Tuple({tuple_type}))')}")

    billing = [p for p in partials if p in BILLING_PARTIALS]
    partials = [p for p in partials if p not in BILLING_PARTIALS]
    billable = not ({*group_by, *(name for name, _ in filters)} & BILLING_UNSUPPORTED_DIMENSIONS)
    if not billable:
        billing = []  # billed metrics answer null at this cut (bills are matched per model and provider)
    counted = [p for p in partials if p in RUN_COUNTS] if plan.distinct_runs else []
    summed = [p for p in partials if p not in counted]
    sources = []
    if summed or not counted:
        sources.append(_merged(database, plan, window, group_by, bucket, summed, common_where, params))
    if counted:
        sources.append(_distinct_runs(database, window, group_by, bucket, counted, common_where, params))
    if billing:
        sources.append(_billed(database, window, group_by, bucket, billing, common_where, params))
    if len(sources) == 1:
        inner = sources[0]
    elif groups:
        inner = f"SELECT * FROM ({sources[0]}) AS s0" + "".join(
            f" FULL OUTER JOIN ({source}) AS s{i} USING ({', '.join(groups)})"
            for i, source in enumerate(sources[1:], 1)
        )
    else:
        inner = f"SELECT * FROM ({sources[0]}) AS s0" + "".join(
            f" CROSS JOIN ({source}) AS s{i}" for i, source in enumerate(sources[1:], 1)
        )

    metric_columns = [
        f"{'NULL' if not billable and set(METRICS[m].partials) & set(BILLING_PARTIALS) else METRICS[m].expr} AS m_{m}"
        for m in metrics
    ]
    select = ", ".join([*groups, *metric_columns])
    sql = f"SELECT {select} FROM (\n{inner}\n)"
    having = [f"g{i} != ''" for i in range(len(group_by))] if nonempty_groups else []
    if groups:
        # A group whose rows were all cancelled (e.g. a run first emitted before its root
        # span named its workflow) nets to zero everywhere: not a group any more. A live
        # group has runs, or at call level at least calls or tool executions.
        having.append(
            "(a_latency_count != 0"
            + (" OR a_runs != 0" if "runs" in partials else "")
            + (" OR a_billed_shares != 0)" if "billed_shares" in billing else ")")
        )
    if minimum is not None:
        having.append(f"a_{PARTIALS[minimum[0]].name} >= {params.bind('m', minimum[1], 'Int64')}")
    if having:
        sql += f" WHERE {' AND '.join(having)}"
    order_terms = []
    for name, descending in order:
        column = f"m_{name}" if name in METRICS else f"g{list(group_by).index(name)}"
        order_terms.append(f"{column} {'DESC' if descending else 'ASC'} NULLS LAST")
    order_terms.extend(f"{g} ASC" for g in groups if all(not t.startswith(f"{g} ") for t in order_terms))
    if order_terms:
        sql += f"\nORDER BY {', '.join(order_terms)}"
    if limit is not None:
        sql += f"\nLIMIT {params.bind('n', limit, 'UInt32')}"
    return sql, params.values, [*groups, *(f"m_{m}" for m in metrics)]


def _merged(
    database: str,
    plan: Plan,
    window: Window,
    group_by: Sequence[str],
    bucket: BucketExpr | None,
    partials: Sequence[str],
    common_where: Sequence[str],
    params: Params,
) -> str:
    """Partials per group: whole days from a daily rollup (when the plan allows), the other
    whole hours from the hourly rollup, the edges from raw rows; merged."""
    groups = [f"g{i}" for i in range(len(group_by))] + (["b"] if bucket else [])
    parts: list[str] = []
    hours = None if plan.raw_only else window.full_hours
    days = plan.whole_days(window, bucket)
    if days is not None:
        daily = DAILY[plan.rollup][0]
        where = [_time_range("day", days, params), *common_where]
        parts.append(_part(database, daily, ROLLUP_TABLE[daily], "day", group_by, bucket, partials, where, plan.subset))
    if hours is not None:
        ranges = [hours] if days is None else [r for r in ((hours[0], days[0]), (days[1], hours[1])) if r[0] < r[1]]
        if ranges:
            where = ["(" + " OR ".join(_time_range("hour", r, params) for r in ranges) + ")", *common_where]
            table = ROLLUP_TABLE[plan.rollup]
            parts.append(_part(database, plan.rollup, table, "hour", group_by, bucket, partials, where, plan.subset))
    raw_ranges = [(window.start_ns, window.end_ns)] if plan.raw_only else window.edges
    if raw_ranges:
        where = [_time_ranges(raw_ranges, params), *common_where]
        parts.append(_part(database, plan.raw, RAW_TABLE[plan.raw], "start_time", group_by, bucket, partials, where))
    merged = ", ".join([*groups, *(f"{PARTIALS[p].outer.format('p_' + p)} AS a_{_alias(p)}" for p in partials)])
    group_clause = f" GROUP BY {', '.join(groups)}" if groups else ""
    union = "\nUNION ALL\n".join(parts)
    return f"SELECT {merged} FROM (\n{union}\n){group_clause}"


def _distinct_runs(
    database: str,
    window: Window,
    group_by: Sequence[str],
    bucket: BucketExpr | None,
    partials: Sequence[str],
    common_where: Sequence[str],
    params: Params,
) -> str:
    """Exact distinct run counts per group from the signed raw breakdown rows."""
    groups = [f"g{i}" for i in range(len(group_by))] + (["b"] if bucket else [])
    columns = [f"{DIMENSIONS[name].column} AS g{i}" for i, name in enumerate(group_by)]
    bucket_sql = _bucket_sql(bucket, "start_time")
    if bucket_sql:
        columns.append(f"{bucket_sql} AS b")
    columns.extend(f"{RUN_COUNTS[p]} AS n_{p}" for p in partials)
    where = [_time_ranges([(window.start_ns, window.end_ns)], params), *common_where]
    per_run = (
        f"SELECT {', '.join(columns)} FROM {database}.run_calls WHERE {' AND '.join(where)} "
        f"GROUP BY {', '.join([*groups, 'run_id'])}"
    )
    counts = ", ".join([*groups, *(f"toInt64(countIf(n_{p} > 0)) AS a_{p}" for p in partials)])
    group_clause = f" GROUP BY {', '.join(groups)}" if groups else ""
    return f"SELECT {counts} FROM ({per_run}){group_clause}"


def _billed(
    database: str,
    window: Window,
    group_by: Sequence[str],
    bucket: BucketExpr | None,
    partials: Sequence[str],
    common_where: Sequence[str],
    params: Params,
) -> str:
    """Billed-money partials per group from the current true-up shares of runs that started in
    the window (``billing_trueup`` carries the run's dimensions, model and provider)."""
    groups = [f"g{i}" for i in range(len(group_by))] + (["b"] if bucket else [])
    columns = [f"{DIMENSIONS[name].column} AS g{i}" for i, name in enumerate(group_by)]
    if bucket:
        unit = "toStartOfHour" if bucket == "hour" else "toStartOfDay"
        columns.append(f"toUnixTimestamp({unit}(run_start)) AS b")
    columns.extend(f"{BILLING_PARTIALS[p]} AS a_{p}" for p in partials)
    start, end = params.bind("t", window.start_ns, "Int64"), params.bind("t", window.end_ns, "Int64")
    where = [
        f"(day, version) IN (SELECT day, max(version) FROM {database}.reconciliation_days GROUP BY day)",
        f"run_start >= fromUnixTimestamp64Nano({start}) AND run_start < fromUnixTimestamp64Nano({end})",
        *common_where,
    ]
    group_clause = f" GROUP BY {', '.join(groups)}" if groups else ""
    return f"SELECT {', '.join(columns)} FROM {database}.billing_trueup WHERE {' AND '.join(where)}{group_clause}"


def _time_range(column: str, bounds: tuple[int, int], params: Params) -> str:
    """``column`` (a rollup's hour or day) in [first, end), unix seconds."""
    first = params.bind("h", bounds[0], "Int64")
    end = params.bind("h", bounds[1], "Int64")
    return f"({column} >= toDateTime({first}, 'UTC') AND {column} < toDateTime({end}, 'UTC'))"


def _time_ranges(ranges: Sequence[tuple[int, int]], params: Params) -> str:
    return (
        "("
        + " OR ".join(
            f"(start_time >= fromUnixTimestamp64Nano({params.bind('t', a, 'Int64')}) "
            f"AND start_time < fromUnixTimestamp64Nano({params.bind('t', b, 'Int64')}))"
            for a, b in ranges
        )
        + ")"
    )


def _alias(partial: str) -> str:
    # Both levels' quantile states answer to the one name Metric.expr uses.
    return "latency_q" if partial.startswith("latency_q_") else partial


def _part(
    database: str,
    source: Source,
    table: str,
    time_column: str,
    group_by: Sequence[str],
    bucket: BucketExpr | None,
    partials: Sequence[str],
    where: Sequence[str],
    subset: int = 0,
) -> str:
    """One source's partials: rollup rows as they are, raw rows (``start_time``) grouped."""
    columns = [f"{DIMENSIONS[name].column} AS g{i}" for i, name in enumerate(group_by)]
    bucket_sql = _bucket_sql(bucket, time_column)
    if bucket_sql:
        columns.append(f"{bucket_sql} AS b")
    dimension = next((name for name, bit in CALL_BITS.items() if bit == subset), "")
    for p in partials:
        expression = PARTIALS[p].expression(source)
        if "@dim@" in expression:
            # Names come from the vocabulary's fixed list, never from the request.
            expression = expression.replace("@dim@", dimension)
        columns.append(f"{expression} AS p_{p}")
    sql = f"SELECT {', '.join(columns)} FROM {database}.{table} WHERE {' AND '.join(where)}"
    if time_column == "start_time":
        groups = [f"g{i}" for i in range(len(group_by))] + (["b"] if bucket_sql else [])
        if groups:
            sql += f" GROUP BY {', '.join(groups)}"
    return sql
