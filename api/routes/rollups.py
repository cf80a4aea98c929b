"""``GET /v1/rollups``, ``GET /v1/timeseries`` and ``GET /v1/vocabulary``."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from otelspend.api import query
from otelspend.api.deps import Authorized, Context
from otelspend.api.params import From, GroupBy, Metrics, OrderBy, To, filters_dependency, strict_query
from otelspend.api.requests import DEFAULT_SERIES, MAX_SERIES, rollup_request, timeseries_request
from otelspend.api.schemas import RollupResponse, TimeseriesResponse, VocabularyResponse
from otelspend.api.vocabulary import DIMENSIONS, METRICS

router = APIRouter(prefix="/v1", tags=["rollups"], dependencies=[Authorized, Depends(strict_query)])

Filters = Annotated[dict[str, list[str]], Depends(filters_dependency)]
Order = Annotated[Literal["asc", "desc"], Query(description="Sort direction.")]

ROLLUPS_DESCRIPTION = """\
Metrics per group over the runs that **started** in `[from, to)`, from the hourly rollups
(whole hours) plus the raw run rows (partial edge hours), so any window is exact.

Filters: `filter.<dimension>=value` (repeat the parameter for several values of one
dimension, which are OR-ed; different dimensions are AND-ed).

Grouping or filtering by a call-level dimension (model, provider, agent, tool, operation,
payload_band) switches to call level: sums cover the calls in each group, runs count once
per group they have calls in, latency is per call / tool execution. `workflow_id` and `user`
are read from the raw runs (slower on wide windows).

A table is never cut silently: `rows` holds the first `limit` groups by `order_by`,
`total_groups` counts every group in the window, `truncated` says whether some were left out,
and `totals` gives every metric over all of them (computed in the same query, exact), so
the money in a truncated table still adds up to the window's.

Example: `GET /v1/rollups?group_by=workflow_type&metrics=cost_usd,runs,cost_per_success_usd`
"""


LIMIT_DESCRIPTION = "Rows to return (1 to api.max_rows, default 100); `truncated` says when groups are left out."


@router.get(
    "/rollups",
    summary="Metrics grouped by dimensions over a time window",
    description=ROLLUPS_DESCRIPTION,
    response_class=JSONResponse,
    responses={200: {"model": RollupResponse}},
)
def get_rollups(
    ctx: Context,
    filters: Filters,
    group_by: GroupBy = [],  # noqa: B006 - FastAPI copies defaults
    metrics: Metrics = [],  # noqa: B006
    start: From = None,
    to: To = None,
    order_by: OrderBy = None,
    order: Order = "desc",
    limit: Annotated[int | None, Query(description=LIMIT_DESCRIPTION)] = None,
) -> JSONResponse:
    """Metrics per group over the window (see the route description)."""
    request = rollup_request(
        group_by=group_by,
        metrics=metrics,
        filters=filters,
        start=start,
        end=to,
        order_by=order_by,
        order=order,
        limit=limit,
        now_ns=time.time_ns(),
        max_rows=ctx.settings.api.max_rows,
    )
    return JSONResponse(query.rollup(ctx.store, request))


@router.get(
    "/timeseries",
    summary="Metrics per hour or day, optionally per group",
    description=(
        "The rollup vocabulary per time bucket (UTC hours or days of run start). With `group_by`, the "
        "`limit` groups ranking first by `order_by` over the whole window get one series each; "
        "`total_groups` counts the groups and `truncated` says whether some got no series. Default "
        "window: the last 24 hours for hourly buckets, the last 30 days for daily buckets."
    ),
    response_class=JSONResponse,
    responses={200: {"model": TimeseriesResponse}},
)
def get_timeseries(
    filters: Filters,
    ctx: Context,
    bucket: Annotated[Literal["hour", "day"], Query(description="Bucket size.")] = "hour",
    group_by: GroupBy = [],  # noqa: B006
    metrics: Metrics = [],  # noqa: B006
    start: From = None,
    to: To = None,
    order_by: OrderBy = None,
    order: Order = "desc",
    limit: Annotated[
        int | None, Query(description=f"Series to return (1 to {MAX_SERIES}, default {DEFAULT_SERIES}).")
    ] = None,
) -> JSONResponse:
    """Metrics per time bucket, per group (see the route description)."""
    request = timeseries_request(
        bucket=bucket,
        group_by=group_by,
        metrics=metrics,
        filters=filters,
        start=start,
        end=to,
        order_by=order_by,
        order=order,
        limit=limit,
        now_ns=time.time_ns(),
    )
    return JSONResponse(query.timeseries(ctx.store, request))


@router.get(
    "/vocabulary",
    summary="Dimensions and metrics accepted by rollups, timeseries and filters",
    response_model=VocabularyResponse,
)
def get_vocabulary() -> dict[str, Any]:
    """Every dimension and metric with its level, kind, unit and meaning."""
    return {
        "dimensions": [{"name": d.name, "level": d.level, "description": d.description} for d in DIMENSIONS.values()],
        "metrics": [
            {"name": m.name, "kind": m.kind, "unit": m.unit, "description": m.description} for m in METRICS.values()
        ],
    }
