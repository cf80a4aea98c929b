"""Chargeback statements: ``GET /v1/statements`` (JSON or CSV) and the printable ``/statements`` page."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from otelspend.api.deps import Authorized, Context
from otelspend.api.errors import QueryError
from otelspend.api.params import strict_query
from otelspend.api.routes.dashboard import SECURITY_HEADERS, authorized
from otelspend.api.statement_page import render
from otelspend.finance.statements.model import MONTH, MonthStatements, month_window
from otelspend.finance.statements.service import monthly, to_csv, to_json

router = APIRouter(prefix="/v1", tags=["statements"], dependencies=[Authorized, Depends(strict_query)])
pages = APIRouter(include_in_schema=False, tags=["dashboard"])

By = Literal["team", "cost_center", "tenant"]
DESCRIPTION = """\
Monthly chargeback statements, one per owner (`by`: team, cost center or tenant) for the UTC
calendar month `month` (YYYY-MM): direct cost (calculated; the same figure as
`GET /v1/rollups?group_by=<by>&metrics=cost_usd` over that month), allocated shared costs by
pool (from the cost pools' allocations), reconciled billed cost and variance with its confidence
(null until billing has been imported), top workflows and features, and the change against the
previous month. Runs without the owner attribute are one statement with owner `""`
(unattributed), so the statements add up to `month_cost_usd` exactly. `owner` keeps one
statement. `format=csv` answers one CSV line per owner.
"""


def _current_month() -> str:
    return time.strftime("%Y-%m", time.gmtime())


def _load(store: object, month: str | None, by: str) -> MonthStatements:
    month = month or _current_month()
    if MONTH.fullmatch(month) is None:
        raise QueryError("month", f"{month!r} is not a month; expected YYYY-MM, e.g. 2026-11")
    try:
        month_window(month)
    except ValueError as exc:
        raise QueryError("month", str(exc)) from None
    return monthly(store, month, by)  # type: ignore[arg-type]


def _only(result: MonthStatements, owner: str | None) -> MonthStatements:
    if owner is None:
        return result
    found = result.owner(owner)
    if found is None:
        raise QueryError("owner", f"no statement for {result.by} {owner!r} in {result.month}")
    return MonthStatements(result.month, result.by, (found,), result.month_femto, result.previous_month,
                           result.previous_month_femto, result.notes)  # fmt: skip


@router.get("/statements", summary="Monthly chargeback statements per owner", description=DESCRIPTION)
def statements(
    ctx: Context,
    month: Annotated[str | None, Query(description="UTC month, YYYY-MM (default: the current month).")] = None,
    by: Annotated[By, Query(description="Owner dimension.")] = "team",
    owner: Annotated[str | None, Query(description="Only this owner ('' = unattributed).")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="Answer format.")] = "json",
) -> Response:
    """Every owner's monthly chargeback statement (JSON or CSV), or one owner's."""
    result = _only(_load(ctx.store, month, by), owner)
    if format == "csv":
        name = f"statements-{result.month}-{result.by}.csv"
        return Response(to_csv(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
    return JSONResponse(to_json(result))


@pages.get("/statements", response_class=HTMLResponse)
def statements_page(request: Request, ctx: Context) -> Response:
    """Every owner's statement for a month, printable (one page per owner)."""
    from otelspend.api.routes.dashboard import _error, _login_redirect

    if not authorized(request):
        return _login_redirect(request)
    params = request.query_params
    by = params.get("by", "team")
    if by not in ("team", "cost_center", "tenant"):
        return _error(request, 400, "Bad request", f"by: unknown owner dimension {by!r} (team, cost_center, tenant)")
    try:
        result = _only(_load(ctx.store, params.get("month"), by), params.get("owner"))
    except QueryError as exc:
        return _error(request, 400, "Bad request", exc.message)
    return HTMLResponse(render(result, list(result.statements), dashboard=True), headers=SECURITY_HEADERS)
