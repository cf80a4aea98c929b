"""Preparing a request: decode, normalise, price, Arrow and compact spans, one function of the bytes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bench.traces import generate
from otelspend.clickhouse.columnar import table_from_rows
from otelspend.conventions import load_conventions
from otelspend.enrich.charges import ResourceLookup
from otelspend.enrich.pricing import PriceBook
from otelspend.pipeline.prepare import PreparedBatch, Preparer, compact_spans
from otelspend.receiver.decode import UndecodableRequest, decode_protobuf
from otelspend.receiver.normalize import Normalizer
from otelspend.record import LITE_FIELDS, SPAN_COLUMNS, L, lite_from_row

NOW = 1_800_000_000_000_000_000


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.from_file(None)


@pytest.fixture(scope="module")
def request_bytes() -> bytes:
    return generate(seed=5, spans=300, batch_spans=300).requests[0].payload


def _preparer(book: PriceBook) -> Preparer:
    return Preparer(Normalizer(load_conventions()), lambda: book, node="node-a", clock_ns=lambda: NOW)


def test_a_request_becomes_priced_arrow_and_compact_spans(book: PriceBook, request_bytes: bytes) -> None:
    prepared = _preparer(book).prepare(request_bytes, json_body=False, token="team-a")
    batch: PreparedBatch = prepared.batch
    assert prepared.accepted == batch.count == 300 and prepared.rejected == 0 and prepared.message == ""
    assert batch.spans is not None and batch.failure is None and batch.cpu_seconds > 0
    assert batch.spans.schema.names == [c.name for c in SPAN_COLUMNS]
    assert batch.spans.num_rows == len(batch.lite) == 300
    assert set(batch.spans.column("ingested_at").cast("int64").to_pylist()) == {NOW}
    assert set(batch.spans.column("ingest_node").to_pylist()) == {"node-a"}
    assert set(batch.spans.column("ingest_token").to_pylist()) == {"team-a"}
    assert set(batch.spans.column("version").to_pylist()) == {1}
    # The spans the normaliser accepts, in request order, priced by the book in force.
    rows = Normalizer(load_conventions()).normalize(decode_protobuf(request_bytes).request).rows
    book.price_rows(rows)
    expected = table_from_rows(SPAN_COLUMNS, rows)
    for name in ("span_id", "trace_id", "model", "cost_usd", "cost_input_usd", "price_source", "unpriced_reason"):
        assert batch.spans.column(name).equals(expected.column(name)), name
    costs = batch.spans.column("cost_usd").to_pylist()
    assert any(cost is not None for cost in costs), "chat spans are priced"
    lite = compact_spans(batch)
    assert [s[L.span_id] for s in lite] == batch.spans.column("span_id").to_pylist()
    assert [s[L.cost_usd] for s in lite] == [None if c is None else int(c.scaleb(15)) for c in costs]


def test_compact_spans_keep_attributes_on_roots_only_and_share_repeated_text(
    book: PriceBook, request_bytes: bytes
) -> None:
    batch: PreparedBatch = _preparer(book).prepare(request_bytes, json_body=False, token="").batch
    lite = compact_spans(batch)
    assert all((s[L.attributes] is None) == bool(s[L.parent_span_id]) for s in lite)
    # One string object per distinct value of a repeated field within the request.
    for field in ("trace_id", "model", "provider", "scope_name", "service_name"):
        index = LITE_FIELDS.index(field)
        values = [s[index] for s in lite if s[index]]
        assert len({id(v) for v in values}) == len(set(values)), field


@pytest.mark.parametrize(
    ("body", "json_body"),
    [
        pytest.param(b"\xff\xff not protobuf", False, id="protobuf"),
        pytest.param(b"{not json", True, id="json"),
    ],
)
def test_a_body_that_is_no_otlp_request_is_undecodable(book: PriceBook, body: bytes, json_body: bool) -> None:
    with pytest.raises(UndecodableRequest):
        _preparer(book).prepare(body, json_body=json_body, token="")


def test_invalid_spans_are_counted_and_explained_beside_the_accepted_ones(book: PriceBook) -> None:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat",
        "startTimeUnixNano": str(time.time_ns() - 10**9),
        "endTimeUnixNano": str(time.time_ns()),
    }
    bad = {**span, "spanId": "00"}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span, bad]}]}]}).encode()
    prepared = _preparer(book).prepare(body, json_body=True, token="")
    assert (prepared.accepted, prepared.rejected) == (1, 1)
    assert "span_id" in prepared.message


def test_nothing_accepted_means_no_batch(book: PriceBook) -> None:
    prepared = _preparer(book).prepare(b"{}", json_body=True, token="")
    assert (prepared.accepted, prepared.rejected, prepared.batch) == (0, 0, None)


def test_a_pricing_bug_keeps_the_count_and_says_why_instead_of_failing_the_request(
    book: PriceBook, request_bytes: bytes
) -> None:
    class Broken(PriceBook):
        def price_rows(self, rows: list[list[Any]], resources: ResourceLookup | None = None) -> None:
            raise RuntimeError("injected pricing bug")

    preparer = Preparer(Normalizer(load_conventions()), lambda: Broken(), node="n", clock_ns=lambda: NOW)
    prepared = preparer.prepare(request_bytes, json_body=False, token="")
    batch: PreparedBatch = prepared.batch
    assert prepared.accepted == batch.count == 300
    assert batch.spans is None and batch.lite == []
    assert batch.failure == "RuntimeError: injected pricing bug"


def test_lite_from_row_matches_the_fields_the_stitcher_reads() -> None:
    row = list(range(len(SPAN_COLUMNS)))
    assert len(lite_from_row(row)) == len(LITE_FIELDS)
