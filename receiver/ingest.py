"""What both transports do with a request body: authenticate, prepare (decode, normalise, ...),
make it durable through a BatchSink, and say how it went (OTLP partial success)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from otelspend.metrics import Metrics
from otelspend.receiver import errors
from otelspend.receiver.decode import UndecodableRequest
from otelspend.receiver.sink import AcceptedRequest, BatchSink, Prepared, Preparer, SinkUnavailable
from otelspend.redact import RejectedCredentials
from otelspend.settings import IngestToken


@dataclass(frozen=True)
class ExportResult:
    """The answer to an accepted export request: spans accepted, spans rejected and why (partial success)."""

    accepted: int
    rejected: int
    message: str


class Ingest:
    """One export request end to end, shared by both transports: authenticate, decode, normalise,
    hand the rows to the sink (durable before it returns), answer with partial success.
    """

    def __init__(
        self,
        *,
        preparer: Preparer,
        sink: BatchSink,
        metrics: Metrics,
        tokens: Sequence[IngestToken] = (),
        retry_after_seconds: int = 2,
    ) -> None:
        self.preparer = preparer
        self.sink = sink
        self.metrics = metrics
        self.tokens = tuple(tokens)
        self.retry_after = retry_after_seconds
        self.refusals = RejectedCredentials("OTLP")

    def authenticate(self, authorization: str | None) -> str:
        """Token name for an ``Authorization`` header value; '' when auth is off."""
        if not self.tokens:
            return ""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and secret:
            for token in self.tokens:
                if hmac.compare_digest(token.token.get_secret_value().encode(), secret.strip().encode()):
                    return token.name
        reason = "unknown" if authorization else "missing"
        self.metrics.inc("otelspend_auth_refused_total", surface="otlp", reason=reason)
        self.refusals.refused(reason)
        raise errors.unauthenticated()

    def export(self, payload: bytes, *, json_body: bool, token: str, transport: str) -> ExportResult:
        """Accept one export request; raises ExportError for a whole-request failure."""
        refusal = self.sink.refusal()  # before any work: a refused request costs no decoding
        if refusal is not None:
            self._refused(refusal, transport)
        try:
            prepared = self.preparer.prepare(payload, json_body=json_body, token=token)
        except UndecodableRequest as exc:
            self.metrics.inc("otelspend_requests_total", transport=transport, result="undecodable")
            raise errors.undecodable(str(exc)) from None
        except SinkUnavailable as exc:
            self._refused(str(exc), transport)
        self.metrics.inc("otelspend_spans_received_total", prepared.accepted + prepared.rejected, transport=transport)
        if prepared.accepted:
            self._accept(payload, json_body, token, prepared, transport)
        if prepared.rejected:
            self.metrics.inc("otelspend_spans_rejected_total", prepared.rejected, transport=transport)
        result = "ok" if not prepared.rejected else "partial"
        self.metrics.inc("otelspend_requests_total", transport=transport, result=result)
        return ExportResult(prepared.accepted, prepared.rejected, prepared.message)

    def _accept(self, payload: bytes, json_body: bool, token: str, prepared: Prepared, transport: str) -> None:
        count = prepared.accepted
        refusal = self.sink.reserve(count)
        if refusal is not None:
            self._refused(refusal, transport)
        try:
            self.sink.submit(AcceptedRequest(payload, json_body, token, count, prepared.batch))
        except OSError as exc:
            self.sink.release(count)
            self._refused(f"write-ahead log: {exc.strerror}", transport)
        self.metrics.inc("otelspend_spans_accepted_total", count, transport=transport)

    def _refused(self, reason: str, transport: str) -> NoReturn:
        self.metrics.inc("otelspend_requests_refused_total", transport=transport)
        raise errors.unavailable(reason, self.retry_after)
