"""Dependencies shared by the API routes (``Annotated`` aliases)."""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from otelspend.api.commands import Commands
from otelspend.clickhouse.client import Store
from otelspend.enrich.pricing import PriceBook
from otelspend.finance.allocation.pools import CostRules, load_cost_rules
from otelspend.metrics import Metrics
from otelspend.redact import RejectedCredentials
from otelspend.settings import Settings


@dataclass
class ApiContext:
    """What the API reads from: the store, the running pipeline (for outcomes), settings."""

    settings: Settings
    store: Store
    metrics: Metrics
    commands: Commands | None = None
    """The running pipeline's commands; None when serving a stored ledger read-only."""
    refusals: RejectedCredentials = field(default_factory=lambda: RejectedCredentials("API"), repr=False)
    """Requests refused for a missing or unknown token: logged at most once a minute, never the token."""
    _book: PriceBook | None = field(default=None, repr=False)
    _rules: CostRules | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cost_rules(self) -> CostRules:
        """The cost pools and units in force: the running app's, else loaded once from the settings."""
        if self.commands is not None:
            return self.commands.cost_rules()
        with self._lock:
            if self._rules is None:
                self._rules = load_cost_rules(self.settings.cost_pools)
            return self._rules

    def price_book(self) -> PriceBook:
        """The rate cards in force: the running app's, else loaded once from the settings."""
        if self.commands is not None:
            return self.commands.price_book()
        with self._lock:
            if self._book is None:
                self._book = PriceBook.from_file(self.settings.rate_card)
            return self._book


def get_context(request: Request) -> ApiContext:
    """The running API's context (set on the app's state when the app is built)."""
    context: ApiContext = request.app.state.context  # Starlette's state is untyped
    return context


_bearer = HTTPBearer(auto_error=False)


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Bearer-token auth when ``api.tokens`` is set (a ``token`` cookie also works for the dashboard)."""
    context: ApiContext = request.app.state.context
    tokens = context.settings.api.tokens
    if not tokens:
        return
    presented = credentials.credentials if credentials else request.cookies.get("otelspend_token", "")
    if presented and any(hmac.compare_digest(presented.encode(), t.get_secret_value().encode()) for t in tokens):
        return
    reason = "unknown" if presented else "missing"
    context.metrics.inc("otelspend_auth_refused_total", surface="api", reason=reason)
    context.refusals.refused(reason)
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


Context = Annotated[ApiContext, Depends(get_context)]
Authorized = Depends(require_token)
