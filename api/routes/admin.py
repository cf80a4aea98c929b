"""Administrative actions on the running server (bearer-token protected).

``POST /v1/admin/reprice`` re-prices a window of stored spans with the rate card in force
and re-emits the runs it changes. It runs on the pipeline thread (which owns run
stitching), so ingest waits while it works: accepted spans queue up, and exporters get
UNAVAILABLE / 503 + Retry-After only if the queue fills.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from otelspend.api.commands import CommandRefused
from otelspend.api.deps import Authorized, Context
from otelspend.enrich.pricing import at_ns

REPRICE_TIMEOUT_SECONDS = 3600.0
"""Longest the request waits for the pipeline thread to finish a re-price."""
EARLIEST_NS = at_ns(dt.date(2000, 1, 1))
LATEST_NS = at_ns(dt.date(2200, 1, 1))
"""Windows outside these bounds hold no spans (the receiver rejects them) and overflow ns."""

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Authorized])


class RepriceRequest(BaseModel):
    """A window of span start times, ``[from, to)``; a date means UTC midnight."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: dt.datetime | dt.date = Field(alias="from", description="window start (inclusive), RFC 3339 or date")
    end: dt.datetime | dt.date = Field(alias="to", description="window end (exclusive), RFC 3339 or date")
    dry_run: bool = Field(False, description="report what would change without writing")


class RepriceResponse(BaseModel):
    """What changed. Money in USD as exact decimal strings."""

    from_ns: int
    to_ns: int
    dry_run: bool
    spans_scanned: int
    spans_repriced: int = Field(description="spans whose cost, components, provenance or unpriced reason changed")
    calls_repriced: int = Field(description="of those, counted calls (call_role = 'call')")
    cost_before_usd: str = Field(description="cost of the re-priced counted calls before")
    cost_after_usd: str = Field(description="cost of the re-priced counted calls after")
    cost_delta_usd: str
    runs_affected: int = Field(description="runs holding a span whose cost or unpriced reason changed")
    runs_reemitted: int = Field(description="runs re-written (cancel + new rows; rollups follow)")
    runs_unchanged: int
    runs_open: int = Field(description="runs not emitted yet: updated in memory, emitted when they close")
    sources: dict[str, int] = Field(description="re-priced spans by their new price source")


@router.post(
    "/reprice",
    response_model=RepriceResponse,
    summary="Re-price stored spans in a window with the rate card in force; runs and rollups follow",
    responses={
        409: {"description": "the rate card on disk is invalid"},
        503: {"description": "this process runs no pipeline"},
        504: {"description": "still running after an hour"},
    },
)
def reprice(body: RepriceRequest, ctx: Context) -> dict[str, Any]:
    """Re-price the stored spans that started in `[from, to)` with the rate card on disk now; the runs
    holding changed spans are re-emitted and the rollups follow. With `dry_run`, report what would
    change and write nothing."""
    commands = ctx.commands
    if commands is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this process runs no pipeline")
    start_ns, end_ns = at_ns(body.start), at_ns(body.end)
    for name, value in (("from", start_ns), ("to", end_ns)):
        if not EARLIEST_NS <= value <= LATEST_NS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"'{name}' must be between 2000 and 2200")
    if end_ns <= start_ns:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'to' must be after 'from'")
    try:
        return commands.reprice(start_ns, end_ns, dry_run=body.dry_run, timeout_seconds=REPRICE_TIMEOUT_SECONDS)
    except CommandRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except TimeoutError:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT, "the re-price is still running on the pipeline; try a smaller window"
        ) from None
