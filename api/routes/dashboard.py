"""The web dashboard: HTML pages rendered with Jinja2 on the API's port, no JavaScript.

Pages (each takes ``range=24h|7d|30d``, default 7d): ``/`` overview, ``/workflows``,
``/tenants`` (tenants and features), ``/agents`` (agents, tools, models), ``/outliers``,
``/unpriced``, ``/runs`` (sortable, filterable with ``filter.<dimension>``, paged) and
``/runs/{run_id}`` (the span tree). Data comes from ``otelspend.api.pages``, which calls
the query layer in-process. With ``api.tokens`` set, pages need the same token as the API:
a bearer header, or the ``otelspend_token`` cookie that ``/login`` sets. Stylesheet and
icon are package files served from ``/static/``; a Content-Security-Policy allows nothing
else, so a page can never fetch from elsewhere.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from otelspend import __version__
from otelspend.api import controls_pages, cost_pages, display, pages
from otelspend.api import reconciliation_pages as recon_pages
from otelspend.api.deps import Context, require_token
from otelspend.api.errors import QueryError
from otelspend.api.requests import check_filters

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
COOKIE = "otelspend_token"
"""The cookie ``require_token`` accepts in place of a bearer header."""
MAX_LOGIN_BODY = 4096
RUN_ID = re.compile(r"[0-9a-fA-F]{32}")
FILTER_PREFIX = "filter."

SECURITY_HEADERS = {
    # Nothing but this origin's stylesheet and icon; no script at all.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NAV = (
    ("/", "Overview"),
    ("/workflows", "Workflows"),
    ("/tenants", "Tenants & features"),
    ("/agents", "Agents & tools"),
    ("/outliers", "Outliers"),
    ("/unpriced", "Unpriced"),
    ("/reconciliation", "Reconciliation"),
    ("/cost-to-serve", "Cost to serve"),
    ("/runs", "Runs"),
    ("/alerts", "Alerts"),
    ("/budgets", "Budgets"),
    ("/statements", "Statements"),
)

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    usd=display.usd,
    count=display.count,
    compact=display.compact,
    percent=display.percent,
    number=display.number,
    duration=display.duration_ms,
    when=display.when,
    day=display.day,
    is_zero=lambda value: value is not None and display.to_decimal(value) == 0,
)
environment.globals.update(version=__version__, link=pages.link)

router = APIRouter(include_in_schema=False, tags=["dashboard"])


# -- rendering and access ---------------------------------------------------------------------


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A template as an HTML response with the dashboard's security headers."""
    html = environment.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def authorized(request: Request) -> bool:
    """The API's own check (``require_token``): a bearer header or the token cookie."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None
    try:
        require_token(request, credentials)
    except HTTPException:
        return False
    return True


def _auth_enabled(request: Request) -> bool:
    return bool(request.app.state.context.settings.api.tokens)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


def _chrome(request: Request, active: str, period: pages.Period | None, *, show_range: bool = True) -> dict[str, Any]:
    """What every page's frame needs: navigation, range links, the window shown."""
    key = period.key if period else pages.DEFAULT_RANGE
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("range", "offset")]
    return {
        "nav": [
            {"href": f"{path}?{urlencode({'range': key})}", "label": label, "active": path == active}
            for path, label in NAV
        ],
        "range_links": [
            {
                "href": f"{request.url.path}?{urlencode([('range', r.key), *kept])}",
                "label": r.label,
                "key": r.key,
                "current": r.key == key,
            }
            for r in pages.RANGES.values()
        ],
        "period": period if show_range else None,
        "window": period.window.describe() if period and show_range else None,
        "auth_enabled": _auth_enabled(request),
    }


def _error(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(
        "error.html", status_code, title=title, message=message, status=status_code, **_chrome(request, "", None)
    )


def _page(
    request: Request, template: str, title: str, active: str, build: Callable[[pages.Period], dict[str, Any]]
) -> Response:
    if not authorized(request):
        return _login_redirect(request)
    try:
        period = pages.period(request.query_params.get("range"), time.time_ns())
        data = build(period)
    except QueryError as exc:
        return _error(request, 400, "Bad request", exc.message)
    return render(template, title=title, **{**_chrome(request, active, period), **data})


# -- pages ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, ctx: Context) -> Response:
    """Dashboard: spend, runs and the top workflows, tenants and models of the period."""
    return _page(request, "overview.html", "Overview", "/", lambda p: pages.overview(ctx.store, p))


@router.get("/workflows", response_class=HTMLResponse)
def workflows(request: Request, ctx: Context) -> Response:
    """Dashboard: cost, success and cost per success per workflow type."""
    return _page(request, "workflows.html", "Workflows", "/workflows", lambda p: pages.workflows(ctx.store, p))


@router.get("/tenants", response_class=HTMLResponse)
def tenants(request: Request, ctx: Context) -> Response:
    """Dashboard: spend by tenant and feature, and tenant x model."""
    return _page(request, "tenants.html", "Tenants & features", "/tenants", lambda p: pages.tenants(ctx.store, p))


@router.get("/agents", response_class=HTMLResponse)
def agents(request: Request, ctx: Context) -> Response:
    """Dashboard: agents, tools and models."""
    return _page(request, "agents.html", "Agents, tools & models", "/agents", lambda p: pages.agents(ctx.store, p))


@router.get("/outliers", response_class=HTMLResponse)
def outliers(request: Request, ctx: Context) -> Response:
    """Dashboard: the outlier report."""
    return _page(request, "outliers.html", "Outliers", "/outliers", lambda p: pages.outliers_page(ctx.store, p))


@router.get("/unpriced", response_class=HTMLResponse)
def unpriced(request: Request, ctx: Context) -> Response:
    """Dashboard: calls stored without a price and why."""
    return _page(request, "unpriced.html", "Unpriced calls", "/unpriced", lambda p: pages.unpriced_page(ctx.store, p))


@router.get("/alerts", response_class=HTMLResponse)
def alerts(request: Request, ctx: Context) -> Response:
    """The Alerts page: recent alert events and their deliveries."""
    return _page(request, "alerts.html", "Alerts", "/alerts", lambda p: controls_pages.alerts_page(ctx.store, p))


@router.get("/budgets", response_class=HTMLResponse)
def budgets(request: Request, ctx: Context) -> Response:
    """The Budgets page: every budget with spend, forecast and status."""
    if not authorized(request):
        return _login_redirect(request)
    controls = ctx.commands.controls() if ctx.commands is not None else None
    data = controls_pages.budgets_page(controls)
    return render("budgets.html", title="Budgets", **_chrome(request, "/budgets", None, show_range=False), **data)


@router.get("/reconciliation", response_class=HTMLResponse)
def reconciliation(request: Request, ctx: Context) -> Response:
    """The Reconciliation page: ledger against bill per day, provider and cell."""
    provider = request.query_params.get("provider", "")[:200]
    day = request.query_params.get("day", "")[:10]

    def build(period: pages.Period) -> dict[str, Any]:
        if day and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise QueryError("day", f"{day!r} is not a date (YYYY-MM-DD)")
        # The page says which billing periods it covers (whole UTC days), not run start times.
        return {"window": None, **recon_pages.reconciliation_page(ctx.store, period, provider=provider, day=day)}

    return _page(request, "reconciliation.html", "Reconciliation", "/reconciliation", build)


@router.get("/reconciliation/cell", response_class=HTMLResponse)
def reconciliation_cell(request: Request, ctx: Context) -> Response:
    """One reconciled cell: quantities, prices, causes and the runs behind it."""
    if not authorized(request):
        return _login_redirect(request)
    params = request.query_params
    try:
        day = dt.date.fromisoformat(params.get("day", ""))
    except ValueError:
        return _error(request, 400, "Bad request", "day: expected a date (YYYY-MM-DD)")
    found = recon_pages.cell_page(
        ctx.store,
        day=day,
        provider=params.get("provider", "")[:200],
        model=params.get("model", "")[:500],
        account=params.get("account", "")[:200],
    )
    if found is None:
        return _error(request, 404, "Cell not found", "No reconciled cell has this day, provider, model and account.")
    try:
        period = pages.period(params.get("range"), time.time_ns())
    except QueryError:
        period = pages.period(None, time.time_ns())
    chrome = _chrome(request, "/reconciliation", period, show_range=False)
    return render("reconciliation_cell.html", title="Reconciliation cell", **chrome, **found)


@router.get("/cost-to-serve", response_class=HTMLResponse)
def cost_to_serve(request: Request, ctx: Context) -> Response:
    """Dashboard: per tenant or customer, direct and allocated cost, revenue and margin."""
    by = request.query_params.get("by", "tenant")

    def build(period: pages.Period) -> dict[str, Any]:
        if by not in ("tenant", "customer"):
            raise QueryError("by", f"unknown value {by!r}", ("tenant", "customer"))
        chosen: cost_pages.By = "customer" if by == "customer" else "tenant"
        horizon = int(ctx.settings.runs.late_horizon_hours * 3600 * 10**9)
        return cost_pages.cost_to_serve(ctx.store, ctx.cost_rules(), period, chosen, late_horizon_ns=horizon)

    return _page(request, "cost_to_serve.html", "Cost to serve", "/cost-to-serve", build)


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request, ctx: Context) -> Response:
    """Dashboard: runs of the period, filtered and sorted as the query string says, a page at a time."""
    params = request.query_params

    def build(period: pages.Period) -> dict[str, Any]:
        raw: dict[str, list[str]] = {}
        for key, value in params.multi_items():
            if key.startswith(FILTER_PREFIX) and value:
                raw.setdefault(key[len(FILTER_PREFIX) :], []).append(value)
        offset = params.get("offset", "0")
        if not offset.isdigit():
            raise QueryError("offset", f"{offset!r} is not a non-negative integer")
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise QueryError("order", f"unknown order {order!r}", ("asc", "desc"))
        return pages.runs_page(
            ctx.store,
            period,
            filters=check_filters(raw),
            order_by=params.get("order_by", "cost_usd"),
            descending=order == "desc",
            offset=int(offset),
        )

    return _page(request, "runs.html", "Runs", "/runs", build)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, ctx: Context, run_id: str) -> Response:
    """Dashboard: one run, its breakdown and span waterfall (404 page when unknown)."""
    if not authorized(request):
        return _login_redirect(request)
    found = pages.run_page(ctx.store, run_id.lower()) if RUN_ID.fullmatch(run_id) else None
    if found is None:
        return _error(request, 404, "Run not found", f"No run and no span has the id {run_id!r}.")
    try:
        period = pages.period(request.query_params.get("range"), time.time_ns())
    except QueryError:
        period = pages.period(None, time.time_ns())
    return render("run.html", title="Run", **_chrome(request, "/runs", period, show_range=False), **found)


# -- sign-in ------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only paths on this site (no ``//host`` or scheme): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    """The sign-in form (straight to the page asked for when the API needs no token)."""
    next_page = _safe_next(request.query_params.get("next"))
    if not _auth_enabled(request):
        return RedirectResponse(next_page, status_code=303)
    return render("login.html", title="Sign in", next=next_page, failed=False, **_chrome(request, "", None))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the posted API token; on success set the session cookie and go to the page asked for."""
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        return _error(request, 413, "Request too large", "The sign-in form is larger than expected.")
    form = parse_qs(body.decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    next_page = _safe_next((form.get("next") or ["/"])[0])
    if not _auth_enabled(request):
        return RedirectResponse(next_page, status_code=303)
    try:
        # An empty token would fall back to the cookie: refuse it before asking.
        if not token:
            raise HTTPException(status_code=401)
        require_token(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))
    except HTTPException:
        return render("login.html", 401, title="Sign in", next=next_page, failed=True, **_chrome(request, "", None))
    response = RedirectResponse(next_page, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    """Clear the session cookie and go to the sign-in form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- package files ----------------------------------------------------------------------------

_STATIC_FILES = {path.name: path for path in STATIC.iterdir() if path.suffix in STATIC_TYPES}


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The stylesheet and icon shipped in the package (a fixed list: no path is ever joined)."""
    path = _STATIC_FILES.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        path,
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
