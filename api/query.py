"""The read side's query functions: plain dicts in, plain dicts out, no FastAPI.

Used by the REST routes and importable by anything else that reads the ledger (the web
dashboard)::

    from otelspend.api import query
    from otelspend.api.requests import rollup_request

    request = rollup_request(group_by=["workflow_type"], metrics=["cost_usd", "runs"], now_ns=time.time_ns())
    result = query.rollup(store, request)   # {"group_by": [...], "from": ..., "to": ..., "rows": [...]}

Money is returned as decimal strings with 15 decimals (exact femto-USD, e.g.
``"0.004785000000000"``), counts as integers, rates and averages as floats, null where a
ratio has no denominator.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from otelspend.api.requests import RollupRequest, TimeseriesRequest, rollup_request
from otelspend.api.sql import aggregate_query, plan_for
from otelspend.api.vocabulary import METRICS
from otelspend.api.window import NS, rfc3339
from otelspend.clickhouse.client import Store


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

    Returns ``{"group_by", "metrics", "from", "to", "source", "rows": [{dim: value, ..., metric: value}]}``.
    """
    plan = plan_for(request.group_by, request.filters)
    metrics = request.computed_metrics
    sql, params, _ = aggregate_query(
        store.database,
        plan,
        request.window,
        request.group_by,
        metrics,
        request.filters,
        order=[(request.order_by, request.descending)],
        limit=request.limit,
    )
    rows = store.rows(sql, params)
    dims = len(request.group_by)
    out = []
    for row in rows:
        item: dict[str, Any] = dict(zip(request.group_by, row[:dims], strict=True))
        for name, value in zip(metrics, row[dims:], strict=True):
            item[name] = metric_value(name, value)
        out.append(item)
    return {
        "group_by": list(request.group_by),
        "metrics": list(metrics),
        **request.window.describe(),
        "filters": {name: list(values) for name, values in request.filters},
        "order_by": request.order_by,
        "order": "desc" if request.descending else "asc",
        "source": plan.describe(request.window),
        "rows": out,
    }


def timeseries(store: Store, request: TimeseriesRequest) -> dict[str, Any]:
    """The same metrics per time bucket (run start hour or day, UTC).

    With ``group_by``, the ``limit`` groups that rank first by ``order_by`` over the whole
    window each get a series. Buckets without runs are absent from ``points``; ``buckets``
    lists every bucket start of the window so a client can fill gaps. The first and last
    buckets cover only their part of ``[from, to)``.
    """
    plan = plan_for(request.group_by, request.filters)
    keys: list[tuple[str, ...]] | None = None
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
    series: list[dict[str, Any]] = []
    if keys is None or keys:
        sql, params, _ = aggregate_query(
            store.database,
            plan,
            request.window,
            request.group_by,
            request.metrics,
            request.filters,
            bucket=request.bucket,
            keys=keys,
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
    }


def _series(
    rows: Sequence[tuple[Any, ...]], request: TimeseriesRequest, keys: list[tuple[str, ...]] | None
) -> list[dict[str, Any]]:
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
