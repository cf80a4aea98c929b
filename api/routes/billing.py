"""Billing exports and reconciliation over the API.

* ``POST /v1/billing/imports`` — the body is the export file as is (JSON, CSV, gzip CSV or
  Parquet); ``format`` (default ``auto``), ``name`` (shown in messages), ``account``,
  ``reconcile``. All or nothing: a refused file is a 422 naming file, record, field, value and
  expectation, and nothing of it is stored. Bodies are streamed to a temporary file and
  bounded by ``billing.max_upload_bytes`` (413 above it).
* ``GET /v1/billing/imports`` — the imports, newest first.
* ``POST /v1/billing/reconcile`` — reconcile (again) the days of a window.
* ``GET /v1/reconciliation`` — the stored reconciliation, grouped; ``GET
  /v1/reconciliation/runs`` — the runs behind one cell.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from otelspend.api import reconciliation as recon
from otelspend.api.deps import ApiContext, Authorized, Context
from otelspend.api.params import From, To, strict_query
from otelspend.finance.billing import service
from otelspend.finance.billing.accounts import AccountMapError
from otelspend.finance.billing.days import MAX_DAYS, Options, days_between, reconcile_days
from otelspend.finance.billing.importers import FORMATS
from otelspend.finance.billing.lines import BillingImportError

router = APIRouter(prefix="/v1", tags=["billing"], dependencies=[Authorized, Depends(strict_query)])

Format = Literal[FORMATS]  # type: ignore[valid-type]
Dimension = Literal[recon.DIMENSIONS]  # type: ignore[valid-type]


def _options(ctx: ApiContext) -> Options:
    try:
        return Options.from_settings(ctx.settings.billing)
    except AccountMapError as exc:
        raise HTTPException(409, f"the account mapping is invalid: {exc}") from None


def _refused(exc: BillingImportError) -> HTTPException:
    return HTTPException(422, [{"loc": ["body"], "type": "value_error", "msg": str(exc), **exc.as_dict()}])


@router.post(
    "/billing/imports",
    summary="Import a billing export (OpenAI / Anthropic admin-API pages, FOCUS, AWS CUR), all or nothing",
    status_code=201,
    response_class=JSONResponse,
    responses={
        201: {"description": "Imported (and the days it touches reconciled)."},
        409: {"description": "The account mapping file is invalid."},
        413: {"description": "Larger than billing.max_upload_bytes."},
        422: {"description": "Refused: the detail names file, record, field, value and expectation."},
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def post_import(
    request: Request,
    ctx: Context,
    format: Annotated[Format, Query(description="Export format; auto recognises it.")] = "auto",
    name: Annotated[str, Query(min_length=1, max_length=255, description="File name shown in messages.")] = "upload",
    account: Annotated[str, Query(max_length=200, description="Billing account, when the file does not say.")] = "",
    reconcile: Annotated[bool, Query(description="Reconcile the days the file touches.")] = True,
) -> JSONResponse:
    """Import one billing export sent as the request body (streamed to a temporary file, bounded)."""
    limit = ctx.settings.billing.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the export is larger than billing.max_upload_bytes ({limit} bytes)")
    options = _options(ctx) if reconcile else None
    folder = ctx.settings.data_dir / "billing" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as directory:
        path = Path(directory) / "export"
        size = 0
        with path.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the export is larger than billing.max_upload_bytes ({limit} bytes)")
                out.write(chunk)
        if size == 0:
            raise HTTPException(422, "the body is empty: send the export file as the request body")

        def run() -> dict[str, Any]:
            after = (lambda days: reconcile_days(ctx.store, days, options)) if options is not None else None
            source = "pull" if name.startswith("pull ") else "api"
            return service.import_file(
                ctx.store, path, name=name, format=format, account=account, source=source, after=after
            ).as_dict()

        try:
            answer = await run_in_threadpool(run)
        except BillingImportError as exc:
            raise _refused(exc) from None
    return JSONResponse(answer, status_code=201)


@router.get("/billing/imports", summary="Billing imports, newest first", response_class=JSONResponse)
def get_imports(
    ctx: Context, limit: Annotated[int, Query(ge=1, le=1000, description="Imports to list.")] = 100
) -> JSONResponse:
    """The recorded imports, latest first."""
    return JSONResponse({"imports": service.list_imports(ctx.store, limit)})


class ReconcileIn(BaseModel):
    """Body of ``POST /v1/billing/reconcile``: the UTC days ``[from, to)`` to reconcile again."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: dt.date = Field(alias="from", description="First UTC day.")
    end: dt.date = Field(alias="to", description="Day after the last (exclusive).")


@router.post(
    "/billing/reconcile",
    summary="Reconcile the days of a window with the bill in force (again: late spans, re-prices, new mapping)",
    response_class=JSONResponse,
)
def post_reconcile(ctx: Context, body: ReconcileIn) -> JSONResponse:
    """Reconcile the window's days again with the bill in force (after a rate card or mapping change)."""
    if body.end <= body.start:
        raise HTTPException(422, "'to' must be after 'from'")
    if (body.end - body.start).days > MAX_DAYS:
        raise HTTPException(422, f"at most {MAX_DAYS} days at once")
    days = reconcile_days(ctx.store, days_between(body.start, body.end), _options(ctx))
    return JSONResponse({"from": body.start.isoformat(), "to": body.end.isoformat(), "days": days})


Filter = Annotated[list[str] | None, Query()]


@router.get(
    "/reconciliation",
    summary="The ledger against the bill: variance by cause and confidence, per day, provider, model, account",
    description=(
        "Stored reconciliation cells whose period starts in `[from, to)` (default: the last 30 days), summed "
        "per `group_by` (any of day, provider, model, account, confidence; default "
        "day,provider,model,account). Each row: ledger tokens by kind and calls, billed quantities (null "
        "where the bill states none), calculated, billed and variance (billed - calculated) in USD as exact "
        "decimal strings, variance_pct, the variance by cause (they add up to it), the confidence (the "
        "weakest cell of the group) and the count of cells at each level. `filter.model` accepts any "
        "spelling of a model (billed or ledger name)."
    ),
    response_class=JSONResponse,
)
def get_reconciliation(
    ctx: Context,
    start: From = None,
    to: To = None,
    group_by: Annotated[list[str], Query(description="Dimensions: day, provider, model, account, confidence.",
                                         json_schema_extra={"items": {"type": "string",
                                                                      "enum": list(recon.DIMENSIONS)}})] = [],  # noqa: B006
    filter_provider: Annotated[Filter, Query(alias="filter.provider")] = None,
    filter_model: Annotated[Filter, Query(alias="filter.model")] = None,
    filter_account: Annotated[Filter, Query(alias="filter.account")] = None,
    filter_confidence: Annotated[Filter, Query(alias="filter.confidence")] = None,
    filter_day: Annotated[Filter, Query(alias="filter.day")] = None,
    limit: Annotated[int | None, Query(description=f"Rows (1 to {recon.MAX_ROWS}, default 1000).")] = None,
) -> JSONResponse:  # fmt: skip
    """The stored reconciliation, grouped, with totals, other charges and the days' status."""
    filters = {
        name: values
        for name, values in (("provider", filter_provider), ("model", filter_model), ("account", filter_account),
                             ("confidence", filter_confidence), ("day", filter_day))
        if values
    }  # fmt: skip
    request = recon.reconciliation_request(
        start=start, end=to, group_by=group_by, filters=filters, limit=limit, now_ns=time.time_ns()
    )
    return JSONResponse(recon.reconciliation(ctx.store, request))


@router.get(
    "/reconciliation/runs",
    summary="The runs behind one reconciled cell, with their billed share (true-up)",
    response_class=JSONResponse,
)
def get_cell_runs(
    ctx: Context,
    day: Annotated[dt.date, Query(description="The cell's UTC day.")],
    provider: Annotated[str, Query(min_length=1, max_length=200)],
    model: Annotated[str, Query(max_length=500, description="The model (any spelling) or its match key.")] = "",
    account: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> JSONResponse:
    """The runs behind one reconciled cell with their billed share, largest first."""
    runs = recon.cell_runs(ctx.store, day=day, provider=provider, model=model, account=account, limit=limit)
    return JSONResponse({"day": day.isoformat(), "provider": provider, "model": model, "account": account,
                         "runs": runs})  # fmt: skip
