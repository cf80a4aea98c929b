"""What both transports do with a request body: authenticate, decode, normalise, make it
durable through a BatchSink, and say how it went (OTLP partial success)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from otelspend.metrics import Metrics
from otelspend.receiver import errors
from otelspend.receiver.decode import Decoded, UndecodableRequest, decode_json, decode_protobuf
from otelspend.receiver.normalize import NormalizedBatch, Normalizer
from otelspend.receiver.sink import AcceptedRequest, BatchSink
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
        normalizer: Normalizer,
        sink: BatchSink,
        metrics: Metrics,
        tokens: Sequence[IngestToken] = (),
        retry_after_seconds: int = 2,
    ) -> None:
        self.normalizer = normalizer
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

    def decode(self, payload: bytes, *, json_body: bool) -> Decoded:
        """The request decoded from protobuf or JSON; ExportError (400) when it is not OTLP at all."""
        try:
            return decode_json(payload) if json_body else decode_protobuf(payload)
        except UndecodableRequest as exc:
            raise errors.undecodable(str(exc)) from None

    def export(self, payload: bytes, *, json_body: bool, token: str, transport: str) -> ExportResult:
        """Accept one export request; raises ExportError for a whole-request failure."""
        try:
            decoded = self.decode(payload, json_body=json_body)
        except errors.ExportError:
            self.metrics.inc("otelspend_requests_total", transport=transport, result="undecodable")
            raise
        batch = self.normalizer.normalize(decoded.request, ingest_token=token)
        received = len(batch.rows) + batch.rejected + decoded.rejected
        self.metrics.inc("otelspend_spans_received_total", received, transport=transport)
        if batch.rows:
            self._accept(payload, json_body, token, batch, transport)
        rejected = decoded.rejected + batch.rejected
        if rejected:
            self.metrics.inc("otelspend_spans_rejected_total", rejected, transport=transport)
        self.metrics.inc("otelspend_requests_total", transport=transport, result="ok" if not rejected else "partial")
        message = "; ".join(part for part in ("; ".join(decoded.errors), batch.error_message) if part)
        return ExportResult(len(batch.rows), rejected, message)

    def _accept(self, payload: bytes, json_body: bool, token: str, batch: NormalizedBatch, transport: str) -> None:
        count = len(batch.rows)
        refusal = self.sink.reserve(count)
        if refusal is not None:
            self.metrics.inc("otelspend_requests_refused_total", transport=transport)
            raise errors.unavailable(refusal, self.retry_after)
        try:
            self.sink.submit(AcceptedRequest(payload, json_body, token, batch.rows, batch.resources))
        except OSError as exc:
            self.sink.release(count)
            self.metrics.inc("otelspend_requests_refused_total", transport=transport)
            raise errors.unavailable(f"write-ahead log: {exc.strerror}", self.retry_after) from None
        self.metrics.inc("otelspend_spans_accepted_total", count, transport=transport)

    def replay(self, payload: bytes, *, json_body: bool, token: str) -> NormalizedBatch | None:
        """Normalise a logged request again (crash recovery); None if it no longer decodes."""
        try:
            decoded = self.decode(payload, json_body=json_body)
        except errors.ExportError:
            return None
        return self.normalizer.normalize(decoded.request, ingest_token=token)
