"""Every trap of the provider exports (../shared/finance/README.md) has a fixture and a test."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from otelspend.finance.billing.lines import DEFAULT_WORKSPACE, UsageKind
from otelspend.finance.billing.names import model_key
from tests.finance.billing.helpers import TESTDATA, extract, line_dict


def _by_kind(lines):
    return {(line.model_billed, line.kind): line for line in lines}


def test_anthropic_cost_amounts_are_cents_as_decimal_strings() -> None:
    lines, _ = extract(TESTDATA / "anthropic_cost.json")
    amounts = [line.amount for line in lines]
    # "123.45" USD is $1.2345 (cents), not $123.45; "0.3" is $0.003.
    assert amounts == [Decimal("1.2345"), Decimal("6"), Decimal("0.003"), Decimal("0.0375"), Decimal("0.06"),
                       Decimal("0.2")]  # fmt: skip
    assert sum(amounts) == Decimal("7.5350")


def test_anthropic_usage_reads_the_nested_cache_creation_tokens() -> None:
    lines, _ = extract(TESTDATA / "anthropic_usage.json")
    sonnet = {line.kind: line.quantity for line in lines if line.model_billed.startswith("claude-sonnet")}
    assert sonnet[UsageKind.CACHE_WRITE_5M] == 500 and sonnet[UsageKind.CACHE_WRITE_1H] == 1000
    assert sonnet[UsageKind.CACHED_INPUT] == 200 and sonnet[UsageKind.UNCACHED_INPUT] == 1500
    assert sonnet[UsageKind.WEB_SEARCH] == 10


def test_flat_cache_creation_names_are_read_too(tmp_path: Path) -> None:
    page = json.loads((TESTDATA / "anthropic_usage.json").read_text())
    result = page["data"][0]["results"][0]
    del result["cache_creation"]
    result["cache_creation_5m_input_tokens"] = 500
    result["cache_creation_1h_input_tokens"] = 1000
    path = tmp_path / "flat.json"
    path.write_text(json.dumps(page))
    flat, _ = extract(path)
    nested, _ = extract(TESTDATA / "anthropic_usage.json")
    assert [(line.kind, line.quantity) for line in flat] == [(line.kind, line.quantity) for line in nested]


def test_openai_costs_read_both_result_and_results() -> None:
    lines, _ = extract(TESTDATA / "openai_costs.jsonl")
    pages = {line.record.split(",")[0] for line in lines}
    assert pages == {"page 1", "page 2"}  # page 2 names its bucket array "result"
    assert [line.amount for line in lines if line.record.startswith("page 2")] == [Decimal("1.5"), Decimal("0.5")]


@pytest.mark.parametrize("layout", ["jsonl", "array", "single pages"])
def test_pagination_layouts_give_the_same_lines(tmp_path: Path, layout: str) -> None:
    pages = [json.loads(line) for line in (TESTDATA / "openai_costs.jsonl").read_text().splitlines()]
    expected, _ = extract(TESTDATA / "openai_costs.jsonl")
    if layout == "array":
        path = tmp_path / "pages.json"
        path.write_text(json.dumps(pages, indent=2))
        got, _ = extract(path)
    elif layout == "jsonl":
        path = tmp_path / "pages.jsonl"
        path.write_text("\n".join(json.dumps(p) for p in pages) + "\n\n")
        got, _ = extract(path)
    else:
        got = []
        for number, page in enumerate(pages, 1):
            path = tmp_path / f"page{number}.json"
            path.write_text(json.dumps(page))
            got += extract(path)[0]
    assert sum((line.amount for line in got), Decimal(0)) == sum((line.amount for line in expected), Decimal(0))
    assert {line.identity for line in got} == {line.identity for line in expected}


def test_null_workspace_is_the_default_workspace() -> None:
    usage, _ = extract(TESTDATA / "anthropic_usage.json")
    cost, _ = extract(TESTDATA / "anthropic_cost.json")
    assert {line.workspace_id for line in usage if "haiku" in line.model_billed} == {DEFAULT_WORKSPACE}
    assert cost[0].workspace_id == DEFAULT_WORKSPACE
    assert cost[2].workspace_id == "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"


def test_currency_case_is_normalised() -> None:
    lines, _ = extract(TESTDATA / "openai_costs.jsonl")
    assert {line.currency for line in lines} == {"USD"}  # "usd" and "USD" in the file


def test_json_numbers_are_exact_decimals() -> None:
    lines, _ = extract(TESTDATA / "openai_costs.jsonl")
    # 0.12000000000000001 (float noise as OpenAI may render it) is stored to 1e-15 USD.
    assert lines[1].amount == Decimal("0.120000000000000")
    assert all(isinstance(line.amount, Decimal) for line in lines)


def test_openai_usage_input_includes_cached_and_cache_writes() -> None:
    lines, _ = extract(TESTDATA / "openai_usage.json")
    by = _by_kind(lines)
    assert by[("gpt-4o-2024-08-06", UsageKind.UNCACHED_INPUT)].quantity == 200  # 1000 - 800 cached
    assert by[("gpt-4o-2024-08-06", UsageKind.CACHED_INPUT)].quantity == 800
    assert by[("gpt-4o-mini-2024-07-18", UsageKind.CACHE_WRITE_5M)].quantity == 300
    assert by[("gpt-4o-mini-2024-07-18", UsageKind.UNCACHED_INPUT)].quantity == 1700
    assert by[("gpt-4o-mini-2024-07-18", UsageKind.REQUEST)].quantity == 2
    assert by[("gpt-4o-mini-2024-07-18", UsageKind.OUTPUT)].service_tier == "batch"  # batch: true


@pytest.mark.parametrize(
    ("line_item", "model", "kind"),
    [
        pytest.param("gpt-4o", "gpt-4o", UsageKind.OTHER, id="model only"),
        pytest.param("gpt-4o-2024-08-06, input", "gpt-4o-2024-08-06", UsageKind.UNCACHED_INPUT, id="model, input"),
        pytest.param("gpt-4o-2024-08-06, cached input", "gpt-4o-2024-08-06", UsageKind.CACHED_INPUT, id="cached"),
        pytest.param("o3, output", "o3", UsageKind.OUTPUT, id="output"),
        pytest.param("gpt-4.1, something new", "gpt-4.1", UsageKind.OTHER, id="unknown kind"),
    ],
)
def test_openai_line_item_both_readings(line_item: str, model: str, kind: UsageKind) -> None:
    from otelspend.finance.billing.importers.openai_costs import parse_line_item

    assert parse_line_item(line_item)[:2] == (model, kind)


def test_cur_reads_every_bedrock_token_type_and_skips_other_services() -> None:
    lines, counters = extract(TESTDATA / "aws_cur_bedrock.csv")
    kinds = {line.kind for line in lines if line.model_billed == "Claude4.6Sonnet"}
    assert kinds == {UsageKind.UNCACHED_INPUT, UsageKind.OUTPUT, UsageKind.CACHED_INPUT, UsageKind.CACHE_WRITE_5M}
    assert counters.skipped == {"not Amazon Bedrock": 1}
    assert lines[0].amount == Decimal("0.0324") and lines[0].list_amount == Decimal("0.036")  # net unblended
    assert lines[3].amount == Decimal("0.015")  # net empty: unblended
    opus = [line for line in lines if line.model_billed == "Claude4.6Opus"]
    assert opus[0].service_tier == "batch"  # marketplace product code, Bedrock usage type


def test_focus_units_scale_to_tokens_and_non_usage_charges_are_kept_apart() -> None:
    lines, counters = extract(TESTDATA / "focus_1_2.csv")
    assert lines[0].quantity == 200_000 and lines[0].unit == "tokens"  # 200 x "1000 Tokens"
    assert counters.skipped == {"not an AI service (ServiceCategory)": 1}
    assert [(line.charge.value, line.amount) for line in lines[-2:]] == [("tax", Decimal("0.16")),
                                                                        ("credit", Decimal("-0.2"))]  # fmt: skip
    assert lines[2].identity != lines[3].identity and lines[3].identity.endswith("#2")


def test_focus_1_3_columns(tmp_path: Path) -> None:
    lines, _ = extract(TESTDATA / "focus_1_3.csv")
    assert {line.provider for line in lines} == {"aws.bedrock"}  # ServiceProviderName Anthropic, service Bedrock
    assert lines[0].model == model_key("claude-sonnet-4-5-20250929")
    assert lines[3].kind == UsageKind.REQUEST and lines[3].model == "nova-pro"


@pytest.mark.parametrize("sample", ["focus_1_2.csv", "focus_1_3.csv", "aws_cur_bedrock.csv"])
def test_parquet_and_gzip_give_the_same_lines_as_csv(tmp_path: Path, sample: str) -> None:
    csv_path = TESTDATA / sample
    expected = [line_dict(line) for line in extract(csv_path)[0]]
    table = pv.read_csv(csv_path)  # costs as doubles, times as timestamps: what real exports hold
    parquet = tmp_path / sample.replace(".csv", ".parquet")
    pq.write_table(table, parquet)
    zipped = tmp_path / (sample + ".gz")
    zipped.write_bytes(gzip.compress(csv_path.read_bytes()))
    for path in (parquet, zipped):
        got = [line_dict(line) for line in extract(path)[0]]
        assert got == expected, path.name


@pytest.mark.parametrize(
    ("billed", "ledger"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("Claude4.6Sonnet", "claude-sonnet-4-6"),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet-20250219"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-0806", "gpt-4o"),
        ("openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2"),
        ("amazon.nova-pro-v1:0", "nova-pro"),
    ],
)
def test_model_names_match_across_bill_and_ledger(billed: str, ledger: str) -> None:
    assert model_key(billed) == model_key(ledger)


@pytest.mark.parametrize(("a", "b"), [("gpt-4o", "gpt-4o-mini"), ("claude-sonnet-4", "claude-opus-4"),
                                      ("claude-sonnet-4-5", "claude-sonnet-4")])  # fmt: skip
def test_different_models_do_not_match(a: str, b: str) -> None:
    assert model_key(a) != model_key(b)
