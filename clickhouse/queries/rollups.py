"""Aggregate queries over the rollups and the raw run rows, and the statements that rebuild them.

Shape of an aggregate query (``aggregate_query``)::

    SELECT g0, ..., <Metric.expr over the merged partials a_*> [, <the same over all groups>]
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

With ``totals``, every row also carries the figures of the whole table: each metric's
expression over window aggregates of every group's partials (``sum(a_cost_usd) OVER ()``,
quantile states kept per group and merged again), and the number of groups
(``count() OVER ()``), all taken before ``LIMIT``. So a table cut by its limit says so and
its totals still cover every group, from the same scan: a window over the group rows costs
a fraction of a millisecond, where a second aggregation level cost about two.

One case needs more than sums: distinct runs at call level when a call-dimension filter
has several values on a dimension not grouped by (``filter.model=a&filter.model=b``
grouped by tenant: a run calling both models is one run). The run counts then come from
the raw breakdown rows, per (group, run), joined to the other partials by group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from otelspend.clickhouse.queries import billing
from otelspend.clickhouse.queries.rollup_plan import DAILY, RAW_TABLE, ROLLUP_TABLE, BucketExpr, Plan, Window
from otelspend.clickhouse.queries.sql import Fragment, Params, Query, render, time_range
from otelspend.clickhouse.queries.vocabulary import (
    ALLOCATION_DAILY_DIMENSIONS,
    ALLOCATION_HOURLY_DIMENSIONS,
    FAMILY_DIMENSIONS,
    METRICS,
    PARTIALS,
    Family,
    Filters,
    Source,
    column_sql,
    metric_partials,
)

GROUP_COUNT = "n_groups"
"""Output column of a query with ``totals``: the number of groups before ``LIMIT``."""

RUN_COUNTS: dict[str, str] = {
    "runs": "sum(toInt64(sign))",
    "successful_runs": "sum(toInt64(sign) * successful)",
    "accepted_runs": "sum(toInt64(sign) * accepted)",
    "rated_runs": "sum(toInt64(sign) * (outcome != ''))",
}
"""Per (group, run): the net count of current matching breakdown rows, and of those that are
successful / accepted / rated; the run counts in the group when it is positive."""


def needed_partials(metrics: Sequence[str], level: Literal["run", "call"]) -> list[str]:
    """The partials the metrics need at this level, each once, in order."""
    names: list[str] = []
    for metric in metrics:
        for partial in metric_partials(METRICS[metric], level):
            if partial not in names:
                names.append(partial)
    return names


@dataclass(frozen=True)
class _Shape:
    """The grouping every part of one query shares."""

    group_by: tuple[str, ...]
    bucket: BucketExpr | None
    totals: bool

    @property
    def groups(self) -> list[str]:
        """Output names of the group keys: ``g<i>`` per dimension, ``b`` the bucket."""
        return [f"g{i}" for i in range(len(self.group_by))] + (["b"] if self.bucket else [])

    def group_clause(self) -> str:
        """`` GROUP BY`` the keys (empty without any)."""
        return f" GROUP BY {', '.join(self.groups)}" if self.groups else ""

    def group_aggregate(self, partial: str) -> str:
        """The aggregate merging a partial's source rows into ``a_<partial>`` per group (a state
        when totals merge it again)."""
        p = PARTIALS[partial]
        template = p.group_state if self.totals and p.group_state else p.outer
        return f"{render(template, value='p_' + partial)} AS a_{_alias(partial)}"

    def metric(self, name: str, partials: Sequence[str]) -> str:
        """A metric's figure for the group: its expression over the group's partials."""
        values: dict[str, str] = {}
        for p in partials:
            column = f"a_{_alias(p)}"
            kept = self.totals and PARTIALS[p].group_state
            values[_alias(p)] = Fragment(f"finalizeAggregation({column})") if kept else column
        return render(METRICS[name].expr, **values)

    def total(self, name: str, partials: Sequence[str]) -> str:
        """A metric's figure over every group: its expression over window aggregates of the
        groups' partials (taken before LIMIT)."""
        values = {
            _alias(p): Fragment(f"({render(PARTIALS[p].outer, value=f'a_{_alias(p)}')} OVER ())") for p in partials
        }
        return render(METRICS[name].expr, **values)


@dataclass(frozen=True)
class AggregateOptions:
    """How an aggregate's answer is bucketed, narrowed, ordered, cut and totalled."""

    bucket: BucketExpr | None = None
    """Also group by time bucket (``b``)."""
    keys: Sequence[tuple[str, ...]] | None = None
    """Only these group_by value tuples (the top series of a timeseries)."""
    order: Sequence[tuple[str, bool]] = ()
    """``(metric or dimension name, descending)`` pairs."""
    limit: int | None = None
    nonempty_groups: bool = False
    """Drop groups with an empty dimension value."""
    minimum: tuple[str, int] | None = None
    """``(partial, value)``: drop groups whose partial is below the value (outliers)."""
    totals: bool = False
    """With group_by, without bucket: add to every row the number of groups before ``limit``
    (``n_groups``) and each metric over all of them (``t_<metric>``)."""


def aggregate_query(
    database: str,
    plan: Plan,
    window: Window,
    group_by: Sequence[str],
    metrics: Sequence[str],
    filters: Filters,
    options: AggregateOptions | None = None,
) -> tuple[str, dict[str, Any], list[str]]:
    """SQL, bound parameters and output column names (``g<i>`` dims, ``b`` bucket, metrics,
    then the totals columns when ``options.totals``)."""
    options = options or AggregateOptions()
    bucket, keys, minimum, totals = options.bucket, options.keys, options.minimum, options.totals
    if totals and (not group_by or bucket is not None):
        raise ValueError("totals need group_by and no bucket")
    shape = _Shape(tuple(group_by), bucket, totals)
    params = Params()
    params.values["subset"] = plan.subset
    partials = needed_partials(metrics, plan.level)
    if minimum is not None and minimum[0] not in partials:
        partials.append(PARTIALS[minimum[0]].name)
    unavailable = set(unavailable_metrics(metrics, group_by, filters, plan.level))
    partials = _family_partials(partials, shape, filters)
    inner = _sources(database, plan, window, shape, partials, filters, keys, params)

    groups = shape.groups
    metric_columns = [f"{'NULL' if m in unavailable else shape.metric(m, partials)} AS m_{m}" for m in metrics]
    extra = []
    if totals:
        extra = [
            f"count() OVER () AS {GROUP_COUNT}",
            *(f"{'NULL' if m in unavailable else shape.total(m, partials)} AS t_{m}" for m in metrics),
        ]
    sql = f"SELECT {', '.join([*groups, *metric_columns, *extra])} FROM (\n{inner}\n)"
    having = [f"g{i} != ''" for i in range(len(group_by))] if options.nonempty_groups else []
    if groups:
        # A group whose rows were all cancelled (e.g. a run first emitted before its root
        # span named its workflow) nets to zero everywhere: not a group any more. A live
        # group has runs, or at call level at least calls or tool executions, or allocated
        # money or revenue rows.
        alive = [f"a_{p} != 0" for p in LIVE_GROUP_PARTIALS if p in partials]
        having.append("(" + " OR ".join(alive) + ")")
    if minimum is not None:
        having.append(f"a_{PARTIALS[minimum[0]].name} >= {params.bind('m', minimum[1], 'Int64')}")
    if having:
        sql += f" WHERE {' AND '.join(having)}"
    order_terms = _order_terms(group_by, groups, options.order)
    if order_terms:
        sql += f"\nORDER BY {', '.join(order_terms)}"
    if options.limit is not None:
        sql += f"\nLIMIT {params.bind('n', options.limit, 'UInt32')}"
    if "{subset:UInt8}" not in sql:
        del params.values["subset"]  # only raw breakdown run counts read it
    totals_columns = [GROUP_COUNT, *(f"t_{m}" for m in metrics)] if totals else []
    return sql, params.values, [*groups, *(f"m_{m}" for m in metrics), *totals_columns]


LIVE_GROUP_PARTIALS = ("latency_count", "runs", "billed_shares", "allocation_rows", "revenue_days")
"""Partials any of which, non-zero, makes a group live (calls or tool executions, runs, billed money,
allocated money, revenue)."""
_JOINED: tuple[Family, ...] = ("billing", "allocation", "revenue")


def _nulled_families(group_by: Sequence[str], filters: Filters) -> set[Family]:
    touched = {*group_by, *(name for name, _ in filters)}
    return {family for family in _JOINED if not touched <= FAMILY_DIMENSIONS[family]}


def _family_partials(partials: list[str], shape: _Shape, filters: Filters) -> list[str]:
    """The partials to read: allocated money and revenue come from their own tables, joined by
    group, and a cut their tables do not hold (a model, for allocations) leaves their metrics null,
    not wrong; with groups, each family read adds the cheap partial that tells its live groups
    from cancelled ones."""
    nulled = _nulled_families(shape.group_by, filters)
    kept = [p for p in partials if PARTIALS[p].family not in nulled]
    families = {PARTIALS[p].family for p in kept}
    if shape.groups:
        for family, presence in _PRESENCE.items():
            if (family in families or (family == "ledger" and families <= {"ledger"})) and presence not in kept:
                kept.append(presence)
    return kept


def unavailable_metrics(
    metrics: Sequence[str], group_by: Sequence[str], filters: Filters, level: Literal["run", "call"]
) -> list[str]:
    """The metrics a cut leaves null: those needing allocated money or revenue grouped or filtered
    by a dimension their tables do not hold."""
    nulled = _nulled_families(group_by, filters)
    return [m for m in metrics if any(PARTIALS[p].family in nulled for p in metric_partials(METRICS[m], level))]


_PRESENCE: dict[Family, str] = {
    "ledger": "latency_count",
    "billing": "billed_shares",
    "allocation": "allocation_rows",
    "revenue": "revenue_days",
}
"""Per family, the partial that is non-zero in every live group (a cancelled one nets to zero)."""


def _filter_sql(filters: Filters, params: Params, family: Family = "ledger") -> list[str]:
    return [
        f"{column_sql(name, family)} IN {params.bind('f', list(values), 'Array(String)')}" for name, values in filters
    ]


def _where(
    filters: Filters,
    keys: Sequence[tuple[str, ...]] | None,
    group_by: Sequence[str],
    params: Params,
    family: Family,
) -> list[str]:
    """A family's filter terms, and its group keys when the groups are restricted."""
    terms = _filter_sql(filters, params, family)
    if keys is not None:
        terms.append(_keys_sql(group_by, keys, params, family))
    return terms


def _keys_sql(
    group_by: Sequence[str], keys: Sequence[tuple[str, ...]], params: Params, family: Family = "ledger"
) -> str:
    columns = ", ".join(column_sql(name, family) for name in group_by)
    tuple_type = ", ".join("String" for _ in group_by)
    return f"tuple({columns}) IN {params.bind('k', [tuple(k) for k in keys], f'Array(Tuple({tuple_type}))')}"


def _order_terms(group_by: Sequence[str], groups: Sequence[str], order: Sequence[tuple[str, bool]]) -> list[str]:
    terms = []
    for name, descending in order:
        column = f"m_{name}" if name in METRICS else f"g{list(group_by).index(name)}"
        terms.append(f"{column} {'DESC' if descending else 'ASC'} NULLS LAST")
    terms.extend(f"{g} ASC" for g in groups if all(not t.startswith(f"{g} ") for t in terms))
    return terms


def _sources(
    database: str,
    plan: Plan,
    window: Window,
    shape: _Shape,
    partials: Sequence[str],
    filters: Filters,
    keys: Sequence[tuple[str, ...]] | None,
    params: Params,
) -> str:
    """The merged partials per group: the ledger's (summed partials, and exact distinct run
    counts when the plan needs them), allocated money's and revenue's, joined by group."""
    ledger = [p for p in partials if PARTIALS[p].family == "ledger"]
    counted = [p for p in ledger if p in RUN_COUNTS] if plan.distinct_runs else []
    summed = [p for p in ledger if p not in counted]
    sources = []
    if summed or (not counted and ledger):
        where = _where(filters, keys, shape.group_by, params, "ledger")
        sources.append(_merged(database, plan, window, shape, summed, where, params))
    if counted:
        where = _where(filters, keys, shape.group_by, params, "ledger")
        sources.append(_distinct_runs(database, window, shape, counted, where, params))
    allocated = [p for p in partials if PARTIALS[p].family == "allocation"]
    if allocated:
        where = _where(filters, keys, shape.group_by, params, "allocation")
        touched = {*shape.group_by, *(name for name, _ in filters)}
        sources.append(_allocated(database, window, shape, allocated, where, params, touched))
    billed = [p for p in partials if PARTIALS[p].family == "billing"]
    if billed:
        where = _where(filters, keys, shape.group_by, params, "billing")
        sources.append(_billed(database, window, shape, billed, where, params))
    revenue = [p for p in partials if PARTIALS[p].family == "revenue"]
    if revenue:
        where = _where(filters, keys, shape.group_by, params, "revenue")
        sources.append(_revenue(database, window, shape, revenue, where, params))
    if len(sources) == 1:
        return sources[0]
    joined = f"SELECT * FROM ({sources[0]}) AS s0"
    for index, source in enumerate(sources[1:], 1):
        if shape.groups:
            joined += f" FULL OUTER JOIN ({source}) AS s{index} USING ({', '.join(shape.groups)})"
        else:
            joined += f" CROSS JOIN ({source}) AS s{index}"
    return joined


def _joined_columns(shape: _Shape, family: Family, time_sql: str, partials: Sequence[str]) -> list[str]:
    """The select list of a source joined to the ledger's groups: its group columns, the bucket of
    ``time_sql`` and its partials (``a_<name>``)."""
    columns = [f"{column_sql(name, family)} AS g{i}" for i, name in enumerate(shape.group_by)]
    if shape.bucket:
        unit = "toStartOfHour" if shape.bucket == "hour" else "toStartOfDay"
        columns.append(f"toUnixTimestamp({unit}({time_sql})) AS b")
    columns.extend(f"{PARTIALS[p].joined_raw} AS a_{p}" for p in partials)
    return columns


_BILLED = """
SELECT {columns} FROM {db}.billing_trueup
WHERE {current}
  AND run_start >= fromUnixTimestamp64Nano({start}) AND run_start < fromUnixTimestamp64Nano({end}){filters}
{group_clause}
"""


def _billed(
    database: str,
    window: Window,
    shape: _Shape,
    partials: Sequence[str],
    where: Sequence[str],
    params: Params,
) -> str:
    """Billed-money partials per group from the current true-up shares of the runs that started
    in the window (``billing_trueup`` carries the run's dimensions, model and provider)."""
    columns = _joined_columns(shape, "billing", "run_start", partials)
    return render(
        _BILLED,
        db=database,
        columns=Fragment(", ".join(columns)),
        current=billing.current(database),
        start=Fragment(params.bind("t", window.start_ns, "Int64")),
        end=Fragment(params.bind("t", window.end_ns, "Int64")),
        filters=Fragment("".join(f" AND {term}" for term in where)),
        group_clause=Fragment(shape.group_clause()),
    )


def _allocated(
    database: str,
    window: Window,
    shape: _Shape,
    partials: Sequence[str],
    where: Sequence[str],
    params: Params,
    touched: set[str],
) -> str:
    """Allocated-money partials per group: whole days from ``rollup_alloc_daily`` when every
    dimension touched is its, the other whole hours from ``rollup_alloc_hourly`` when every one is
    its, the rest (edge hours, or everything for a raw dimension) from the signed ``allocations``
    rows; merged."""
    hourly_ok = touched <= ALLOCATION_HOURLY_DIMENSIONS
    hours = window.full_hours if hourly_ok else None
    days = window.full_days if hourly_ok and touched <= ALLOCATION_DAILY_DIMENSIONS and shape.bucket != "hour" else None
    raw_ranges = window.edges if hourly_ok else [(window.start_ns, window.end_ns)]
    tiers = _Tiers(database, None, "alloc_daily", "alloc_hourly", "allocations")
    return _tiered(tiers, days, hours, raw_ranges, shape, partials, where, params)


def _revenue(
    database: str,
    window: Window,
    shape: _Shape,
    partials: Sequence[str],
    where: Sequence[str],
    params: Params,
) -> str:
    """Revenue partials per group over the days whose start is in the window (``revenue FINAL``:
    the latest import of a day)."""
    columns = _joined_columns(shape, "revenue", "toDateTime(day, 'UTC')", partials)
    clause = [
        f"toDateTime(day, 'UTC') >= toDateTime({params.bind('t', window.start_ns // 10**9, 'Int64')}, 'UTC')",
        f"toDateTime(day, 'UTC') < toDateTime({params.bind('t', -(-window.end_ns // 10**9), 'Int64')}, 'UTC')",
        *where,
    ]
    return (
        f"SELECT {', '.join(columns)} FROM {database}.revenue FINAL WHERE {' AND '.join(clause)}{shape.group_clause()}"
    )


def _merged(
    database: str,
    plan: Plan,
    window: Window,
    shape: _Shape,
    partials: Sequence[str],
    common_where: Sequence[str],
    params: Params,
) -> str:
    """Partials per group: whole days from a daily rollup (when the plan allows), the other
    whole hours from the hourly rollup, the edges from raw rows; merged."""
    hours = None if plan.raw_only else window.full_hours
    days = plan.whole_days(window, shape.bucket)
    raw_ranges = [(window.start_ns, window.end_ns)] if plan.raw_only else window.edges
    tiers = _Tiers(database, plan, DAILY[plan.rollup][0], plan.rollup, plan.raw)
    return _tiered(tiers, days, hours, raw_ranges, shape, partials, common_where, params)


@dataclass(frozen=True)
class _Tiers:
    """The three sources of partials for one family: daily rollup, hourly rollup, raw rows."""

    database: str
    plan: Plan | None
    daily: Source
    hourly: Source
    raw: Source


def _tiered(
    tiers: _Tiers,
    days: tuple[int, int] | None,
    hours: tuple[int, int] | None,
    raw_ranges: Sequence[tuple[int, int]],
    shape: _Shape,
    partials: Sequence[str],
    where: Sequence[str],
    params: Params,
) -> str:
    """Partials per group: ``days`` from the daily rollup, the whole ``hours`` outside them from
    the hourly rollup, ``raw_ranges`` from raw rows; merged."""
    parts: list[str] = []
    if days is not None:
        clause = [_rollup_range("day", days, params), *where]
        parts.append(_part(tiers.database, tiers.plan, tiers.daily, "day", shape, partials, clause))
    if hours is not None:
        ranges = [hours] if days is None else [r for r in ((hours[0], days[0]), (days[1], hours[1])) if r[0] < r[1]]
        if ranges:
            clause = ["(" + " OR ".join(_rollup_range("hour", r, params) for r in ranges) + ")", *where]
            parts.append(_part(tiers.database, tiers.plan, tiers.hourly, "hour", shape, partials, clause))
    if raw_ranges:
        clause = [_raw_ranges(raw_ranges, params), *where]
        parts.append(_part(tiers.database, tiers.plan, tiers.raw, "start_time", shape, partials, clause))
    merged = [*shape.groups, *(shape.group_aggregate(p) for p in partials)]
    union = "\nUNION ALL\n".join(parts)
    return f"SELECT {', '.join(merged)} FROM (\n{union}\n){shape.group_clause()}"


def _distinct_runs(
    database: str,
    window: Window,
    shape: _Shape,
    partials: Sequence[str],
    common_where: Sequence[str],
    params: Params,
) -> str:
    """Exact distinct run counts per group from the signed raw breakdown rows (totals add up
    the groups' counts: a run counts once in every group it is in)."""
    groups = shape.groups
    columns = [f"{column_sql(name, 'ledger')} AS g{i}" for i, name in enumerate(shape.group_by)]
    bucket_sql = _bucket_sql(shape.bucket, "start_time")
    if bucket_sql:
        columns.append(f"{bucket_sql} AS b")
    columns.extend(f"{RUN_COUNTS[p]} AS n_{p}" for p in partials)
    where = [_raw_ranges([(window.start_ns, window.end_ns)], params), *common_where]
    per_run = (
        f"SELECT {', '.join(columns)} FROM {database}.run_calls WHERE {' AND '.join(where)} "
        f"GROUP BY {', '.join([*groups, 'run_id'])}"
    )
    counts = [*groups, *(f"toInt64(countIf(n_{p} > 0)) AS a_{p}" for p in partials)]
    return f"SELECT {', '.join(counts)} FROM ({per_run}){shape.group_clause()}"


def _bucket_sql(bucket: BucketExpr | None, column: str) -> str | None:
    """The bucket of a row by its time column: ``start_time`` (raw rows), ``hour`` or ``day``."""
    if bucket is None:
        return None
    if bucket == "hour" and column == "start_time":
        return f"toUnixTimestamp(toStartOfHour({column}))"
    return f"toUnixTimestamp(toStartOfDay({column}))" if bucket == "day" else f"toUnixTimestamp({column})"


def _rollup_range(column: str, bounds: tuple[int, int], params: Params) -> str:
    """``column`` (a rollup's hour or day) in [first, end), unix seconds."""
    first = params.bind("h", bounds[0], "Int64")
    end = params.bind("h", bounds[1], "Int64")
    return f"({column} >= toDateTime({first}, 'UTC') AND {column} < toDateTime({end}, 'UTC'))"


def _raw_ranges(ranges: Sequence[tuple[int, int]], params: Params) -> str:
    return "(" + " OR ".join(time_range("start_time", params, a, b) for a, b in ranges) + ")"


def _alias(partial: str) -> str:
    # Both levels' quantile states answer to the one name Metric.expr uses.
    return "latency_q" if partial.startswith("latency_q_") else partial


def _part(
    database: str,
    plan: Plan | None,
    source: Source,
    time_column: str,
    shape: _Shape,
    partials: Sequence[str],
    where: Sequence[str],
) -> str:
    """One source's partials: rollup rows as they are, raw rows (``start_time``) grouped."""
    family: Family = "allocation" if source in ("alloc_hourly", "alloc_daily", "allocations") else "ledger"
    columns = [f"{column_sql(name, family)} AS g{i}" for i, name in enumerate(shape.group_by)]
    bucket_sql = _bucket_sql(shape.bucket, time_column)
    if bucket_sql:
        columns.append(f"{bucket_sql} AS b")
    # Names come from the vocabulary's fixed list, never from the request.
    names = {"call_dimension": plan.call_dimension} if plan is not None and plan.call_dimension else {}
    columns.extend(f"{render(PARTIALS[p].expression(source), **names)} AS p_{p}" for p in partials)
    table = ROLLUP_TABLE.get(source) or RAW_TABLE[source]
    sql = f"SELECT {', '.join(columns)} FROM {database}.{table} WHERE {' AND '.join(where)}"
    if time_column == "start_time":
        groups = [f"g{i}" for i in range(len(shape.group_by))] + (["b"] if bucket_sql else [])
        if groups:
            sql += f" GROUP BY {', '.join(groups)}"
    return sql


# -- rebuild --------------------------------------------------------------------------------------

ROLLUPS = (
    (("rollup_runs_hourly", "hour"), ("rollup_runs_daily", "day"), "runs", "runs_feed"),
    (("rollup_calls_hourly", "hour"), ("rollup_calls_daily", "day"), "run_calls", "run_calls_feed"),
)
"""Each rollup pair: (hourly table, its time column), (daily table, its column), the run-level
table feeding them and the Null-engine feed their materialized views read."""

_DELETE_WINDOW = (
    "ALTER TABLE {db}.{table} DELETE WHERE {column} >= toDateTime({start:Int64}) "
    "AND {column} < toDateTime({end:Int64}) SETTINGS mutations_sync = 2"
)
_REFEED_WINDOW = (
    "INSERT INTO {db}.{feed} SELECT * FROM {db}.{source} "
    "WHERE start_time >= toDateTime64({start:Int64}, 9) AND start_time < toDateTime64({end:Int64}, 9)"
)


def rebuild_statements(database: str, start_s: int, end_s: int) -> list[Query]:
    """Statements recomputing every rollup row in ``[start_s, end_s)`` (unix seconds, whole
    days): delete the window's hourly and daily rows, then feed the stored run rows through
    the materialized views again, in this order."""
    parameters: dict[str, Any] = {"start": start_s, "end": end_s}
    statements = []
    for hourly, daily, source, feed in ROLLUPS:
        for table, column in (hourly, daily):
            statements.append(Query(render(_DELETE_WINDOW, db=database, table=table, column=column), parameters))
        statements.append(Query(render(_REFEED_WINDOW, db=database, feed=feed, source=source), parameters))
    return statements


__all__ = ["GROUP_COUNT", "Plan", "Window", "aggregate_query", "needed_partials", "rebuild_statements"]
