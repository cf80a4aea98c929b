"""Dependencies shared by the API routes (``Annotated`` aliases)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from otelspend.clickhouse.client import Store
from otelspend.metrics import Metrics
from otelspend.settings import Settings


@dataclass
class ApiContext:
    """What the API reads from: the store, the running pipeline (for outcomes), settings."""

    settings: Settings
    store: Store
    metrics: Metrics
    app: Any = None
    """The running OtelSpend (pipeline, pricing, readiness); None when serving read-only."""


def get_context(request: Request) -> ApiContext:
    return request.app.state.context


_bearer = HTTPBearer(auto_error=False)


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Bearer-token auth when ``api.tokens`` is set (a ``token`` cookie also works for the dashboard)."""
    tokens: list[str] = request.app.state.context.settings.api.tokens
    if not tokens:
        return
    presented = credentials.credentials if credentials else request.cookies.get("otelspend_token", "")
    if presented and any(hmac.compare_digest(presented.encode(), t.encode()) for t in tokens):
        return
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


Context = Annotated[ApiContext, Depends(get_context)]
Authorized = Depends(require_token)
