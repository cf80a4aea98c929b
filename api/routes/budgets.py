"""``/v1/budgets``: budgets with their spend, forecast, remaining amount and status.

Budgets come from the YAML file (``budgets.path``, read-only here) and from this API
(stored in ClickHouse, so they survive restarts). A create or change answers once the
budget's figures for its current period are read from the store.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response

from otelspend.api.deps import Authorized, Context
from otelspend.api.params import strict_query
from otelspend.api.routes.controls import controls_of
from otelspend.controls.service import BudgetConflict
from otelspend.controls.validation import ControlsConfigError, Problem

router = APIRouter(prefix="/v1/budgets", tags=["budgets"], dependencies=[Authorized, Depends(strict_query)])

MAX_BODY_BYTES = 64 * 1024
BudgetId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$", description="Budget id.")]
BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "example": {
                    "id": "acme-daily",
                    "filter": {"tenant": "acme"},
                    "period": "day",
                    "timezone": "UTC",
                    "amount_usd": "25.00",
                    "thresholds": [0.5, 0.8, 1.0],
                }
            }
        },
    }
}


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail=f"request body over {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        problem = Problem("", "", None, f"not valid JSON: {exc}", False)
        raise ControlsConfigError("request body", [problem]) from None


def _refused(exc: ControlsConfigError) -> JSONResponse:
    return JSONResponse({"detail": [p.as_dict() for p in exc.problems]}, status_code=422)


@router.get("", summary="Every budget in force with its spend, forecast and status", response_class=JSONResponse)
def list_budgets(ctx: Context) -> JSONResponse:
    """Every budget in force (file and API) with its figures."""
    return JSONResponse({"budgets": controls_of(ctx).budgets()})


@router.post(
    "",
    summary="Create a budget",
    description=(
        "Body: `id`, `filter` (dimension -> value, all must equal; {} = everything), `period` (day | week | "
        "month, calendar-aligned), `timezone` (IANA, default UTC), `amount_usd` (decimal string) or "
        "`amount_tokens` (integer, input + output tokens), `thresholds` (shares of the amount, default "
        "[0.5, 0.8, 1.0]), `forecast` (alert when on pace to exceed, default true), `action` (deny | warn: "
        "what the check endpoint answers once spent). 201 with the budget's status, 409 when the id exists."
    ),
    status_code=201,
    response_class=JSONResponse,
    openapi_extra=BODY_DOC,
)
async def create_budget(request: Request, ctx: Context) -> Response:
    """Create a budget from the JSON body (see the route description)."""
    controls = controls_of(ctx)
    try:
        doc = await _body(request)
        if not isinstance(doc, dict):
            raise ControlsConfigError("request body", [Problem("", "", None, "expected a JSON object", False)])
        if "id" not in doc:
            raise ControlsConfigError("request body", [Problem("", "id", None, "Field required", False)])
        return JSONResponse(await _in_thread(lambda: controls.put_budget(doc)), status_code=201)
    except ControlsConfigError as exc:
        return _refused(exc)
    except BudgetConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get("/{budget_id}", summary="One budget: spent, forecast, remaining, projected exhaustion, status",
            response_class=JSONResponse)  # fmt: skip
def get_budget(ctx: Context, budget_id: BudgetId) -> JSONResponse:
    """One budget with its figures, or 404."""
    found = controls_of(ctx).budget(budget_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no budget {budget_id}")
    return JSONResponse(found)


@router.put(
    "/{budget_id}",
    summary="Replace a budget created over the API",
    response_class=JSONResponse,
    openapi_extra=BODY_DOC,
)
async def put_budget(request: Request, ctx: Context, budget_id: BudgetId) -> Response:
    """Replace a budget created over the API (see the route description)."""
    controls = controls_of(ctx)
    try:
        doc = await _body(request)
        if not isinstance(doc, dict):
            raise ControlsConfigError("request body", [Problem("", "", None, "expected a JSON object", False)])
        return JSONResponse(await _in_thread(lambda: controls.put_budget(doc, budget_id=budget_id)))
    except ControlsConfigError as exc:
        return _refused(exc)
    except BudgetConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no budget {budget_id} created over the API") from None


@router.delete("/{budget_id}", summary="Delete a budget created over the API (its open alerts resolve)",
               status_code=204)  # fmt: skip
def delete_budget(ctx: Context, budget_id: BudgetId) -> Response:
    """Delete a budget created over the API, or 404 / 409 for a file budget."""
    try:
        deleted = controls_of(ctx).delete_budget(budget_id)
    except BudgetConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    if not deleted:
        raise HTTPException(status_code=404, detail=f"no budget {budget_id} created over the API")
    return Response(status_code=204)


async def _in_thread(fn: Any) -> Any:
    """Run blocking work (a store write, waiting for the budget's figures) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn)
