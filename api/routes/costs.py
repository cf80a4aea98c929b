"""Shared costs and revenue: ``/v1/cost-pools``, ``/v1/allocations``, ``/v1/admin/allocate``,
``/v1/revenue``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from otelspend.api.allocation import allocations, cost_pools, usd
from otelspend.api.commands import CommandRefused
from otelspend.api.deps import Authorized, Context
from otelspend.api.economics import margins, unit_costs
from otelspend.api.errors import QueryError
from otelspend.api.params import From, To, strict_query
from otelspend.api.vocabulary import DIMENSIONS
from otelspend.api.window import DAY_NS, parse_window
from otelspend.clickhouse.queries import revenue as revenue_queries
from otelspend.enrich.pricing import at_ns
from otelspend.finance.revenue import RevenueError, parse_csv, parse_records, store_lines

ALLOCATE_TIMEOUT_SECONDS = 3600.0
"""Longest ``POST /v1/admin/allocate`` waits for the allocation job's turn to end."""
router = APIRouter(prefix="/v1", tags=["costs"], dependencies=[Authorized, Depends(strict_query)])


@router.get(
    "/cost-pools",
    summary="Shared-cost pools and units of value in force, and the allocation job's state",
    response_class=JSONResponse,
)
def get_cost_pools(ctx: Context) -> JSONResponse:
    """``GET /v1/cost-pools``."""
    status_ = ctx.commands.allocation_status() if ctx.commands is not None else None
    return JSONResponse(cost_pools(ctx.cost_rules(), status_, dt.datetime.now(dt.UTC).date()))


@router.get(
    "/allocations",
    summary="Shared costs allocated per pool, period and consumer, with the rule and FOCUS 1.3 details",
    description=(
        "Allocations in force for the pool periods that start in `[from, to)` (default: the last 30 days): "
        "one row per pool, period and consumer (the value of the pool's `by` dimension, or "
        "`(unallocated)` for a period no consumer took), its exact amount, the runs carrying it, and the "
        "rule (`AllocatedMethodId` = pool@rule version, `AllocatedMethodDetails` in the FOCUS 1.3 shape). "
        "`periods` gives each period's total: the pool's amount, exactly."
    ),
    response_class=JSONResponse,
)
def get_allocations(
    ctx: Context,
    start: From = None,
    to: To = None,
    pool: Annotated[list[str] | None, Query(description="Only these pools (repeat for several).")] = None,
) -> JSONResponse:
    """``GET /v1/allocations``."""
    now = time.time_ns()
    window = parse_window(start, to, now_ns=now, default_span_ns=30 * DAY_NS)
    horizon = int(ctx.settings.runs.late_horizon_hours * 3600 * 10**9)
    answer = allocations(ctx.store, window, pool or [], now_ns=now, closed_after_ns=horizon)
    return JSONResponse(answer)


class AllocateRequest(BaseModel):
    """A window of pool periods to restate, ``[from, to)``; a date means UTC midnight."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: dt.datetime | dt.date = Field(alias="from", description="window start (inclusive), RFC 3339 or date")
    end: dt.datetime | dt.date = Field(alias="to", description="window end (exclusive), RFC 3339 or date")
    pools: list[str] = Field(default_factory=list, description="only these pools (default: every pool)")
    dry_run: bool = Field(False, description="compute and report, write nothing")


@router.post(
    "/admin/allocate",
    summary="Restate the allocations of every pool period overlapping a window (any age), by exact deltas",
    responses={
        409: {"description": "the cost-pools file on disk is invalid, or names no such pool"},
        503: {"description": "this process runs no allocation job"},
        504: {"description": "the allocation job's turn held the allocator too long"},
    },
    response_class=JSONResponse,
)
def allocate(body: AllocateRequest, ctx: Context) -> JSONResponse:
    """``POST /v1/admin/allocate``: restate through the running allocator."""
    commands = ctx.commands
    if commands is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this process runs no allocation job")
    start_ns, end_ns = at_ns(body.start), at_ns(body.end)
    if end_ns <= start_ns:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'to' must be after 'from'")
    if end_ns - start_ns > 3660 * DAY_NS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the window is wider than ten years")
    try:
        answer = commands.allocate(
            start_ns, end_ns, pools=body.pools, dry_run=body.dry_run, timeout_seconds=ALLOCATE_TIMEOUT_SECONDS
        )
    except CommandRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except TimeoutError as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(exc)) from None
    return JSONResponse({"from": body.start.isoformat(), "to": body.end.isoformat(), "dry_run": body.dry_run, **answer})


@router.post(
    "/revenue",
    summary="Import revenue per tenant and/or customer (optionally feature) per period",
    description=(
        "A CSV body (`Content-Type: text/csv`; columns `period` or `period_start`+`period_end`, `tenant`, "
        "`customer`, `feature`, `revenue_usd`, optional `currency` = USD) or JSON "
        '`{"lines": [{"period": "2026-11", "customer": "acme", "revenue_usd": "1200.00"}]}`. Each line is spread '
        "exactly over the days of its period; the latest import of a (tenant, customer, feature, day) wins. "
        "A bad line refuses the whole input (422 naming line, column, value and expectation): nothing is stored."
    ),
    status_code=201,
    responses={413: {"description": "body larger than allocation.max_upload_bytes"}},
    response_class=JSONResponse,
)
async def post_revenue(request: Request, ctx: Context) -> JSONResponse:
    """``POST /v1/revenue``: a bounded body, validated whole, stored in one insert."""
    limit = ctx.settings.allocation.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    digest = hashlib.sha256(bytes(body)).hexdigest()[:8]
    try:
        text = bytes(body).decode("utf-8-sig")
        if content_type in ("text/csv", "text/plain", "application/csv"):
            name = request.headers.get("x-otelspend-file", "upload.csv")[:200]
            label = f"{name}@{digest}"
            lines = parse_csv(text, label)
        elif content_type == "application/json":
            doc = json.loads(text)
            if not isinstance(doc, dict) or not isinstance(doc.get("lines"), list):
                raise RevenueError('revenue body: expected {"lines": [{...}, ...]}')
            label = f"api@{digest}"
            lines = parse_records(
                ((item if isinstance(item, dict) else {"": item}, i) for i, item in enumerate(doc["lines"], 1)),
                "body",
            )
        else:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send text/csv or application/json")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"revenue body: not readable ({exc})") from None
    except RevenueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    imported = await run_in_threadpool(store_lines, ctx.store, lines, label)
    return JSONResponse(imported.as_dict(), status_code=201)


@router.get(
    "/revenue",
    summary="Revenue in force per tenant, customer and feature over the days starting in a window",
    response_class=JSONResponse,
)
def get_revenue(ctx: Context, start: From = None, to: To = None) -> JSONResponse:
    """``GET /v1/revenue``."""
    now = time.time_ns()
    window = parse_window(start, to, now_ns=now, default_span_ns=30 * DAY_NS)
    first = dt.datetime.fromtimestamp(-(-window.start_ns // DAY_NS) * 86_400, tz=dt.UTC).date()
    last = dt.datetime.fromtimestamp(-(-window.end_ns // DAY_NS) * 86_400, tz=dt.UTC).date()
    rows: list[dict[str, Any]] = [
        {
            "tenant": tenant,
            "customer": customer,
            "feature": feature,
            "revenue_usd": usd(amount),
            "first_day": first_day,
            "last_day": last_day,
            "days": int(days),
        }
        for tenant, customer, feature, amount, first_day, last_day, days in ctx.store.rows(
            *revenue_queries.totals(ctx.store.database, first.isoformat(), last.isoformat())
        )
    ]
    return JSONResponse({**window.describe(), "rows": rows})


@router.get(
    "/margins",
    summary="Margin per customer (or tenant): revenue against fully loaded cost; margin-dilutive ones first",
    description=(
        "Per customer (`by=customer`, default) or tenant over the runs and revenue days starting in `[from, to)` "
        "(default: the last 30 days): revenue, direct, allocated and loaded cost, margin and margin %. A group is "
        "`dilutive` when its margin % is below the window's overall margin % (all groups together), or when it "
        "cost money and has no revenue on record. `dilutive_only=true` lists only those."
    ),
    response_class=JSONResponse,
)
def get_margins(
    ctx: Context,
    start: From = None,
    to: To = None,
    by: Annotated[Literal["customer", "tenant"], Query(description="Whose margin.")] = "customer",
    dilutive_only: Annotated[bool, Query(description="Only the margin-dilutive ones.")] = False,
) -> JSONResponse:
    """``GET /v1/margins``."""
    window = parse_window(start, to, now_ns=time.time_ns(), default_span_ns=30 * DAY_NS)
    return JSONResponse(margins(ctx.store, window, by, dilutive_only=dilutive_only))


@router.get(
    "/unit-costs",
    summary="Cost per unit of value (per resolution, per processed document, ...): loaded cost over counted runs",
    description=(
        "For each unit of the cost-pools file (`units:`), the direct, allocated and loaded cost of the runs in "
        "its `scope` that started in `[from, to)` (default: the last 30 days), over the number of those runs "
        "that also match its `count`, and the cost per unit (truncated to 1e-15 USD; null without units). "
        "`group_by` (run dimensions) gives the same per group."
    ),
    response_class=JSONResponse,
)
def get_unit_costs(
    ctx: Context,
    start: From = None,
    to: To = None,
    unit: Annotated[list[str] | None, Query(description="Only these units (repeat for several).")] = None,
    group_by: Annotated[list[str] | None, Query(description="Run dimensions to group by.")] = None,
) -> JSONResponse:
    """``GET /v1/unit-costs``."""
    rules = ctx.cost_rules()
    wanted = unit or []
    unknown = [name for name in wanted if rules.unit(name) is None]
    if unknown:
        raise QueryError("unit", f"unknown unit {unknown[0]!r}", [u.id for u in rules.units])
    dims = [d for item in group_by or [] for d in item.split(",") if d]
    for name in dims:
        if name not in DIMENSIONS or DIMENSIONS[name].level == "call" or name == "pool":
            allowed = [n for n, d in DIMENSIONS.items() if d.level != "call" and n != "pool"]
            raise QueryError("group_by", f"{name!r} is not a run dimension", allowed)
    window = parse_window(start, to, now_ns=time.time_ns(), default_span_ns=30 * DAY_NS)
    units = [u for u in rules.units if not wanted or u.id in wanted]
    return JSONResponse(unit_costs(ctx.store, window, units, dims))
