"""Assemble the FastAPI application: routers, auth, OpenAPI."""

from __future__ import annotations

from fastapi import FastAPI

from otelspend import __version__
from otelspend.api.deps import ApiContext
from otelspend.api.routes import health

DESCRIPTION = """\
otelspend serves the AI-spend ledger built from OpenTelemetry traces: rollups by workflow,
agent, model, tool, tenant, feature and more; runs with their span trees and per-span cost;
outliers; unpriced calls; the rate cards in force; outcomes.

Authenticate with `Authorization: Bearer <token>` when `api.tokens` is configured.
"""


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(title="otelspend", version=__version__, description=DESCRIPTION)
    app.state.context = context
    app.include_router(health.router)
    return app
