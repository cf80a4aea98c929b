"""``GET /v1/outliers``, ``GET /v1/unpriced`` and ``GET /v1/rate-cards``."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from otelspend.api.deps import Authorized, Context
from otelspend.api.outliers import OutliersRequest, outliers
from otelspend.api.params import From, To, strict_query
from otelspend.api.prices import rate_cards, unpriced
from otelspend.api.window import check_time, parse_window

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Authorized, Depends(strict_query)])


@router.get(
    "/outliers",
    summary="Where to look first: costliest workflows, runs, agents, cost jumps, retries, acceptance",
    description=(
        "Ranked lists over the runs that started in `[from, to)` (default: the last 24 hours):\n\n"
        "- `costliest_workflows`: workflow types by cost_usd (with runs and cost_per_success_usd).\n"
        "- `costliest_runs`: runs by cost (as `GET /v1/runs`).\n"
        "- `cost_jumps`: (workflow type, bucket) where cost per successful run is at least `jump_factor` "
        "times its rolling baseline: the `baseline_buckets` buckets before it. Buckets overlapping the "
        "window are tested; both sides need `min_runs` successful runs.\n"
        "- `highest_retry_rates`: agents by retries per call (at least `min_calls` calls).\n"
        "- `costliest_agents`: agents by the cost of their calls.\n"
        "- `lowest_acceptance_prompts`: prompt versions by acceptance rate (at least `min_runs` runs with "
        "an outcome).\n"
        "- `costliest_unsuccessful_calls`: counted calls whose call failed, whose run failed, or whose run "
        "was rejected or escalated (`reasons` says which)."
    ),
    response_class=JSONResponse,
)
def get_outliers(
    ctx: Context,
    start: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Rows per section.")] = 10,
    bucket: Annotated[Literal["hour", "day"], Query(description="Bucket of cost_jumps.")] = "day",
    baseline_buckets: Annotated[int, Query(ge=1, le=90, description="Buckets in the rolling baseline.")] = 7,
    jump_factor: Annotated[float, Query(ge=1.0, le=1000.0, description="Minimum ratio to baseline.")] = 1.5,
    min_runs: Annotated[int, Query(ge=1, le=1_000_000, description="Minimum runs (jumps, acceptance).")] = 5,
    min_calls: Annotated[int, Query(ge=1, le=1_000_000, description="Minimum calls (retry rates).")] = 20,
) -> JSONResponse:
    """Outlier report sections for a window (see the route description)."""
    window = parse_window(start, to, now_ns=time.time_ns())
    request = OutliersRequest(window, limit, bucket, baseline_buckets, jump_factor, min_runs, min_calls)
    return JSONResponse(outliers(ctx.store, request))


@router.get(
    "/unpriced",
    summary="Calls that could not be priced, by provider, model and reason, with token volume",
    description=(
        "Counted model calls with no price (cost NULL, never $0) whose own start time is in `[from, to)` "
        "(default: the last 24 hours), grouped by (provider, model, reason). Reasons: no_usage, no_model, "
        "unknown_model, unknown_provider, inconsistent_usage. Add a rate card entry to price them, then "
        "reprice. `totals` adds up every group (listed or not), `total_groups` counts them and `truncated` "
        "says whether `limit` left some out."
    ),
    response_class=JSONResponse,
)
def get_unpriced(
    ctx: Context,
    start: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Rows to return.")] = 100,
) -> JSONResponse:
    """Unpriced calls for a window, grouped by provider, model and reason."""
    window = parse_window(start, to, now_ns=time.time_ns())
    return JSONResponse(unpriced(ctx.store, window, limit))


@router.get(
    "/rate-cards",
    summary="The rate cards in force (genai-prices and the user card), optionally a price quote",
    description=(
        "The default source (genai-prices, its version) and the user rate card entries in match order "
        "(the first matching entry wins). With `provider` and `model`, also `quote`: the price that "
        "applies to such a call started at `at` (default now), per million tokens, with its source."
    ),
    response_class=JSONResponse,
)
def get_rate_cards(
    ctx: Context,
    provider: Annotated[str | None, Query(max_length=200, description="Provider to quote (semconv name).")] = None,
    model: Annotated[str | None, Query(max_length=300, description="Model to quote.")] = None,
    at: Annotated[
        dt.datetime | None, Query(description="Call start time for the quote (RFC 3339); default now.")
    ] = None,
) -> JSONResponse:
    """The rate cards in force and, with ``provider`` and ``model``, a price quote."""
    quote = None
    if model:
        quote = (provider or "", model, time.time_ns() if at is None else check_time("at", at))
    return JSONResponse(rate_cards(ctx.price_book(), quote))
