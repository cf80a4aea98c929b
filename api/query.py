"""The read side's query functions: plain dicts in, plain dicts out, no FastAPI.

Used by the REST routes and importable by anything else that reads the ledger (the web
dashboard)::

    from otelspend.api import query
    from otelspend.api.requests import rollup_request

    request = rollup_request(group_by=["workflow_type"], metrics=["cost_usd", "runs"], now_ns=time.time_ns())
    result = query.rollup(store, request)   # {"group_by": [...], "from": ..., "rows": [...], "totals": {...}}

The SQL comes from ``otelspend.clickhouse.queries.rollups``; this module shapes the answers
(``otelspend.api.requests`` validated the requests). Money is returned as decimal strings
with 15 decimals (exact femto-USD, e.g. ``"0.004785000000000"``), counts as integers, rates
and averages as floats, null where a ratio has no denominator.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from otelspend.api.requests import RollupRequest, TimeseriesRequest, rollup_request
from otelspend.api.vocabulary import METRICS
from otelspend.api.window import NS, rfc3339
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries.rollup_plan import plan_for
from otelspend.clickhouse.queries.rollups import AggregateOptions, aggregate_query, unavailable_metrics


def usd(value: Decimal | int | None) -> str | None:
    """A money value as a plain decimal string with 15 decimals (never exponent notation)."""
    if value is None:
        return None
    return f"{Decimal(value).quantize(Decimal('1e-15')):f}"


def usd_per(amount: Decimal, count: int) -> str | None:
    """Money divided by a count, truncated toward zero to 1e-15 USD (as ClickHouse divides
    ``Decimal(38, 15)`` by an integer); None for a count of zero."""
    if count <= 0:
        return None
    femto = int(Decimal(amount).scaleb(15))
    quotient = abs(femto) // count
    return usd(Decimal(quotient if femto >= 0 else -quotient).scaleb(-15))


def metric_value(name: str, value: Any) -> Any:
    """Serialise one metric value by its kind (usd -> string, int -> int, float -> float)."""
    if value is None:
        return None
    kind = METRICS[name].kind
    if kind == "usd":
        return usd(value)
    if kind == "int":
        return int(value)
    if kind == "str":
        return str(value)
    return float(value)


def rollup(store: Store, request: RollupRequest) -> dict[str, Any]:
    """Metrics per group (``request.group_by``) over runs that started in the window.

    Returns ``{"group_by", "metrics", "from", "to", "source", "rows": [{dim: value, ..., metric: value}],
    "totals", "total_groups", "truncated"}``: ``rows`` holds the first ``limit`` groups;
    ``totals`` every metric over all ``total_groups`` groups (computed in the same query,
    exact), so a table cut by ``limit`` (``truncated``) still adds up.
    """
    plan = plan_for(request.group_by, request.filters)
    metrics = request.computed_metrics
    grouped = bool(request.group_by)
    sql, params, _ = aggregate_query(
        store.database,
        plan,
        request.window,
        request.group_by,
        metrics,
        request.filters,
        AggregateOptions(order=[(request.order_by, request.descending)], limit=request.limit, totals=grouped),
    )
    rows = store.rows(sql, params)
    dims, width = len(request.group_by), len(request.group_by) + len(metrics)
    out = [dict(zip(request.group_by, row[:dims], strict=True)) | _metrics(metrics, row[dims:width]) for row in rows]
    if not grouped:  # the one row is the whole window
        totals, total_groups = {name: out[0][name] for name in metrics}, len(out)
    elif rows:  # every row carries n_groups and the totals, taken before LIMIT
        totals, total_groups = _metrics(metrics, rows[0][width + 1 :]), int(rows[0][width])
    else:  # no group at all: the figures of nothing, as the ungrouped query gives them
        totals, total_groups = _empty_totals(store, request, metrics), 0
    return {
        "group_by": list(request.group_by),
        "metrics": list(metrics),
        **request.window.describe(),
        "filters": {name: list(values) for name, values in request.filters},
        "order_by": request.order_by,
        "order": "desc" if request.descending else "asc",
        "source": plan.describe(request.window),
        "rows": out,
        "totals": totals,
        "total_groups": total_groups,
        "truncated": total_groups > len(out),
    }


def _empty_totals(store: Store, request: RollupRequest, metrics: Sequence[str]) -> dict[str, Any]:
    """Totals of a table without groups: zero sums and null ratios, as the ungrouped query has them."""
    plan = plan_for(request.group_by, request.filters)
    sql, params, _ = aggregate_query(store.database, plan, request.window, (), metrics, request.filters)
    found = _metrics(metrics, store.rows(sql, params)[0])
    for name in unavailable_metrics(metrics, request.group_by, request.filters, plan.level):
        found[name] = None  # null at this cut, as every group's figure would be
    return found


def _metrics(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return {name: metric_value(name, value) for name, value in zip(names, values, strict=True)}


def timeseries(store: Store, request: TimeseriesRequest) -> dict[str, Any]:
    """The same metrics per time bucket (run start hour or day, UTC).

    With ``group_by``, the ``limit`` groups that rank first by ``order_by`` over the whole
    window each get a series; ``total_groups`` says how many groups the window holds and
    ``truncated`` whether some got no series (``GET /v1/rollups`` gives their totals).
    Buckets without runs are absent from ``points``; ``buckets`` lists every bucket start of
    the window so a client can fill gaps. The first and last buckets cover only their part
    of ``[from, to)``.
    """
    plan = plan_for(request.group_by, request.filters)
    keys: list[tuple[str, ...]] | None = None
    table: dict[str, Any] = {"total_groups": 1, "truncated": False}
    if request.group_by:
        top = rollup(
            store,
            RollupRequest(
                request.window,
                request.group_by,
                (request.order_by,) if request.order_by in METRICS else ("runs",),
                request.filters,
                request.order_by,
                request.descending,
                request.limit,
            ),
        )
        keys = [tuple(row[d] for d in request.group_by) for row in top["rows"]]
        table = {"total_groups": top["total_groups"], "truncated": top["truncated"]}
    series: list[dict[str, Any]] = []
    if keys is None or keys:
        sql, params, _ = aggregate_query(
            store.database,
            plan,
            request.window,
            request.group_by,
            request.metrics,
            request.filters,
            AggregateOptions(bucket=request.bucket, keys=keys),
        )
        series = _series(store.rows(sql, params), request, keys)
    return {
        "group_by": list(request.group_by),
        "metrics": list(request.metrics),
        "bucket": request.bucket,
        **request.window.describe(),
        "filters": {name: list(values) for name, values in request.filters},
        "source": plan.describe(request.window, request.bucket),
        "buckets": [rfc3339(b) for b in request.buckets()],
        "series": series,
        **table,
    }


def _series(
    rows: Sequence[Sequence[Any]], request: TimeseriesRequest, keys: list[tuple[str, ...]] | None
) -> list[dict[str, Any]]:
    """One series per group key (in ``keys`` order; one ungrouped series without), its points
    in bucket order: the rows are (group values, bucket, metric values)."""
    dims = len(request.group_by)
    by_key: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple(row[:dims])
        point: dict[str, Any] = {"t": rfc3339(int(row[dims]) * NS)}
        for name, value in zip(request.metrics, row[dims + 1 :], strict=True):
            point[name] = metric_value(name, value)
        by_key.setdefault(key, []).append(point)
    ordered = keys if keys is not None else [()]
    return [{**dict(zip(request.group_by, key, strict=True)), "points": by_key.get(key, [])} for key in ordered]


__all__ = ["rollup", "rollup_request", "timeseries", "usd"]
