"""What the receiver hands accepted spans to: small protocols it defines itself.

The receiver authenticates, speaks the protocol and counts; a ``Preparer`` turns the request
bytes into accepted spans (decode, normalise, and whatever its owner adds: pricing, Arrow),
and a ``BatchSink`` (the pipeline) makes the request durable and processes it. The order is
the OTLP contract's: ``prepare``, then ``reserve`` room (else answer UNAVAILABLE / 503 with
the reason), then ``submit`` (durable when it returns, so the request may be acknowledged),
or ``release`` the room if the request cannot be made durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Resources = dict[int, tuple[str, list[tuple[str, str]]]]
"""resource_id -> (service name, attribute pairs), resources first seen in a request."""


class SinkUnavailable(RuntimeError):
    """The request cannot be handled right now (e.g. a receiver worker failed on it); retryable."""


@dataclass(frozen=True)
class Prepared:
    """A request decoded and normalised: how many spans were accepted and rejected, and why."""

    accepted: int
    rejected: int
    message: str
    """The partial-success message ('' when nothing was rejected)."""
    batch: Any
    """The preparer's own form of the accepted spans (None when none); the sink takes it."""


class Preparer(Protocol):
    """Turns request bytes into a ``Prepared`` (implemented by ``otelspend.pipeline.prepare``)."""

    def prepare(self, payload: bytes, *, json_body: bool, token: str) -> Prepared:
        """Raises ``receiver.decode.UndecodableRequest`` for a body that is no OTLP request,
        ``SinkUnavailable`` when it cannot be prepared now."""
        ...


@dataclass(frozen=True)
class AcceptedRequest:
    """One export request's accepted spans, with the raw bytes that make it replayable."""

    payload: bytes
    json_body: bool
    token: str
    """Ingest-token name (never the secret) the request authenticated with."""
    spans: int
    """Spans accepted (room was reserved for this many)."""
    batch: Any
    """The preparer's form of the spans (``Prepared.batch``); the sink owns it after submit."""


class BatchSink(Protocol):
    """Where accepted spans go (implemented by ``otelspend.pipeline.stage.Pipeline``)."""

    def refusal(self) -> str | None:
        """Why a request would be refused right now (store down, shutting down, queue full),
        without claiming room: lets receivers refuse before preparing. None: go ahead."""
        ...

    def reserve(self, spans: int) -> str | None:
        """Claim room for ``spans``: None when claimed, else why not (starting, store down, full)."""
        ...

    def submit(self, request: AcceptedRequest) -> None:
        """Make the request durable, then queue it; raises ``OSError`` when it cannot be made durable."""
        ...

    def release(self, spans: int) -> None:
        """Give back room claimed by ``reserve`` for a request that was not submitted."""
        ...
