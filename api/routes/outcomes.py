"""``POST /v1/runs/{run_id}/outcome`` and ``POST /v1/workflows/{workflow_id}/outcome``.

The outcome is stored (history kept) before the answer; the run is then re-emitted by the
pipeline thread, so rollups follow within the run settle time. 202 Accepted says that.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse

from otelspend.api.deps import ApiContext, Authorized, Context
from otelspend.api.params import strict_query
from otelspend.api.routes.runs import RunId
from otelspend.api.schemas import OutcomeAccepted, OutcomeIn
from otelspend.api.window import EARLIEST, LATEST, rfc3339, to_ns

router = APIRouter(prefix="/v1", tags=["outcomes"], dependencies=[Authorized, Depends(strict_query)])

WorkflowId = Annotated[str, Path(min_length=1, max_length=256, description="The workflow id (workflow.id).")]


def _record(ctx: ApiContext, body: OutcomeIn, *, run_id: str = "", workflow_id: str = "") -> JSONResponse:
    if ctx.commands is None:
        raise HTTPException(status_code=503, detail="outcomes need the running pipeline (read-only API)")
    recorded_ns = time.time_ns()
    if body.recorded_at is not None:
        recorded_ns = to_ns(body.recorded_at)
        if not to_ns(EARLIEST) <= recorded_ns < to_ns(LATEST):
            raise HTTPException(status_code=422, detail="recorded_at is outside 2000..2199")
    updated = ctx.commands.record_outcome(
        run_id=run_id,
        workflow_id=workflow_id,
        outcome=body.outcome,
        score=body.score,
        label=body.label,
        recorded_ns=recorded_ns,
        note=body.note,
    )
    answer: dict[str, Any] = {
        "run_id": run_id or None,
        "workflow_id": workflow_id or None,
        "outcome": body.outcome,
        "recorded_at": rfc3339(recorded_ns),
        "updated_runs": updated,
    }
    return JSONResponse(answer, status_code=202)


@router.post(
    "/runs/{run_id}/outcome",
    summary="Record the outcome of a run (accepted, edited, rejected, escalated)",
    status_code=202,
    response_class=JSONResponse,
    responses={202: {"model": OutcomeAccepted}, 503: {"description": "Read-only API without a pipeline."}},
)
def post_run_outcome(ctx: Context, run_id: RunId, body: OutcomeIn) -> JSONResponse:
    """Record an outcome for one run; a run not emitted yet picks it up when it closes."""
    return _record(ctx, body, run_id=run_id.lower())


@router.post(
    "/workflows/{workflow_id}/outcome",
    summary="Record the outcome of every run of a workflow, including runs that arrive later",
    status_code=202,
    response_class=JSONResponse,
    responses={202: {"model": OutcomeAccepted}, 503: {"description": "Read-only API without a pipeline."}},
)
def post_workflow_outcome(ctx: Context, workflow_id: WorkflowId, body: OutcomeIn) -> JSONResponse:
    """Record an outcome for every run of a workflow, now and for runs that arrive later."""
    return _record(ctx, body, workflow_id=workflow_id)
