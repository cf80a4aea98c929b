"""The default rate card equals ``genai_prices.calc_price``: for every model genai-prices
knows, through the stored path (price rows -> chDB -> cost read back), and over arbitrary
usage (hypothesis) for models with every pricing feature (tiers, cache writes, 1h cache
writes, reasoning prices, request fees, dated and time-of-day price changes, variants)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint, TieredPrices, TimeOfDateConstraint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelspend.clickhouse.columnar import table_from_rows
from otelspend.enrich.genai_prices_card import PROVIDER_IDS, GenaiPricesCard
from otelspend.enrich.pricing import INCONSISTENT_USAGE, UNKNOWN_MODEL, PriceBook
from otelspend.record import SPAN_COLUMNS, F

from .helpers import TOLERANCE, calc_price, llm_row, usd

SEED = 20250601
CASES_PER_MODEL = 3
EARLIEST = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_SECONDS = 5 * 365 * 86_400  # 2023..2027: every dated price change in the data
SEMCONV_NAMES: dict[str, list[str]] = {}
for _name, _id in PROVIDER_IDS.items():
    SEMCONV_NAMES.setdefault(_id, []).append(_name)
CONTEXTS = ({}, {}, {}, {"processing": "batch"}, {"service_tier": "flex"}, {"service_tier": "priority"})
GENAI = GenaiPricesCard()  # shared: compiled prices are cached across tests


def _all_models() -> list[tuple[str, Any]]:
    return [(provider.id, model) for provider in data_snapshot.get_snapshot().providers for model in provider.models]


def _clause_strings(clause: Any) -> list[str]:
    for attribute in ("equals", "starts_with", "contains", "ends_with"):
        if isinstance(getattr(clause, attribute, None), str):
            return [getattr(clause, attribute)]
    nested = getattr(clause, "or_", None) or getattr(clause, "and_", None) or []
    return [text for item in nested for text in _clause_strings(item)]


def model_reference(provider_id: str, model: Any) -> str:
    """A name that genai-prices resolves to this model (a few ids do not match their own rules)."""
    snapshot = data_snapshot.get_snapshot()
    for candidate in (model.id, *_clause_strings(model.match)):
        try:
            if snapshot.find_provider_model(candidate, None, provider_id, None)[1] is model:
                return candidate
        except LookupError:
            continue
    return model.id


def _random_usage(rng: random.Random) -> dict[str, int | None]:
    inp = rng.choice([0, rng.randint(1, 5_000), rng.randint(100_000, 400_000), rng.randint(1, 3_000_000)])
    cache_read = rng.randint(0, inp) if rng.random() < 0.5 else None
    left = inp - (cache_read or 0)
    cache_write = rng.randint(0, left) if rng.random() < 0.35 else None
    cache_write_1h = rng.randint(0, cache_write) if cache_write and rng.random() < 0.4 else None
    out = rng.choice([None, rng.randint(0, 60_000)])
    reasoning = rng.randint(0, out) if out and rng.random() < 0.4 else None
    if rng.random() < 0.04:
        cache_read = inp + rng.randint(1, 100)  # impossible usage: must stay unpriced, never guessed
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
        "reasoning": reasoning,
    }


def _cases() -> list[tuple[list[Any], str, str]]:
    """(row, model ref, genai-prices provider id) for every model, seeded."""
    rng = random.Random(SEED)
    cases = []
    for provider_id, model in _all_models():
        reference = model_reference(provider_id, model)
        for _ in range(CASES_PER_MODEL):
            start = EARLIEST + dt.timedelta(seconds=rng.randrange(SPAN_SECONDS), microseconds=rng.randrange(10**6))
            provider = rng.choice([provider_id, *SEMCONV_NAMES.get(provider_id, [])])
            context = rng.choice(CONTEXTS)
            where = rng.random()
            if where < 0.5:
                names = {"response_model": reference}
            elif where < 0.8:
                names = {"request_model": reference}
            else:  # a response model genai-prices does not know: the request model prices it
                names = {"response_model": "zz-not-a-model-7", "request_model": reference}
            row = llm_row(
                provider=provider,
                start=start,
                processing=context.get("processing", ""),
                service_tier=context.get("service_tier", ""),
                **names,
                **_random_usage(rng),
            )
            cases.append((row, reference, provider_id))
    return cases


def test_every_genai_prices_model_stored_cost_equals_calc_price(store):
    cases = _cases()
    rows = [row for row, _, _ in cases]
    PriceBook(genai=GENAI).price_rows(rows)
    store.insert_arrow(f"{store.database}.spans", table_from_rows(SPAN_COLUMNS, rows))
    stored = {
        r["span_id"]: r
        for r in store.dicts(
            f"SELECT span_id, cost_usd, cost_input_usd, cost_output_usd, cost_cache_read_usd, cost_cache_write_usd, "
            f"cost_reasoning_usd, cost_request_usd, cost_compute_usd, price_source, price_entry, unpriced_reason "
            f"FROM {store.database}.spans FINAL"
        )
    }
    assert len(stored) == len(rows)

    priced = unpriced = unknown = 0
    worst = Decimal(0)
    for row, model, provider_id in cases:
        got = stored[row[F.span_id]]
        try:
            expected = calc_price(row, model, provider_id)
        except LookupError:  # a model whose rules match no name we could derive: unknown to both
            assert got["cost_usd"] is None and got["unpriced_reason"] == UNKNOWN_MODEL, (model, got)
            unknown += 1
            continue
        except ValueError:  # genai-prices refuses the usage (cached tokens above input tokens)
            assert got["cost_usd"] is None and got["unpriced_reason"] == INCONSISTENT_USAGE, (model, got)
            unpriced += 1
            continue
        assert got["cost_usd"] is not None, (provider_id, model, got["unpriced_reason"])
        difference = abs(got["cost_usd"] - expected.total_price)
        assert difference <= TOLERANCE, (provider_id, model, got["cost_usd"], expected.total_price)
        worst = max(worst, difference)
        # Components add up to the total, and split like genai-prices' input / output sides.
        parts = [got[f"cost_{name}_usd"] for name in ("input", "cache_read", "cache_write")]
        assert abs(sum(parts) - expected.input_price) <= TOLERANCE
        assert abs(got["cost_output_usd"] + got["cost_reasoning_usd"] - expected.output_price) <= TOLERANCE
        components = sum(got[c] for c in got if c.startswith("cost_") and c != "cost_usd")
        assert components == got["cost_usd"]
        assert got["price_source"].startswith("genai-prices ")
        assert got["price_entry"] == f"{expected.provider.id}/{expected.model.id}"
        priced += 1
    assert priced >= 0.9 * len(cases) and unpriced > 0 and unknown < 0.01 * len(cases)
    assert worst < Decimal("1e-12")  # whole femto-USD rounding, far inside the bar


# -- hypothesis over usage, for models with each pricing feature ------------------------------


def _feature_models() -> list[tuple[str, str]]:
    """A few models per pricing feature, so every code path of the compiler is exercised."""
    wanted: dict[str, list[tuple[str, str]]] = {}
    for provider_id, model in _all_models():
        prices = [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
        constraints = [] if isinstance(model.prices, ModelPrice) else [c.constraint for c in model.prices]
        values = {k: v for p in prices for k, v in p.__dict__.items() if v is not None and not k.startswith("_")}
        features = set()
        if any(isinstance(v, TieredPrices) for v in values.values()):
            features.add("tiers")
        features.update(k for k in ("cache_write_mtok", "cache_write_1h_mtok", "output_reasoning_mtok") if k in values)
        if "requests_kcount" in values:
            features.add("requests")
        if any(isinstance(c, StartDateConstraint) for c in constraints):
            features.add("dated")
        if any(isinstance(c, TimeOfDateConstraint) for c in constraints):
            features.add("time_of_day")
        if model.price_variants:
            features.add("variants")
        for feature in features:
            wanted.setdefault(feature, []).append((provider_id, model_reference(provider_id, model)))
    assert set(wanted) >= {"tiers", "cache_write_mtok", "cache_write_1h_mtok", "requests", "dated", "time_of_day"}
    return sorted({m for models in wanted.values() for m in models[:4]})


FEATURE_MODELS = _feature_models()


@st.composite
def _usage(draw: st.DrawFn) -> dict[str, int | None]:
    inp = draw(st.integers(0, 2_000_000))
    cache_read = draw(st.none() | st.integers(0, inp))
    cache_write = draw(st.none() | st.integers(0, inp - (cache_read or 0)))
    cache_write_1h = draw(st.none() | st.integers(0, cache_write or 0))
    out = draw(st.none() | st.integers(0, 200_000))
    reasoning = draw(st.none() | st.integers(0, out or 0))
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
        "reasoning": reasoning,
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    model=st.sampled_from(FEATURE_MODELS),
    usage=_usage(),
    start=st.datetimes(dt.datetime(2023, 1, 1), dt.datetime(2027, 12, 31), timezones=st.just(dt.UTC)),
    context=st.sampled_from(CONTEXTS),
)
def test_any_usage_at_any_time_prices_like_calc_price(model, usage, start, context):
    provider_id, model_id = model
    row = llm_row(
        provider=provider_id,
        request_model=model_id,
        start=start,
        processing=context.get("processing", ""),
        service_tier=context.get("service_tier", ""),
        **usage,
    )
    PriceBook(genai=GENAI).price_row(row)
    expected = calc_price(row, model_id, provider_id)
    assert abs(usd(row[F.cost_usd]) - expected.total_price) <= TOLERANCE


@pytest.mark.parametrize(
    ("provider", "model", "entry"),
    [
        pytest.param("openai", "gpt-4o-2024-08-06", "openai/gpt-4o", id="dated-snapshot"),
        pytest.param("azure.ai.openai", "gpt-4o-mini-2024-07-18", "azure/gpt-4o-mini", id="azure"),
        pytest.param(
            "aws.bedrock",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "aws/regional.anthropic.claude-3-7-sonnet-20250219-v1:0",
            id="bedrock-inference-profile",
        ),
        pytest.param("gcp.vertex_ai", "gemini-1.5-pro-002", "google/gemini-1.5-pro", id="vertex"),
        pytest.param("gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", "google/claude-3-5-sonnet", id="vertex-claude"),
        pytest.param("anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5", id="anthropic"),
        pytest.param("x_ai", "grok-3", "x-ai/grok-3", id="xai"),
        pytest.param("", "gpt-4o", "openai/gpt-4o", id="no-provider"),
    ],
)
def test_semconv_provider_names_and_dated_models_resolve(provider, model, entry):
    row = llm_row(provider=provider, response_model=model, input_tokens=1000, output_tokens=100)
    PriceBook(genai=GENAI).price_row(row)
    assert row[F.price_entry] == entry and row[F.unpriced_reason] == ""
    expected = calc_price(row, model, PROVIDER_IDS.get(provider, provider) or None)
    assert abs(usd(row[F.cost_usd]) - expected.total_price) <= TOLERANCE


def test_time_of_day_prices_switch_at_their_boundaries_within_one_cached_day():
    # deepseek-chat has an off-peak price 16:30-00:30 UTC; one card serves the whole day.
    book = PriceBook(genai=GenaiPricesCard())
    day = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
    costs = []
    for at in ("00:29:59.999999", "00:30:00", "12:00:00", "16:29:59.999999", "16:30:00", "23:59:59"):
        start = day + (dt.datetime.strptime(at, "%H:%M:%S.%f" if "." in at else "%H:%M:%S") - dt.datetime(1900, 1, 1))
        row = llm_row(provider="deepseek", request_model="deepseek-chat", start=start, input_tokens=1_000_000,
                      cache_read=200_000, output_tokens=100_000)  # fmt: skip
        book.price_row(row)
        assert usd(row[F.cost_usd]) == calc_price(row, "deepseek-chat", "deepseek").total_price, at
        costs.append(row[F.cost_usd])
    assert costs[0] == costs[4] == costs[5] != costs[1] == costs[2] == costs[3]
