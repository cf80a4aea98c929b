"""User rate cards: matching, windows, overrides, discounts, tiers, GPU-seconds, fees, and
validation errors that name file, entry and field."""

from __future__ import annotations

import datetime as dt
import re
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from otelspend.enrich.genai_prices_card import SOURCE, GenaiPricesCard
from otelspend.enrich.pricing import NO_MODEL, NO_USAGE, UNKNOWN_MODEL, UNKNOWN_PROVIDER, PriceBook
from otelspend.enrich.ratecard import RateCardError, card_warnings, load_rate_card, parse_rate_card
from otelspend.record import F

from .helpers import TOLERANCE, calc_price, llm_row, usd

TESTDATA = Path(__file__).parent / "testdata"
EXAMPLE = Path(__file__).parents[2] / "examples" / "rate-card.yaml"
GENAI = GenaiPricesCard()

CARD = """
version: 1
entries:
  - id: gpt4o-negotiated
    provider: openai
    model: gpt-4o-2024-08-06
    prices: {input: 2.0, cache_read: 1.0, output: 8.0}
  - id: summarizer-old
    model: acme-summarizer
    effective_to: 2025-03-01
    prices: {input: 0.5, cache_read: 0.05, output: 1.5}
  - id: summarizer-new
    model: acme-summarizer
    effective_from: 2025-03-01
    effective_to: 2025-07-01T12:00:00Z
    prices: {input: 0.4, cache_read: 0.04, output: 1.2}
  - id: routers
    provider: "re:acme|internal"
    model: "re:acme-router-v[0-9]+"
    prices: {input: 0.1, cache_read: 0.01, cache_write: 0.125, cache_write_1h: 0.2, output: 0.4, reasoning: 0.6}
    request_fee: 0.0005
    discount_pct: 10
    tier: {attribute: processing, multipliers: {batch: 0.5, flex: 0.7}}
  - id: mini-fleet
    model: "GPT-4O-MINI*"
    prices: {input: 0.1, cache_read: 0.02, output: 0.5}
    tier: {attribute: acme.billing.lane, multipliers: {cheap: 0.25}}
  - id: anthropic-commit
    provider: anthropic
    model: "claude-*"
    discount_pct: 12.5
  - id: gemini-flex
    provider: gcp.vertex_ai
    model: "gemini-*"
    tier: {attribute: service_tier, multipliers: {flex: 0.5}}
  - id: llama-h100
    model: meta-llama/Llama-3.3-70B-Instruct
    gpu_second: 0.0011
    gpus: 2
  - id: qwen-mixed
    model: qwen-internal
    prices: {input: 0.2, cache_read: 0.02, output: 0.6}
    gpu_second: 0.002
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path = tmp_path_factory.mktemp("card") / "rates.yaml"
    path.write_text(CARD)
    return PriceBook.from_file(path, GENAI)


def priced(book: PriceBook, **kwargs) -> list:
    row = llm_row(**kwargs)
    book.price_row(row)
    return row


def mtok(tokens: int, usd_per_mtok: str) -> Decimal:
    return Decimal(tokens) * Decimal(usd_per_mtok) / 1_000_000


def test_user_entry_overrides_genai_prices_and_records_its_provenance(book):
    row = priced(book, response_model="gpt-4o-2024-08-06", input_tokens=10_000, cache_read=4_000, output_tokens=500)
    assert usd(row[F.cost_input_usd]) == mtok(6_000, "2.0")
    assert usd(row[F.cost_cache_read_usd]) == mtok(4_000, "1.0")  # cache hits at the cache rate, never input
    assert usd(row[F.cost_output_usd]) == mtok(500, "8.0")
    assert usd(row[F.cost_usd]) == mtok(6_000, "2.0") + mtok(4_000, "1.0") + mtok(500, "8.0")
    assert re.fullmatch(r"user:rates\.yaml@[0-9a-f]{8}", row[F.price_source])
    assert (row[F.price_entry], row[F.price_effective_from], row[F.unpriced_reason]) == ("gpt4o-negotiated", "", "")
    # The same call without the card: genai-prices, at a different price.
    default = priced(
        PriceBook(genai=GENAI),
        response_model="gpt-4o-2024-08-06",
        input_tokens=10_000,
        cache_read=4_000,
        output_tokens=500,
    )
    assert default[F.price_source] == SOURCE and default[F.cost_usd] != row[F.cost_usd]


def test_other_providers_and_models_fall_through_to_genai_prices(book):
    row = priced(
        book, provider="azure.ai.openai", response_model="gpt-4o-2024-08-06", input_tokens=1_000, output_tokens=10
    )
    assert row[F.price_source] == SOURCE  # the entry is for provider openai only
    expected = calc_price(row, "gpt-4o-2024-08-06", "azure")
    assert abs(usd(row[F.cost_usd]) - expected.total_price) <= TOLERANCE


@pytest.mark.parametrize(
    ("start", "entry", "input_rate"),
    [
        pytest.param(dt.datetime(2025, 2, 28, 23, 59, 59, tzinfo=dt.UTC), "summarizer-old", "0.5", id="before"),
        pytest.param(dt.datetime(2025, 3, 1, tzinfo=dt.UTC), "summarizer-new", "0.4", id="on-the-date"),
        pytest.param(dt.datetime(2025, 7, 1, 11, 59, tzinfo=dt.UTC), "summarizer-new", "0.4", id="before-end"),
    ],
)
def test_price_change_on_a_date_prices_either_side_differently(book, start, entry, input_rate):
    row = priced(book, request_model="acme-summarizer", start=start, input_tokens=1_000_000, output_tokens=0)
    assert row[F.price_entry] == entry
    assert usd(row[F.cost_usd]) == Decimal(input_rate)
    assert row[F.price_effective_from] == ("" if entry == "summarizer-old" else "2025-03-01")


def test_after_every_window_the_model_is_unpriced_with_a_reason(book):
    row = priced(
        book,
        request_model="acme-summarizer",
        start=dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC),
        input_tokens=10,
        output_tokens=1,
    )
    assert row[F.cost_usd] is None and row[F.unpriced_reason] == UNKNOWN_MODEL


def test_regex_glob_and_case_insensitive_matching(book):
    router = priced(book, provider="internal", request_model="acme-router-v12", input_tokens=100, output_tokens=1)
    assert router[F.price_entry] == "routers"
    assert priced(book, provider="other", request_model="acme-router-v12", input_tokens=1)[F.price_entry] != "routers"
    assert priced(book, request_model="acme-router-v1x", input_tokens=1)[F.unpriced_reason] == UNKNOWN_MODEL
    assert priced(book, response_model="gpt-4o-mini-2024-07-18", input_tokens=1)[F.price_entry] == "mini-fleet"


def test_every_token_kind_at_its_own_rate_with_fee_discount_and_batch_tier(book):
    usage = dict(
        input_tokens=1_000_000,
        cache_read=300_000,
        cache_write=200_000,
        cache_write_1h=50_000,
        output_tokens=100_000,
        reasoning=40_000,
    )
    interactive = priced(book, provider="acme", request_model="acme-router-v2", **usage)
    batch = priced(book, provider="acme", request_model="acme-router-v2", processing="batch", **usage)
    factor = Decimal("0.9")  # 10 % discount
    expected = {
        F.cost_input_usd: mtok(500_000, "0.1"),
        F.cost_cache_read_usd: mtok(300_000, "0.01"),
        F.cost_cache_write_usd: mtok(150_000, "0.125") + mtok(50_000, "0.2"),
        F.cost_output_usd: mtok(60_000, "0.4"),
        F.cost_reasoning_usd: mtok(40_000, "0.6"),
        F.cost_request_usd: Decimal("0.0005"),
        F.cost_compute_usd: Decimal(0),
    }
    for slot, value in expected.items():
        assert usd(interactive[slot]) == value * factor
        assert usd(batch[slot]) == value * factor * Decimal("0.5")
    assert usd(interactive[F.cost_usd]) == sum(expected.values()) * factor


def test_tier_read_from_a_canonical_field_via_its_attribute_key_or_from_any_attribute(book):
    base = dict(response_model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0)
    full = priced(book, **base)[F.cost_usd]
    lane = priced(book, **base, attributes=(["acme.billing.lane"], ["cheap"]))
    assert lane[F.cost_usd] * 4 == full
    other = priced(book, **base, attributes=(["acme.billing.lane"], ["premium"]))
    assert other[F.cost_usd] == full  # a value without a multiplier keeps the price


def test_discount_adjusts_the_genai_prices_default(book):
    row = priced(
        book,
        provider="anthropic",
        response_model="claude-sonnet-4-5-20250929",
        input_tokens=20_000,
        cache_read=15_000,
        cache_write=3_000,
        output_tokens=700,
    )
    expected = calc_price(row, "claude-sonnet-4-5-20250929", "anthropic").total_price * Decimal("0.875")
    assert abs(usd(row[F.cost_usd]) - expected) <= TOLERANCE
    assert row[F.price_source] == f"{SOURCE} + {book.card.source}#anthropic-commit"
    assert row[F.price_entry] == "anthropic/claude-sonnet-4-5"


def test_service_tier_multiplier_on_the_default(book):
    usage = dict(provider="gcp.vertex_ai", response_model="gemini-2.0-flash", input_tokens=50_000, output_tokens=900)
    standard = priced(book, **usage)
    flex = priced(book, **usage, service_tier="flex")
    assert flex[F.cost_usd] * 2 == standard[F.cost_usd]


def test_gpu_seconds_from_duration_times_gpus_or_explicit_seconds(book):
    by_duration = priced(
        book, request_model="meta-llama/Llama-3.3-70B-Instruct", duration_s=2.5, input_tokens=900, output_tokens=90
    )
    assert usd(by_duration[F.cost_compute_usd]) == Decimal("2.5") * 2 * Decimal("0.0011")
    assert by_duration[F.cost_usd] == by_duration[F.cost_compute_usd]
    four_gpus = priced(
        book, request_model="meta-llama/Llama-3.3-70B-Instruct", duration_s=2.5, gpu_count=4.0, input_tokens=900
    )
    assert usd(four_gpus[F.cost_compute_usd]) == Decimal("2.5") * 4 * Decimal("0.0011")
    explicit = priced(
        book, request_model="meta-llama/Llama-3.3-70B-Instruct", duration_s=2.5, compute_seconds=0.3, input_tokens=900
    )
    assert usd(explicit[F.cost_compute_usd]) == Decimal("0.3") * Decimal("0.0011")
    # No tokens reported, but GPU time: still priced (self-hosted servers often report none).
    no_tokens = priced(book, request_model="meta-llama/Llama-3.3-70B-Instruct", duration_s=1.0)
    assert usd(no_tokens[F.cost_usd]) == Decimal("0.0022") and no_tokens[F.unpriced_reason] == ""


def test_gpu_seconds_and_tokens_on_one_entry(book):
    row = priced(book, request_model="qwen-internal", duration_s=1.5, input_tokens=1_000_000, output_tokens=0)
    assert usd(row[F.cost_input_usd]) == Decimal("0.2")
    assert usd(row[F.cost_compute_usd]) == Decimal("1.5") * Decimal("0.002")


@pytest.mark.parametrize(
    ("columns", "reason"),
    [
        pytest.param({"response_model": "no-such-model-3000", "input_tokens": 5}, UNKNOWN_MODEL, id="unknown-model"),
        pytest.param(
            {"provider": "acme-cloud", "response_model": "gpt-4o", "input_tokens": 5},
            UNKNOWN_PROVIDER,
            id="unknown-provider",
        ),
        pytest.param(
            {"provider": "", "response_model": "no-such-model-3000", "input_tokens": 5},
            UNKNOWN_MODEL,
            id="no-provider-unknown-model",
        ),
        pytest.param({"response_model": "gpt-4o"}, NO_USAGE, id="no-usage"),
        pytest.param({"input_tokens": 5}, NO_MODEL, id="no-model"),
    ],
)
def test_unpriced_calls_store_null_and_a_reason(book, columns, reason):
    row = priced(book, **columns)
    assert row[F.cost_usd] is None and row[F.cost_input_usd] is None
    assert row[F.unpriced_reason] == reason and row[F.price_source] == ""


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("not_yaml", "not valid YAML at line 4, column 1", id="yaml-syntax"),
        pytest.param("not_a_mapping", "expected a mapping with an 'entries' list", id="not-a-mapping"),
        pytest.param("unknown_field", "entry 1 (id 'gpt4o-negotiated'), prices.inptu = 2.0: unknown field", id="typo"),
        pytest.param(
            "negative_price",
            "entry 2 (id 'bad-entry'), prices.input = -2.5: Input should be greater than or equal to 0",
            id="negative-price",
        ),
        pytest.param(
            "bad_regex", "entry 1 (id 'routers'), model = 're:acme-(router': invalid regular expression", id="bad-regex"
        ),
        pytest.param(
            "window_backwards", "entry 1 (id 'q1-price'): effective_to must be after effective_from", id="window"
        ),
        pytest.param("duplicate_id", "entries: duplicate entry id 'same' (entries 1 and 2)", id="duplicate-id"),
        pytest.param("currency_eur", "currency = 'EUR': only USD is supported", id="currency"),
        pytest.param(
            "nothing_to_price",
            "entry 1 (id 'empty'): give prices, gpu_second, discount_pct or tier",
            id="nothing-to-price",
        ),
        pytest.param(
            "discount_over_100", "entry 1 (id 'too-generous'), discount_pct = 120: Input should be less", id="discount"
        ),
        pytest.param("missing_model", "entry 1 (id 'no-model'), model: Field required", id="missing-model"),
        pytest.param(
            "bad_tier", "entry 1 (id 'batch-tier'), tier.multipliers: multiplier for 'batch' must be >= 0", id="tier"
        ),
    ],
)
def test_malformed_cards_fail_with_file_entry_and_field(name, message):
    path = TESTDATA / f"{name}.yaml"
    with pytest.raises(RateCardError) as caught:
        load_rate_card(path)
    text = str(caught.value)
    assert text.startswith(f"rate card {path}: "), text
    assert message in text, text


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RateCardError, match=r"rate card .*nope\.yaml: cannot read \(No such file"):
        load_rate_card(tmp_path / "nope.yaml")


def test_example_card_is_valid_and_warns_about_nothing():
    card = load_rate_card(EXAMPLE)
    assert len(card.entries) >= 6 and card_warnings(card) == []


def test_warnings_for_cache_hits_at_input_rate_and_unknown_tier_attributes():
    card = parse_rate_card(
        "entries:\n"
        "  - {id: a, model: m, prices: {input: 1, output: 2}}\n"
        "  - {id: b, model: n, discount_pct: 5, tier: {attribute: my.lane, multipliers: {x: 1}}}\n"
    )
    assert card_warnings(card) == [
        "entry 'a': no cache_read price, so cache hits are priced at the full input rate",
        "entry 'b': tier attribute 'my.lane' is not a canonical field; it must arrive as a span attribute",
    ]


def test_tier_attribute_named_by_its_otel_key_reads_the_canonical_field():
    # otelspend.pricing.tier is read into the `processing` column (not kept in the attribute map).
    card = parse_rate_card(
        "entries:\n"
        "  - id: lane\n"
        "    model: acme-router-v1\n"
        "    prices: {input: 1, cache_read: 0.1, output: 1}\n"
        "    tier: {attribute: otelspend.pricing.tier, multipliers: {batch: 0.5}}\n"
    )
    book = PriceBook(card, GENAI)
    normal = priced(book, request_model="acme-router-v1", input_tokens=1_000_000)
    batch = priced(book, request_model="acme-router-v1", input_tokens=1_000_000, processing="batch")
    assert usd(normal[F.cost_usd]) == 1 and usd(batch[F.cost_usd]) == Decimal("0.5")
    assert card_warnings(card) == []


def test_unpriced_calls_priced_over_and_over_hold_no_memory():
    # Negative lookups are cached; an exception object cached and re-raised would grow its
    # traceback (and keep frames alive) on every unpriced span.
    book = PriceBook(genai=GenaiPricesCard())
    rows = [
        llm_row(provider=p, response_model=m, input_tokens=5)
        for p, m in (("openai", "no-such-model-3000"), ("acme-cloud", "gpt-4o"))
    ]
    book.price_rows(rows)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            book.price_rows(rows)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert [row[F.unpriced_reason] for row in rows] == [UNKNOWN_MODEL, UNKNOWN_PROVIDER]
    assert grown < 64 * 1024, grown
