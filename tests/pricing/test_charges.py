"""Charges: spans other than model calls priced by rate-card entries matched on attributes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from otelspend.enrich.genai_prices_card import GenaiPricesCard
from otelspend.enrich.pricing import PriceBook, clear_cost
from otelspend.enrich.ratecard import RateCardError, parse_rate_card
from otelspend.record import F

from .helpers import llm_row, usd

GENAI = GenaiPricesCard()
CARD = """
version: 1
entries:
  - id: pinecone-query
    kind: retrieval
    match: {db.system.name: pinecone, db_operation: query}
    request_fee: 0.00002
  - id: web-search
    kind: tool
    match: {gen_ai.tool.name: web_search}
    per_1k_calls: 10.00
    discount_pct: 10
  - id: gpu-pool
    match: {namespace: inference, gpu_type: "H100*"}
    gpu_second: 0.0011
    gpus: 2
  - id: cpu-workers
    match: {k8s.namespace.name: rag-workers, service.name: "embed-*"}
    cpu_second: 0.00002
    cpus: 4
  - id: ocr-api
    kind: request
    match: {server.address: "re:api\\\\.ocr\\\\.example(\\\\.com)?"}
    request_fee: 0.0015
    effective_from: 2025-01-01
  - id: vllm-llama
    model: llama-3.1-8b
    match: {namespace: inference}
    gpu_second: 0.0011
    kind: compute
"""
RESOURCES = {
    1: {"k8s.namespace.name": "inference", "otelspend.gpu.type": "H100-SXM", "host.name": "gpu-7"},
    2: {"k8s.namespace.name": "rag-workers"},
    3: {"k8s.namespace.name": "inference", "otelspend.gpu.type": "A10G"},
}


def span(
    *,
    resource: int = 0,
    duration_s: float = 2.0,
    attributes: dict[str, str] | None = None,
    start: dt.datetime = dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    **columns: Any,
) -> list[Any]:
    row = llm_row(provider="", duration_s=duration_s, start=start, **columns)
    row[F.span_class] = columns.get("span_class", "other")
    row[F.operation] = columns.get("operation", "")
    row[F.resource_id] = resource
    keys = list((attributes or {}).keys())
    row[F.attributes] = (keys, [attributes[k] for k in keys] if attributes else [])
    return row


def priced(row: list[Any]) -> list[Any]:
    PriceBook(parse_rate_card(CARD), GENAI).price_row(row, RESOURCES.get)
    return row


@pytest.mark.parametrize(
    ("row", "entry", "kind", "request_usd", "compute_usd"),
    [
        pytest.param(
            span(span_class="retrieval", db_system="pinecone", db_operation="query"),
            "pinecone-query",
            "retrieval",
            "0.00002",
            "0",
            id="vector-db-query",
        ),
        pytest.param(
            span(span_class="tool", operation="execute_tool", tool_name="web_search"),
            "web-search",
            "tool",
            "0.009",  # 10 USD per 1,000 calls, 10 % off
            "0",
            id="tool-fee-per-thousand",
        ),
        pytest.param(
            span(resource=1, duration_s=3.0), "gpu-pool", "compute", "0", "0.0066", id="gpu-seconds-from-duration"
        ),
        pytest.param(
            span(resource=1, compute_seconds=0.5), "gpu-pool", "compute", "0", "0.00055", id="gpu-seconds-explicit"
        ),
        pytest.param(
            span(resource=2, service_name="embed-worker", duration_s=10.0),
            "cpu-workers",
            "compute",
            "0",
            "0.0008",
            id="cpu-seconds-from-duration",
        ),
        pytest.param(
            span(resource=2, service_name="embed-worker", attributes={"otelspend.cpu.seconds": "1.5"}),
            "cpu-workers",
            "compute",
            "0",
            "0.00003",
            id="cpu-seconds-explicit",
        ),
        pytest.param(
            span(span_class="http", http_method="POST", attributes={"server.address": "api.ocr.example.com"}),
            "ocr-api",
            "request",
            "0.0015",
            "0",
            id="request-fee-by-span-attribute",
        ),
    ],
)
def test_charges_are_priced_with_provenance(
    row: list[Any], entry: str, kind: str, request_usd: str, compute_usd: str
) -> None:
    priced(row)
    assert (row[F.price_entry], row[F.cost_kind], row[F.unpriced_reason]) == (entry, kind, "")
    assert row[F.price_source].startswith("user:inline@")
    assert usd(row[F.cost_request_usd]) == Decimal(request_usd)
    assert usd(row[F.cost_compute_usd]) == Decimal(compute_usd)
    assert row[F.cost_usd] == row[F.cost_request_usd] + row[F.cost_compute_usd]
    assert all(row[slot] == 0 for slot in (F.cost_input_usd, F.cost_output_usd, F.cost_cache_read_usd))


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(span(span_class="retrieval", db_system="pinecone", db_operation="upsert"), id="other-operation"),
        pytest.param(span(resource=3), id="wrong-gpu-type"),
        pytest.param(span(resource=2, service_name="api"), id="wrong-service"),
        pytest.param(span(), id="no-resource-attributes"),
        pytest.param(
            span(attributes={"server.address": "api.ocr.example.com"}, start=dt.datetime(2024, 6, 1, tzinfo=dt.UTC)),
            id="before-effective-from",
        ),
    ],
)
def test_spans_no_entry_matches_stay_unpriced_and_cost_nothing(row: list[Any]) -> None:
    priced(row)
    assert (row[F.cost_usd], row[F.cost_kind], row[F.unpriced_reason], row[F.price_entry]) == (None, "", "", "")


def test_model_calls_get_the_model_kind_priced_or_not_and_a_match_restricts_a_model_entry() -> None:
    claude = priced(llm_row(provider="anthropic", response_model="claude-3-5-haiku-20241022", input_tokens=10))
    assert claude[F.cost_kind] == "model" and claude[F.cost_usd] is not None
    unknown = priced(llm_row(provider="acme", response_model="mystery", input_tokens=10))
    assert (unknown[F.cost_kind], unknown[F.cost_usd]) == ("model", None)
    assert unknown[F.unpriced_reason] == "unknown_provider"
    inside = llm_row(provider="vllm", response_model="llama-3.1-8b", input_tokens=10, duration_s=2.0)
    inside[F.resource_id] = 1
    priced(inside)
    assert (inside[F.price_entry], inside[F.cost_kind]) == ("vllm-llama", "compute")
    assert usd(inside[F.cost_compute_usd]) == Decimal("0.0022")
    outside = priced(llm_row(provider="vllm", response_model="llama-3.1-8b", input_tokens=10))
    assert (outside[F.cost_usd], outside[F.unpriced_reason]) == (None, "unknown_provider")


def test_clearing_and_repricing_a_charge_gives_the_same_row() -> None:
    row = priced(span(span_class="tool", operation="execute_tool", tool_name="web_search"))
    before = list(row)
    clear_cost(row)
    assert (row[F.cost_usd], row[F.cost_kind], row[F.price_entry]) == (None, "", "")
    assert priced(row) == before


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param("{id: x, request_fee: 1}", "entry 1 (id 'x'), model: Field required", id="no-model-no-match"),
        pytest.param(
            "{id: x, match: {a: b}, prices: {input: 1, output: 1}}", "prices: token prices need a model", id="tokens"
        ),
        pytest.param("{id: x, match: {a: b}}", "a match-only entry needs request_fee, per_1k_calls", id="no-price"),
        pytest.param("{id: x, match: {a: b}, kind: model, request_fee: 1}", "kind: 'model' is for", id="model-kind"),
        pytest.param(
            "{id: x, match: {a: b}, request_fee: 1, per_1k_calls: 2}", "give request_fee or per_1k_calls", id="two-fees"
        ),
        pytest.param("{id: x, match: {a: 're:('}, request_fee: 1}", "match: a: invalid regular expression", id="regex"),
        pytest.param("{id: x, match: {}, request_fee: 1}", "match: expected a non-empty mapping", id="empty-match"),
        pytest.param("{id: x, model: m, cpu_second: 1}", "cpu_second prices spans matched by", id="cpu-model"),
    ],
)
def test_bad_charge_entries_name_entry_and_field(entry: str, message: str) -> None:
    with pytest.raises(RateCardError) as caught:
        parse_rate_card(f"entries:\n  - {entry}\n")
    assert message in str(caught.value), str(caught.value)
