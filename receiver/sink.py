"""What the receiver hands accepted spans to: a small protocol it defines itself.

The receiver decodes and normalises; whatever implements ``BatchSink`` (the pipeline)
makes the request durable and processes it. The order is the OTLP contract's: ``reserve``
room first (else answer UNAVAILABLE / 503 with the reason), then ``submit`` (durable when
it returns, so the request may be acknowledged), or ``release`` the room if the request
cannot be made durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Resources = dict[int, tuple[str, list[tuple[str, str]]]]
"""resource_id -> (service name, attribute pairs), resources first seen in a request."""


@dataclass(frozen=True)
class AcceptedRequest:
    """One export request's accepted spans, with the raw bytes that make it replayable."""

    payload: bytes
    json_body: bool
    token: str
    """Ingest-token name (never the secret) the request authenticated with."""
    rows: list[list[Any]]
    """Normalised span rows (``otelspend.record.F``); the sink owns them after submit."""
    resources: Resources


class BatchSink(Protocol):
    """Where accepted spans go (implemented by ``otelspend.pipeline.stage.Pipeline``)."""

    def reserve(self, spans: int) -> str | None:
        """Claim room for ``spans``: None when claimed, else why not (starting, store down, full)."""
        ...

    def submit(self, request: AcceptedRequest) -> None:
        """Make the request durable, then queue it; raises ``OSError`` when it cannot be made durable."""
        ...

    def release(self, spans: int) -> None:
        """Give back room claimed by ``reserve`` for a request that was not submitted."""
        ...
