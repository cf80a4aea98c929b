"""``POST /v1/admin/rollups/rebuild``: recompute the hourly rollups of a window from runs.

Runs on the pipeline thread (``Commands.rebuild_rollups``), so no run emission can interleave
with the delete-and-refill of the window; ingestion waits meanwhile (the bounded queue
answers 503 + Retry-After if the rebuild is long).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from otelspend.api.deps import Authorized, Context
from otelspend.api.errors import QueryError
from otelspend.api.params import strict_query
from otelspend.api.schemas import RebuildDone, RebuildIn
from otelspend.api.window import NS, check_time, rfc3339
from otelspend.clickhouse.rollups import HOUR, day_bounds, rebuild_window

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Authorized, Depends(strict_query)])

MAX_REBUILD_DAYS = 400
REBUILD_TIMEOUT_SECONDS = 3600.0


@router.post(
    "/rollups/rebuild",
    summary="Rebuild the hourly and daily rollups for a window (widened to whole UTC days) from the stored runs",
    response_class=JSONResponse,
    responses={200: {"model": RebuildDone}},
)
def rebuild_rollups(ctx: Context, body: RebuildIn) -> JSONResponse:
    """Recompute the hourly and daily rollups of `[from, to)`, widened to whole UTC days, from the
    current runs (after a crash, or a manual change to stored runs)."""
    start_ns = check_time("from", body.from_)
    end_ns = check_time("to", body.to)
    if start_ns >= end_ns:
        raise QueryError("from", f"from ({rfc3339(start_ns)}) must be before to ({rfc3339(end_ns)})")
    if end_ns - start_ns > MAX_REBUILD_DAYS * 86_400 * NS:
        raise QueryError("from", f"the window is wider than {MAX_REBUILD_DAYS} days")
    start_s = start_ns // NS
    end_s = -(-end_ns // NS)

    if ctx.commands is None:
        hours = rebuild_window(ctx.store, start_s, end_s)
    else:
        hours = ctx.commands.rebuild_rollups(start_s, end_s, timeout_seconds=REBUILD_TIMEOUT_SECONDS)
    first, _ = day_bounds(start_s, end_s)
    return JSONResponse({"from": rfc3339(first * NS), "to": rfc3339((first + hours * HOUR) * NS), "hours": hours})
