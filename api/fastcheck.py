"""The decision endpoint's fast path: ``GET /v1/controls/check`` answered below FastAPI's routing.

A gateway asks before every model call, so this answer must cost microseconds, and most of
a FastAPI request's cost (about 0.5 ms measured: dependency solving, parameter validation,
the thread pool for sync dependencies) is machinery this one request does not need. This
ASGI middleware answers it directly with the same contract as the documented route
(``otelspend.api.routes.controls.check``): bearer token (or the dashboard cookie), only the
declared parameters (an unknown one is a 422 naming it and the allowed ones), values up to
256 characters, 503 when the controls are not running. Every other request passes through.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from otelspend.api.deps import ApiContext

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/v1/controls/check"
PARAMETERS = ("tenant", "customer", "feature", "workflow_type", "environment", "team", "user", "model", "provider",
              "run_id")  # fmt: skip
MAX_VALUE = 256
_JSON = [(b"content-type", b"application/json")]


class CheckFastPath:
    """ASGI middleware answering ``GET /v1/controls/check`` from the controls' memory."""

    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the decision endpoint here; pass every other request on."""
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        status, body, extra = self.answer(scope)
        headers = [*_JSON, (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def answer(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, JSON body and extra headers for one check."""
        if not self._authorized(scope):
            detail = {"detail": "missing or invalid bearer token"}
            return 401, _dump(detail), [(b"www-authenticate", b"Bearer")]
        values: dict[str, str] = {}
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if key not in PARAMETERS:
                message = f"{key}: unknown query parameter (allowed: {', '.join(sorted(PARAMETERS))})"
                item = {"loc": ["query", key], "msg": message, "type": "value_error", "allowed": sorted(PARAMETERS)}
                return 422, _dump({"detail": [item]}), []
            if len(value) > MAX_VALUE:
                item = {
                    "loc": ["query", key],
                    "msg": f"{key}: longer than {MAX_VALUE} characters",
                    "type": "value_error",
                }
                return 422, _dump({"detail": [item]}), []
            values[key] = value
        commands = self.context.commands
        controls = commands.controls() if commands is not None else None
        if controls is None:
            detail = {"detail": "the spend controls are not running here (controls.enabled)"}
            return 503, _dump(detail), []
        run_id = values.pop("run_id", "").lower()
        return 200, _dump(controls.check(values, run_id)), []

    def _authorized(self, scope: Scope) -> bool:
        tokens = self.context.settings.api.tokens
        if not tokens:
            return True
        presented = ""
        cookies = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    presented = token.strip()
            elif name == b"cookie":
                cookies = value
        if not presented and cookies:
            for part in cookies.decode("latin-1").split(";"):
                key, _, value = part.strip().partition("=")
                if key == "otelspend_token":
                    presented = value
        if presented and any(hmac.compare_digest(presented.encode(), t.get_secret_value().encode()) for t in tokens):
            return True
        reason = "unknown" if presented else "missing"  # as deps.require_token counts and logs refusals
        self.context.metrics.inc("otelspend_auth_refused_total", surface="api", reason=reason)
        self.context.refusals.refused(reason)
        return False


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
