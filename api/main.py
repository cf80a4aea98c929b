"""Assemble the FastAPI application: routers, auth, OpenAPI."""

from __future__ import annotations

from fastapi import FastAPI

from otelspend import __version__
from otelspend.api.deps import ApiContext
from otelspend.api.errors import QueryError, query_error_handler
from otelspend.api.fastcheck import CheckFastPath
from otelspend.api.routes import (
    admin,
    alerts,
    billing,
    budgets,
    catalog,
    controls,
    costs,
    dashboard,
    export,
    health,
    maintenance,
    outcomes,
    rollups,
    runs,
    statements,
)

DESCRIPTION = """\
otelspend serves the AI-spend ledger built from OpenTelemetry traces: rollups by workflow,
agent, model, tool, tenant, feature and more; runs with their span trees and per-span cost;
outliers; unpriced calls; the rate cards in force; outcomes.

Authenticate with `Authorization: Bearer <token>` when `api.tokens` is configured.

Windows are `[from, to)` over run start times (RFC 3339, UTC); money is a decimal string
with 15 decimals (exact to 1e-15 USD); an unknown dimension, metric, parameter or a bad
window is a 422 naming the parameter and the allowed values. `GET /v1/vocabulary` lists
every dimension and metric.
"""


def create_app(context: ApiContext) -> FastAPI:
    """The API and dashboard for one running process (or a read-only store): routers, error handlers."""
    app = FastAPI(title="otelspend", version=__version__, description=DESCRIPTION)
    app.state.context = context
    app.include_router(health.router)
    app.include_router(admin.router)
    for module in (rollups, runs, outcomes, catalog, maintenance, billing, costs, export, statements):
        app.include_router(module.router)
    for module in (controls, budgets, alerts):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    app.include_router(statements.pages)
    app.add_exception_handler(QueryError, query_error_handler)
    app.add_middleware(CheckFastPath, context=context)  # the decision endpoint, answered in microseconds
    return app
