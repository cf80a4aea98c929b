"""The decision endpoint and run control: ``GET /v1/controls/check``, ``GET /v1/controls/runs/{run_id}``,
``GET /v1/controls/status``.

The check is on a gateway's request path, so it is answered from the controls' memory
(budget statuses, policy, flagged runs) with no store query, and its route is
``async`` with an async token check: no thread-pool hop per request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param

from otelspend.api.commands import ControlsApi
from otelspend.api.deps import ApiContext, get_context, require_token
from otelspend.api.params import strict_query


async def require_token_async(request: Request) -> None:
    """The API's bearer-token check (``deps.require_token``: the same tokens, cookie, refusal
    count and log) without the thread pool."""
    scheme, presented = get_authorization_scheme_param(request.headers.get("Authorization"))
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=presented) if presented else None
    require_token(request, credentials)


async def strict_query_async(request: Request) -> None:
    """``params.strict_query`` (unknown query parameters are a 422) without the thread pool."""
    strict_query(request)


router = APIRouter(
    prefix="/v1/controls", tags=["controls"], dependencies=[Depends(require_token_async), Depends(strict_query_async)]
)


def controls_of(ctx: ApiContext) -> ControlsApi:
    """The running controls, or 503 (read-only API, or ``controls.enabled`` off)."""
    controls = ctx.commands.controls() if ctx.commands is not None else None
    if controls is None:
        raise HTTPException(status_code=503, detail="the spend controls are not running here (controls.enabled)")
    return controls


def _dimension(description: str) -> Any:
    return Query(max_length=256, description=description)


@router.get(
    "/check",
    summary="May this call go ahead? allow | warn | deny with reasons, from memory",
    description=(
        "For gateways and SDKs, before a model call. `deny` when the run is flagged (retry loop), a budget "
        "that applies is spent (its `action`), or the model is outside a policy rule whose `action` is deny; "
        "`warn` for a budget past a threshold or on pace to exceed, calls no rate card prices in a budget, "
        "or a warn rule. A budget applies when every dimension of its filter is given with the same value; a "
        "policy rule when every key it matches on is given and matches. No store query: p99 in microseconds "
        "plus HTTP."
    ),
    response_class=JSONResponse,
)
async def check(
    request: Request,
    tenant: Annotated[str, _dimension("Tenant of the call.")] = "",
    customer: Annotated[str, _dimension("Customer.")] = "",
    feature: Annotated[str, _dimension("Feature.")] = "",
    workflow_type: Annotated[str, _dimension("Workflow type.")] = "",
    environment: Annotated[str, _dimension("Deployment environment.")] = "",
    team: Annotated[str, _dimension("Owning team.")] = "",
    user: Annotated[str, _dimension("End user.")] = "",
    model: Annotated[str, _dimension("Model about to be called.")] = "",
    provider: Annotated[str, _dimension("Provider (gen_ai.provider.name); helps price an ambiguous model.")] = "",
    run_id: Annotated[str, Query(max_length=64, description="The run (trace id) the call belongs to.")] = "",
) -> JSONResponse:
    """Allow, warn or deny a call about to be made (see the route description)."""
    controls = controls_of(get_context(request))
    values = {
        "tenant": tenant, "customer": customer, "feature": feature, "workflow_type": workflow_type,
        "environment": environment, "team": team, "user": user, "model": model, "provider": provider,
    }  # fmt: skip
    return JSONResponse(controls.check(values, run_id.lower()))


@router.get(
    "/runs/{run_id}",
    summary="Should this run stop? `stop` (with the reason) for a run flagged by a retry loop",
    description="An agent polls it between steps and stops itself. `continue` otherwise.",
    response_class=JSONResponse,
)
async def run(
    request: Request,
    run_id: Annotated[str, Path(pattern="^[0-9a-fA-F]{32}$", description="The run id (trace id, 32 hex).")],
) -> JSONResponse:
    """Stop or continue for one run (see the route description)."""
    return JSONResponse(controls_of(get_context(request)).run_action(run_id.lower()))


@router.get(
    "/status", summary="What the controls are doing: policy, budgets, sinks, detectors", response_class=JSONResponse
)
async def status(request: Request) -> JSONResponse:
    """Policy, budgets, sinks and detectors in force, with their counters."""
    return JSONResponse(controls_of(get_context(request)).status())
