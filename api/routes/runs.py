"""``GET /v1/runs`` and ``GET /v1/runs/{run_id}``."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse

from otelspend.api.deps import Authorized, Context
from otelspend.api.params import From, To, filters_dependency, strict_query
from otelspend.api.requests import check_filters
from otelspend.api.runs import MAX_OFFSET, MAX_PAGE, RunOrder, RunsRequest, get_run, list_runs
from otelspend.api.schemas import Page
from otelspend.api.window import parse_window

router = APIRouter(prefix="/v1", tags=["runs"], dependencies=[Authorized, Depends(strict_query)])

RunId = Annotated[str, Path(pattern="^[0-9a-fA-F]{32}$", description="The run id: its trace id, 32 hex characters.")]


@router.get(
    "/runs",
    summary="Runs started in a window: filter, sort by cost / duration / retries, paginate",
    description=(
        "Current runs (latest emission) that started in `[from, to)` (default: the last 24 hours). "
        "`filter.<dimension>` works as in rollups; a call-level dimension keeps runs with at least one "
        "matching call or tool execution. Page with `offset` (`next_offset` is null on the last page)."
    ),
    response_class=JSONResponse,
    responses={200: {"model": Page}},
)
def get_runs(
    ctx: Context,
    filters: Annotated[dict[str, list[str]], Depends(filters_dependency)],
    start: From = None,
    to: To = None,
    order_by: Annotated[RunOrder, Query(description="Sort key (calls = model calls).")] = "cost_usd",
    order: Annotated[Literal["asc", "desc"], Query(description="Sort direction.")] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Runs to skip.")] = 0,
) -> JSONResponse:
    """Runs in a window, one page (see the route description)."""
    window = parse_window(start, to, now_ns=time.time_ns())
    request = RunsRequest(window, check_filters(filters), order_by, order == "desc", limit, offset)
    return JSONResponse(list_runs(ctx.store, request))


@router.get(
    "/runs/{run_id}",
    summary="One run: record, breakdown by model / agent / tool, span tree with per-span cost",
    description=(
        "`run` is the current run record (null while the run has not been emitted yet), `breakdown` its "
        "rows by (model, provider, agent, tool, operation, payload_band), `spans` the span tree: every "
        "span with its own cost (`cost_usd`, components, price source) and `subtree_cost_usd`, the cost of "
        "the counted calls below it (views of a call already counted carry `call_role = 'view'` and add "
        "nothing). `outcomes` lists outcomes posted over the API for the run or its workflow."
    ),
    response_class=JSONResponse,
    responses={404: {"description": "No run and no span with this id."}},
)
def get_run_detail(
    ctx: Context,
    run_id: RunId,
    attributes: Annotated[bool, Query(description="Include each span's stored attributes.")] = False,
) -> Any:
    """One run with its breakdown and span tree (see the route description)."""
    found = get_run(ctx.store, run_id.lower(), attributes=attributes)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no run {run_id.lower()}")
    return JSONResponse(found)
