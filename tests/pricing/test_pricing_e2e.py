"""Pricing end to end: spans sent with the official OTel SDK over OTLP, priced by the
pipeline, read back from chDB. Default card, user card, unpriced calls, reported cost."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint
from opentelemetry.trace import SpanKind

from otelspend.enrich.genai_prices_card import SOURCE
from otelspend.enrich.pricing import at_ns
from tests.otel import tracer_provider

from .helpers import TOLERANCE, write_card

DAY_NS = 86_400 * 10**9


def call(tracer: Any, attributes: dict[str, Any], *, start_ns: int | None = None, seconds: float = 0.05) -> None:
    """One model-call span (ended at once, so exported before its parent)."""
    start = start_ns if start_ns is not None else time.time_ns()
    span = tracer.start_span("chat", kind=SpanKind.CLIENT, start_time=start, attributes=attributes)
    span.end(end_time=start + int(seconds * 10**9))


def chat(provider: str, model: str, inp: int | None, out: int | None = None, **extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if inp is not None:
        attributes["gen_ai.usage.input_tokens"] = inp
    if out is not None:
        attributes["gen_ai.usage.output_tokens"] = out
    attributes.update(extra)
    return attributes


def a_past_price_change(tokens: int) -> tuple[str, str, dt.date]:
    """A (provider, model, date) whose genai-prices price changed on a date already past."""
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    for provider in data_snapshot.get_snapshot().providers:
        if provider.id not in ("anthropic", "openai", "google"):
            continue
        for model in provider.models:
            if isinstance(model.prices, ModelPrice):
                continue
            for price in model.prices:
                constraint = price.constraint
                if isinstance(constraint, StartDateConstraint) and constraint.start_date <= yesterday:
                    usage = genai_prices.Usage(input_tokens=tokens, output_tokens=1_000)
                    day = dt.datetime.combine(constraint.start_date, dt.time(), dt.UTC)
                    before, after = (
                        genai_prices.calc_price(usage, model.id, provider_id=provider.id, genai_request_timestamp=t)
                        for t in (day - dt.timedelta(seconds=1), day)
                    )
                    if before.total_price != after.total_price:
                        return provider.id, model.id, constraint.start_date
    raise AssertionError("genai-prices has no past dated price change for a major provider")


def test_default_card_through_otlp(server):
    provider, model, changed_on = a_past_price_change(250_000)
    change_ns = at_ns(changed_on)
    with tracer_provider(server, "http", service="pricing-e2e") as tp:
        tracer = tp.get_tracer("app")
        with tracer.start_as_current_span("run", kind=SpanKind.SERVER):
            call(tracer, chat(provider, model, 250_000, 1_000), start_ns=change_ns - 10**9)
            call(tracer, chat(provider, model, 250_000, 1_000), start_ns=change_ns)
            call(
                tracer,
                chat(
                    "openai",
                    "gpt-4o-mini",
                    1_200,
                    100,
                    **{
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "gen_ai.usage.cache_read.input_tokens": 1_000,
                    },
                ),
            )
            call(tracer, chat("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", 2_000, 300))
            call(tracer, chat("no-such-cloud", "gpt-4o", 500, 20))
            call(tracer, chat("openai", "gpt-99-ultra", 700, 30))
            call(tracer, chat("openai", "gpt-4o", None, None))
    server.wait_idle()
    rows = server.dicts(
        "SELECT provider, model, start_time, input_tokens, cache_read_tokens, cost_usd, cost_input_usd, "
        "cost_cache_read_usd, price_source, price_entry, price_effective_from, unpriced_reason "
        "FROM {db}.spans FINAL WHERE span_class = 'llm' ORDER BY start_time"
    )
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)

    # A price change on a date prices calls on either side of it differently, each like calc_price.
    before, after = by_model[model]
    for row in (before, after):
        when = row["start_time"].replace(tzinfo=dt.UTC)
        usage = genai_prices.Usage(input_tokens=250_000, output_tokens=1_000)
        expected = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
        assert abs(row["cost_usd"] - expected.total_price) <= TOLERANCE
        assert row["price_source"] == SOURCE
    assert before["cost_usd"] != after["cost_usd"]
    assert after["price_effective_from"] == changed_on.isoformat()

    # Cached input at the cache-read rate: 200 x $0.15 + 1000 x $0.075 per MTok.
    mini = by_model["gpt-4o-mini-2024-07-18"][0]
    assert mini["cost_input_usd"] == Decimal("0.00003") and mini["cost_cache_read_usd"] == Decimal("0.000075")

    bedrock = by_model["anthropic.claude-3-5-sonnet-20240620-v1:0"][0]
    assert bedrock["price_entry"].startswith("aws/") and bedrock["cost_usd"] > 0

    reasons = sorted(r["unpriced_reason"] for r in rows if r["cost_usd"] is None)
    assert reasons == ["no_usage", "unknown_model", "unknown_provider"]

    # Unpriced calls are queryable with their token volume, and counted on the run.
    volume = server.rows(
        "SELECT unpriced_reason, provider, model, count(), sum(input_tokens), sum(output_tokens) "
        "FROM {db}.spans FINAL WHERE call_role = 'call' AND cost_usd IS NULL AND unpriced_reason != '' "
        "GROUP BY unpriced_reason, provider, model ORDER BY unpriced_reason"
    )
    assert volume == [
        ("no_usage", "openai", "gpt-4o", 1, None, None),
        ("unknown_model", "openai", "gpt-99-ultra", 1, 700, 30),
        ("unknown_provider", "no-such-cloud", "gpt-4o", 1, 500, 20),
    ]
    run = server.dicts("SELECT llm_calls, priced_calls, unpriced_calls, cost_usd FROM {db}.runs FINAL")[0]
    assert (run["llm_calls"], run["priced_calls"], run["unpriced_calls"]) == (7, 4, 3)
    assert run["cost_usd"] == sum(r["cost_usd"] for r in rows if r["cost_usd"] is not None)
    assert server.scalar("SELECT sum(unpriced_calls) FROM {db}.rollup_calls_hourly") == 3
    metrics = server.app.metrics.render()
    assert 'otelspend_calls_unpriced_total{reason="unknown_model"} 1' in metrics


def test_reported_cost_is_stored_beside_calculated_cost_never_mixed(server):
    with tracer_provider(server, "grpc") as tp:
        tracer = tp.get_tracer("app")
        with tracer.start_as_current_span("run", kind=SpanKind.SERVER):
            call(tracer, chat("openai", "gpt-4o-mini", 1_000_000, 0, **{"operation.cost": 0.5}))
            call(tracer, chat("openai", "gpt-4o-mini", 1_000_000, 0, **{"gen_ai.usage.cost": 0.0}))  # openlit offline
            call(tracer, chat("openai", "gpt-99-ultra", 10, 1, **{"llm.cost.total": 0.25}))
    server.wait_idle()
    spans = server.rows(
        "SELECT model, cost_usd, reported_cost_usd FROM {db}.spans FINAL WHERE span_class = 'llm' ORDER BY start_time"
    )
    calculated = Decimal("0.15")  # 1M input tokens x $0.15 / MTok
    assert spans == [
        ("gpt-4o-mini", calculated, Decimal("0.5")),
        ("gpt-4o-mini", calculated, None),  # a reported 0 with tokens is untrustworthy: dropped
        ("gpt-99-ultra", None, Decimal("0.25")),  # reported, but the ledger has no price: still NULL
    ]
    run = server.dicts("SELECT cost_usd, reported_cost_usd, unpriced_calls FROM {db}.runs FINAL")[0]
    assert (run["cost_usd"], run["reported_cost_usd"], run["unpriced_calls"]) == (2 * calculated, Decimal("0.75"), 1)
    rollup = server.rows("SELECT sum(cost_usd), sum(reported_cost_usd) FROM {db}.rollup_runs_hourly")
    assert rollup == [(2 * calculated, Decimal("0.75"))]


USER_CARD = """
entries:
  - id: gpt4o-negotiated
    provider: openai
    model: "gpt-4o-2024-*"
    prices: {input: 2.0, cache_read: 1.0, output: 8.0}
  - id: router
    model: "re:acme-router-v[0-9]+"
    prices: {input: 1.0, cache_read: 0.1, output: 4.0}
    request_fee: 0.001
    tier: {attribute: otelspend.pricing.tier, multipliers: {batch: 0.5}}
  - id: anthropic-commit
    provider: anthropic
    model: "claude-*"
    discount_pct: 20
  - id: llama-h100
    model: meta-llama/Llama-3.3-70B-Instruct
    gpu_second: 0.001
    gpus: 1
"""


def test_user_card_through_otlp(start_server, tmp_path):
    card = write_card(tmp_path / "rates.yaml", USER_CARD)
    server = start_server(rate_card=str(card))
    now = time.time_ns()
    with tracer_provider(server, "grpc") as tp:
        tracer = tp.get_tracer("app")
        with tracer.start_as_current_span("run", kind=SpanKind.SERVER):
            call(
                tracer,
                chat(
                    "openai",
                    "gpt-4o",
                    10_000,
                    1_000,
                    **{"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.cache_read.input_tokens": 6_000},
                ),
            )
            call(tracer, chat("internal", "acme-router-v3", 1_000_000, 0, **{"otelspend.pricing.tier": "batch"}))
            call(tracer, chat("anthropic", "claude-3-5-haiku-20241022", 1_000_000, 0))
            call(
                tracer,
                chat("vllm", "meta-llama/Llama-3.3-70B-Instruct", 500, 50, **{"otelspend.gpu.count": 4}),
                start_ns=now,
                seconds=2.0,
            )
            call(
                tracer,
                chat("vllm", "meta-llama/Llama-3.3-70B-Instruct", 500, 50, **{"otelspend.compute.seconds": 0.75}),
                start_ns=now + 10**9,
                seconds=2.0,
            )
    server.wait_idle()
    rows = server.dicts(
        "SELECT model, cost_usd, cost_input_usd, cost_cache_read_usd, cost_request_usd, cost_compute_usd, "
        "price_source, price_entry FROM {db}.spans FINAL WHERE span_class = 'llm' ORDER BY start_time"
    )
    by_entry = {r["price_entry"]: r for r in rows}
    negotiated = by_entry["gpt4o-negotiated"]
    assert negotiated["cost_input_usd"] == Decimal("0.008") and negotiated["cost_cache_read_usd"] == Decimal("0.006")
    assert negotiated["cost_usd"] == Decimal("0.022")
    assert negotiated["price_source"] == server.app.pricing.current.card.source
    router = by_entry["router"]
    assert router["cost_usd"] == Decimal("0.5005") and router["cost_request_usd"] == Decimal("0.0005")
    haiku = next(r for r in rows if r["model"] == "claude-3-5-haiku-20241022")
    list_price = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1_000_000, output_tokens=0),
        "claude-3-5-haiku-20241022",
        provider_id="anthropic",
    ).total_price
    assert abs(haiku["cost_usd"] - list_price * Decimal("0.8")) <= TOLERANCE
    assert haiku["price_source"].endswith("#anthropic-commit")
    gpu = [r for r in rows if r["price_entry"] == "llama-h100"]
    assert [r["cost_compute_usd"] for r in gpu] == [Decimal("0.008"), Decimal("0.00075")]  # 2 s x 4 GPUs; 0.75 s
