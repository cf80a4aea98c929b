"""Request errors of the query layer, answered as 422 in FastAPI's own error shape."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.responses import JSONResponse


class QueryError(ValueError):
    """A query parameter is unknown or out of range; names the parameter and what is allowed."""

    def __init__(self, parameter: str, message: str, allowed: Iterable[str] | None = None) -> None:
        self.parameter = parameter
        self.allowed = list(allowed) if allowed is not None else None
        text = f"{parameter}: {message}"
        if self.allowed is not None:
            text += f" (allowed: {', '.join(self.allowed)})"
        super().__init__(text)
        self.message = text

    def detail(self) -> dict[str, object]:
        """The error as one FastAPI-style validation item (``loc``, ``msg``, ``type``, and the allowed values)."""
        item: dict[str, object] = {"loc": ["query", self.parameter], "msg": self.message, "type": "value_error"}
        if self.allowed is not None:
            item["allowed"] = self.allowed
        return item


async def query_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Answer a QueryError with 422 and its detail, in the shape FastAPI uses for invalid parameters."""
    assert isinstance(exc, QueryError)
    return JSONResponse({"detail": [exc.detail()]}, status_code=422)
