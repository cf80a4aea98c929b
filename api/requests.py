"""Validated query requests, built from loosely typed parameters (HTTP or Python callers).

Every name is checked against ``otelspend.api.vocabulary``; anything unknown or out of
range raises ``QueryError`` naming the parameter and the allowed values. The dataclasses
are what ``otelspend.api.query`` executes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from otelspend.api.errors import QueryError
from otelspend.api.vocabulary import DEFAULT_METRICS, DIMENSIONS, METRICS, Filters
from otelspend.api.window import DAY_NS, HOUR_NS, Window, parse_window

Bucket = Literal["hour", "day"]
BUCKET_NS: dict[str, int] = {"hour": HOUR_NS, "day": DAY_NS}
MAX_GROUP_BY = 4
MAX_FILTER_VALUES = 100
MAX_VALUE_CHARS = 1_000
MAX_BUCKETS = 2_400
"""Points per series in a timeseries (100 days of hours)."""
MAX_SERIES = 100
DEFAULT_LIMIT = 100
DEFAULT_SERIES = 10


@dataclass(frozen=True)
class RollupRequest:
    """``GET /v1/rollups``: metrics per group over runs that started in the window."""

    window: Window
    group_by: tuple[str, ...] = ()
    metrics: tuple[str, ...] = DEFAULT_METRICS
    filters: Filters = ()
    order_by: str = "cost_usd"
    descending: bool = True
    limit: int = DEFAULT_LIMIT

    @property
    def computed_metrics(self) -> tuple[str, ...]:
        """Requested metrics plus the ordering metric when it was not requested."""
        if self.order_by in METRICS and self.order_by not in self.metrics:
            return (*self.metrics, self.order_by)
        return self.metrics


@dataclass(frozen=True)
class TimeseriesRequest:
    """``GET /v1/timeseries``: the same vocabulary per time bucket; ``limit`` caps the series."""

    window: Window
    bucket: Bucket = "hour"
    group_by: tuple[str, ...] = ()
    metrics: tuple[str, ...] = DEFAULT_METRICS
    filters: Filters = ()
    order_by: str = "cost_usd"
    descending: bool = True
    limit: int = DEFAULT_SERIES

    def buckets(self) -> list[int]:
        """Start (ns) of every bucket overlapping the window."""
        size = BUCKET_NS[self.bucket]
        first = self.window.start_ns // size * size
        return list(range(first, self.window.end_ns, size))


@dataclass(frozen=True)
class Common:
    """Parameters shared by rollups and timeseries, validated."""

    window: Window
    group_by: tuple[str, ...]
    metrics: tuple[str, ...]
    filters: Filters
    order_by: str
    descending: bool


def split_names(values: Iterable[str] | str | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: repeated parameters or comma-separated lists."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    return names


def check_names(parameter: str, names: Iterable[str], kind: str, allowed: Mapping[str, Any]) -> tuple[str, ...]:
    """Names from the vocabulary only (``kind`` is "dimension" or "metric"), else a 422 listing them."""
    found = tuple(names)
    for name in found:
        if name not in allowed:
            raise QueryError(parameter, f"unknown {kind} {name!r}", allowed)
    return found


def check_filters(filters: Mapping[str, Iterable[str] | str] | None) -> Filters:
    """``{dimension: values}`` -> sorted, deduplicated tuples (values of one dimension are OR-ed)."""
    checked: list[tuple[str, tuple[str, ...]]] = []
    for name, raw in sorted((filters or {}).items()):
        if name not in DIMENSIONS:
            raise QueryError(f"filter.{name}", f"unknown dimension {name!r}", (f"filter.{d}" for d in DIMENSIONS))
        values = [raw] if isinstance(raw, str) else list(raw)
        if not values:
            continue
        if len(values) > MAX_FILTER_VALUES:
            raise QueryError(f"filter.{name}", f"at most {MAX_FILTER_VALUES} values")
        for value in values:
            if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
                raise QueryError(f"filter.{name}", f"each value must be a string of at most {MAX_VALUE_CHARS} chars")
        checked.append((name, tuple(sorted(set(values)))))
    return tuple(checked)


def check_limit(limit: int | None, default: int, maximum: int, parameter: str = "limit") -> int:
    """``limit``, or ``default`` when not given; QueryError naming ``parameter`` when outside 1..``maximum``."""
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise QueryError(parameter, f"{limit} is out of range: give 1..{maximum}")
    return limit


def _common(
    *,
    group_by: Iterable[str] | str | None,
    metrics: Iterable[str] | str | None,
    filters: Mapping[str, Iterable[str] | str] | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    order_by: str | None,
    order: str | None,
    now_ns: int,
    default_span_ns: int,
) -> Common:
    dims = check_names("group_by", split_names(group_by), "dimension", DIMENSIONS)
    if len(dims) > MAX_GROUP_BY:
        raise QueryError("group_by", f"at most {MAX_GROUP_BY} dimensions")
    chosen = check_names("metrics", split_names(metrics), "metric", METRICS) or DEFAULT_METRICS
    ordering = (order_by or "").strip() or chosen[0]
    if ordering not in METRICS and ordering not in dims:
        allowed = [*METRICS, *dims]
        raise QueryError("order_by", f"{ordering!r} is neither a metric nor a group_by dimension", allowed)
    direction = (order or "desc").lower()
    if direction not in ("asc", "desc"):
        raise QueryError("order", f"unknown order {order!r}", ("asc", "desc"))
    window = parse_window(start, end, now_ns=now_ns, default_span_ns=default_span_ns)
    return Common(window, dims, chosen, check_filters(filters), ordering, direction == "desc")


def rollup_request(
    *,
    group_by: Iterable[str] | str | None = None,
    metrics: Iterable[str] | str | None = None,
    filters: Mapping[str, Iterable[str] | str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    order_by: str | None = None,
    order: str | None = None,
    limit: int | None = None,
    now_ns: int,
    max_rows: int = 10_000,
) -> RollupRequest:
    """Validate rollup parameters; raises QueryError."""
    c = _common(
        group_by=group_by,
        metrics=metrics,
        filters=filters,
        start=start,
        end=end,
        order_by=order_by,
        order=order,
        now_ns=now_ns,
        default_span_ns=DAY_NS,
    )
    return RollupRequest(
        c.window,
        c.group_by,
        c.metrics,
        c.filters,
        c.order_by,
        c.descending,
        check_limit(limit, min(DEFAULT_LIMIT, max_rows), max_rows),
    )


def timeseries_request(
    *,
    bucket: str | None = None,
    group_by: Iterable[str] | str | None = None,
    metrics: Iterable[str] | str | None = None,
    filters: Mapping[str, Iterable[str] | str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    order_by: str | None = None,
    order: str | None = None,
    limit: int | None = None,
    now_ns: int,
) -> TimeseriesRequest:
    """Validate timeseries parameters; raises QueryError."""
    size = bucket or "hour"
    if size not in BUCKET_NS:
        raise QueryError("bucket", f"unknown bucket {bucket!r}", BUCKET_NS)
    c = _common(
        group_by=group_by,
        metrics=metrics,
        filters=filters,
        start=start,
        end=end,
        order_by=order_by,
        order=order,
        now_ns=now_ns,
        default_span_ns=DAY_NS if size == "hour" else 30 * DAY_NS,
    )
    request = TimeseriesRequest(
        c.window,
        size,  # type: ignore[arg-type]
        c.group_by,
        c.metrics,
        c.filters,
        c.order_by,
        c.descending,
        check_limit(limit, DEFAULT_SERIES, MAX_SERIES),
    )
    if len(request.buckets()) > MAX_BUCKETS:
        raise QueryError("from", f"the window holds more than {MAX_BUCKETS} {size} buckets; use a wider bucket")
    return request
