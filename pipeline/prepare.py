"""Prepare an export request for the pipeline: decode, normalise, price, Arrow, compact spans.

Everything a request needs before the pipeline thread sees it, as one function of the request
bytes (plus the rate card in force and the clock): it runs in the receiving thread
(``pipeline.workers: 0``), in a receiver worker process (``pipeline/workers.py``), or again
at crash recovery on a logged request. The pipeline thread then only drops duplicates,
stitches the compact spans and hands the Arrow table to the store writer: no Python object
per span is built twice, and the Arrow table crosses from a worker as Arrow IPC.

Decoding and normalising come first: a request that does not decode fails whole, invalid
spans are rejected one by one (OTLP partial success). Pricing and Arrow building run on the
accepted spans only; if they fail (a bug, not bad input) the request is still made durable
and acknowledged, and the pipeline keeps it in the write-ahead log for the next start, as it
does for a batch it fails on (``PreparedBatch.failure``).
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.columnar import table_from_rows
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import initial_role
from otelspend.pipeline.errors import describe
from otelspend.receiver.decode import decode_json, decode_protobuf
from otelspend.receiver.normalize import NormalizedBatch, Normalizer
from otelspend.receiver.sink import Prepared, Resources
from otelspend.record import SPAN_COLUMNS, F, lite_from_row

Span = tuple[Any, ...]
"""A compact span (``otelspend.record.L`` indexes), what the stitcher keeps."""

_SHARED_TEXT = tuple(
    getattr(F, name)
    for name in (
        "trace_id", "parent_span_id", "name", "status_code", "status_message", "service_name", "span_class",
        "operation", "provider", "model", "agent_name", "tool_name", "response_id", "error_type", "http_method",
        "outcome", "outcome_label", "workflow_id", "workflow_type", "tenant", "customer", "feature", "user",
        "environment", "prompt_version", "ingest_token", "unpriced_reason", "call_role", "scope_name",
    )
)  # fmt: skip
"""Text slots of the compact span whose values repeat within a request (a trace's id, model,
provider, business keys): one string object per distinct value, so the compact spans take
less memory in the stitcher and cross from a worker once per value (``marshal`` writes a
shared object once)."""


@dataclass
class PreparedBatch:
    """One request's accepted spans, ready for the pipeline thread."""

    count: int
    """Spans accepted (room reserved in the ingest queue for this many)."""
    spans: pa.Table | None
    """The rows in ``SPAN_COLUMNS`` order: priced, ``ingested_at`` / ``ingest_node`` /
    ``version`` / ``call_role`` filled; None when preparing failed."""
    lite: list[Span] | bytes = field(default_factory=list)
    """Compact span per row, same order; attributes kept on root spans only (runs read no others).
    From a worker: still ``marshal``-ed (compact while queued), see ``compact_spans``."""
    resources: Resources = field(default_factory=dict)
    ingested_ns: int = 0
    """When the spans were accepted: their ``ingested_at`` and the stitcher's dirty mark."""
    failure: str | None = None
    """Why pricing or Arrow building failed (a bug): the pipeline counts it and leaves the
    request in the write-ahead log, unstored, for the next start."""
    cpu_seconds: float = 0.0
    """Thread CPU time preparing took (``otelspend_cpu_seconds_total{stage="prepare"}``)."""


def compact_spans(batch: PreparedBatch) -> list[Span]:
    """The batch's compact spans, unpacked if they came from a worker (the pipeline thread)."""
    lite = batch.lite
    if isinstance(lite, bytes):
        spans: list[Span] = marshal.loads(lite)
        return spans
    return lite


def prepared_request(
    normalized: NormalizedBatch, decode_rejected: int, decode_errors: list[str], batch: PreparedBatch | None
) -> Prepared:
    """The receiver's view of a prepared request: counts, partial-success message, the batch."""
    message = "; ".join(part for part in ("; ".join(decode_errors), normalized.error_message) if part)
    return Prepared(len(normalized.rows), decode_rejected + normalized.rejected, message, batch)


class Preparer:
    """Decode, normalise, price and build Arrow for one request (``receiver.sink.Preparer``).

    Thread-safe: the normaliser keeps no per-request state and a ``PriceBook`` is immutable;
    ``price_book`` is asked once per request, so a request is priced by one card version.
    """

    def __init__(
        self,
        normalizer: Normalizer,
        price_book: Callable[[], PriceBook],
        *,
        node: str,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.normalizer = normalizer
        self.price_book = price_book
        self.node = node
        self.clock_ns = clock_ns

    def prepare(self, payload: bytes, *, json_body: bool, token: str) -> Prepared:
        """Raises ``receiver.decode.UndecodableRequest`` when the body is no OTLP request at all."""
        started = time.thread_time()
        decoded = decode_json(payload) if json_body else decode_protobuf(payload)
        normalized = self.normalizer.normalize(decoded.request, ingest_token=token)
        batch = self.finish(normalized) if normalized.rows else None
        if batch is not None:
            batch.cpu_seconds = time.thread_time() - started
        return prepared_request(normalized, decoded.rejected, decoded.errors, batch)

    def finish(self, normalized: NormalizedBatch) -> PreparedBatch:
        """Price the rows, build the Arrow table and the compact spans (the rows die here)."""
        rows = normalized.rows
        now = self.clock_ns()
        try:
            node = self.node
            for row in rows:
                row[F.ingested_at] = now
                row[F.ingest_node] = node
                row[F.version] = 1
            # A span's resource always comes in its own request: charge entries that match on
            # resource attributes need nothing beyond the request.
            resources = {rid: dict(pairs) for rid, (_, pairs) in normalized.resources.items()}
            self.price_book().price_rows(rows, resources.get)
            for row in rows:
                # plain text: it crosses as marshal; a priced span other than a model call is a charge
                row[F.call_role] = initial_role(row[F.span_class], row[F.cost_kind]).value
            table = table_from_rows(SPAN_COLUMNS, rows)
            shared: dict[str, str] = {}
            share = shared.setdefault
            for row in rows:
                if row[F.parent_span_id]:
                    row[F.attributes] = None  # stored now; runs only ever read their root's attributes
                for index in _SHARED_TEXT:
                    value = row[index]
                    if value:
                        row[index] = share(value, value)
            lite = list(map(lite_from_row, rows))
        except Exception as exc:
            return PreparedBatch(len(rows), None, [], normalized.resources, now, describe(exc))
        return PreparedBatch(len(rows), table, lite, normalized.resources, now)
