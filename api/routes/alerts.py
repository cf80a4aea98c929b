"""``GET /v1/alerts`` and ``GET /v1/alerts/{id}``: alert history with each webhook delivery's state.

Read from the store (``alerts``, ``alert_deliveries``), so it works on a read-only API too.
An alert whose webhook keeps failing shows ``status: retrying`` with the attempts, the
last error and the next attempt time.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse

from otelspend.api.deps import Authorized, Context
from otelspend.api.errors import QueryError
from otelspend.api.params import From, To, strict_query
from otelspend.api.window import DAY_NS, parse_window, rfc3339
from otelspend.controls.events import EVENT_TYPES
from otelspend.controls.store import get_alert, list_alerts

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], dependencies=[Authorized, Depends(strict_query)])
DEFAULT_DAYS = 7


@router.get(
    "",
    summary="Alert events (firing and resolved), newest first, with their webhook deliveries",
    description=(
        "Events raised in `[from, to)` (default: the last 7 days). Each is the JSON event delivered to the "
        "webhooks (schema `otelspend.alert.v1`) plus `deliveries`: per sink its status (pending, retrying, "
        "delivered, failed), attempts, HTTP status, last error and next attempt."
    ),
    response_class=JSONResponse,
)
def alerts(
    ctx: Context,
    start: From = None,
    to: To = None,
    type_: Annotated[list[str] | None, Query(alias="type", description="Event types (repeat for several).")] = None,
    status: Annotated[Literal["firing", "resolved"] | None, Query(description="Firing or resolved events.")] = None,
    run_id: Annotated[str | None, Query(max_length=64, description="Events about one run.")] = None,
    incident_id: Annotated[str | None, Query(max_length=64, description="The events of one incident.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events to return.")] = 100,
) -> JSONResponse:
    """Alert events in a window, one page (see the route description)."""
    window = parse_window(start, to, now_ns=time.time_ns(), default_span_ns=DEFAULT_DAYS * DAY_NS)
    types = [t.strip() for value in (type_ or []) for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise QueryError("type", f"unknown event type {unknown[0]!r}", EVENT_TYPES)
    found = list_alerts(
        ctx.store,
        start_ns=window.start_ns,
        end_ns=window.end_ns,
        types=types,
        status=status,
        run_id=run_id.lower() if run_id else None,
        incident_id=incident_id,
        limit=limit,
    )
    return JSONResponse({"from": rfc3339(window.start_ns), "to": rfc3339(window.end_ns), "alerts": found})


@router.get("/{event_id}", summary="One alert event with its webhook deliveries", response_class=JSONResponse)
def alert(ctx: Context, event_id: Annotated[str, Path(max_length=64, pattern=r"^evt_[0-9a-f]{32}$")]) -> JSONResponse:
    """One alert event with its deliveries, or 404."""
    found = get_alert(ctx.store, event_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no alert {event_id}")
    return JSONResponse(found)
