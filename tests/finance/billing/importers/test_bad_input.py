"""A malformed export is refused with a message naming file, record, field, value and
expectation; an unknown currency or unit is refused, never converted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otelspend.finance.billing.lines import BillingImportError
from tests.finance.billing.helpers import TESTDATA, extract


def _json_variant(tmp_path: Path, sample: str, change: Any) -> Path:
    document = json.loads((TESTDATA / sample).read_text())
    change(document)
    path = tmp_path / sample.replace(".json", "-bad.json")
    path.write_text(json.dumps(document))
    return path


def _first_result(document: Any) -> dict[str, Any]:
    page = document[0] if isinstance(document, list) else document
    return page["data"][0]["results"][0]


def _csv_variant(tmp_path: Path, sample: str, row: int, column: str, value: str) -> Path:
    import csv
    import io

    rows = list(csv.reader(io.StringIO((TESTDATA / sample).read_text())))
    rows[row][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path = tmp_path / sample.replace(".csv", "-bad.csv")
    path.write_text(out.getvalue())
    return path


JSON_CASES = [
    pytest.param("anthropic_cost.json", lambda d: _first_result(d).update(amount=123.45), "amount", "123.45",
                 "cents as a decimal string", id="anthropic cents as a JSON number"),
    pytest.param("anthropic_cost.json", lambda d: _first_result(d).update(amount="12x"), "amount", "'12x'",
                 "a decimal number", id="anthropic amount not a number"),
    pytest.param("anthropic_cost.json", lambda d: _first_result(d).update(currency="EUR"), "currency", "'EUR'",
                 "never converts currencies", id="known currency other than USD"),
    pytest.param("anthropic_cost.json", lambda d: _first_result(d).update(currency="XYZ"), "currency", "'XYZ'",
                 "unknown", id="unknown currency"),
    pytest.param("anthropic_cost.json", lambda d: _first_result(d).update(token_type="cache_creation"),
                 "token_type", "'cache_creation'", "one of uncached_input_tokens", id="unknown token type"),
    pytest.param("anthropic_usage.json", lambda d: _first_result(d).update(cache_creation=700),
                 "cache_creation", "700", "an object {ephemeral_5m_input_tokens", id="cache_creation not nested"),
    pytest.param("anthropic_usage.json", lambda d: _first_result(d).update(output_tokens=-5), "output_tokens",
                 "-5", "a whole number of tokens from 0", id="negative tokens"),
    pytest.param("anthropic_usage.json", lambda d: _first_result(d).update(output_tokens=1.5), "output_tokens",
                 "Decimal('1.5')", "a whole number of tokens", id="fractional tokens"),
    pytest.param("anthropic_usage.json", lambda d: d["data"][0].update(starting_at="yesterday"), "starting_at",
                 "'yesterday'", "RFC 3339", id="bad bucket time"),
    pytest.param("openai_usage.json", lambda d: _first_result(d).update(input_cached_tokens=5000),
                 "input_cached_tokens", "5000", "at most input_tokens", id="cached more than input"),
    pytest.param("openai_usage.json", lambda d: _first_result(d).update(batch="yes"), "batch", "'yes'",
                 "true, false or null", id="batch not a boolean"),
    pytest.param("openai_usage.json", lambda d: d["data"][0].update(end_time=d["data"][0]["start_time"]),
                 "end_time", "1748736000", "after the period start", id="empty bucket"),
    pytest.param("openai_usage.json", lambda d: d.update(data={"x": 1}), "data", "{'x': 1}", "a list of time buckets",
                 id="not a page"),
]  # fmt: skip


@pytest.mark.parametrize(("sample", "change", "field", "value", "expected"), JSON_CASES)
def test_bad_json_is_refused_naming_file_record_field_value(
    tmp_path: Path, sample: str, change: Any, field: str, value: str, expected: str
) -> None:
    path = _json_variant(tmp_path, sample, change)
    with pytest.raises(BillingImportError) as caught:
        extract(path, sample.split(".")[0])
    error = caught.value
    assert error.file == path.name and error.field == field, str(error)
    assert error.record.startswith("page 1"), error.record
    if field not in ("data", "starting_at", "end_time"):  # bucket-level fields: no result
        assert error.record.startswith("page 1, bucket 1 ("), error.record
    assert value in str(error) and expected in error.expected, str(error)
    assert str(error).startswith(f"{path.name}: {error.record}: {field} = ")


CSV_CASES = [
    pytest.param("focus_1_2.csv", 1, "BillingCurrency", "usd", None, id="focus lower-case currency is accepted"),
    pytest.param("focus_1_2.csv", 1, "BillingCurrency", "EUR", "never converts currencies", id="focus EUR"),
    pytest.param("focus_1_2.csv", 2, "ConsumedUnit", "Bushels", "a known unit", id="focus unknown unit"),
    pytest.param("focus_1_2.csv", 2, "BilledCost", "1,5", "a decimal number", id="focus decimal comma"),
    pytest.param("focus_1_2.csv", 1, "ChargeCategory", "Usagee", "Usage, Purchase, Tax", id="focus charge category"),
    pytest.param("focus_1_2.csv", 1, "ChargePeriodStart", "01/06/2025", "RFC 3339", id="focus ambiguous date"),
    pytest.param("aws_cur_bedrock.csv", 3, "line_item_currency_code", "JPY", "never converts", id="cur yen"),
    pytest.param("aws_cur_bedrock.csv", 2, "pricing_unit", "Lightyears", "a known unit", id="cur unknown unit"),
    pytest.param("aws_cur_bedrock.csv", 1, "line_item_line_item_type", "Gift", "a CUR line item type",
                 id="cur unknown line item type"),
]  # fmt: skip


@pytest.mark.parametrize(("sample", "row", "column", "value", "expected"), CSV_CASES)
def test_bad_csv_is_refused_naming_the_row(
    tmp_path: Path, sample: str, row: int, column: str, value: str, expected: str | None
) -> None:
    path = _csv_variant(tmp_path, sample, row, column, value)
    if expected is None:
        lines, _ = extract(path)
        assert lines[0].currency == "USD"
        return
    with pytest.raises(BillingImportError) as caught:
        extract(path)
    error = caught.value
    assert error.record == f"row {row}" and error.value == value, str(error)
    assert expected in error.expected and error.file == path.name
    assert error.field in (column, "ConsumedQuantity") or error.field == column, str(error)


def test_a_missing_mandatory_column_is_named(tmp_path: Path) -> None:
    text = (TESTDATA / "focus_1_2.csv").read_text().replace("BillingCurrency", "Currency", 1)
    path = tmp_path / "focus.csv"
    path.write_text(text)
    with pytest.raises(BillingImportError) as caught:
        extract(path, "focus")
    assert caught.value.record == "header" and caught.value.value == ["BillingCurrency"]


def test_a_short_row_is_refused(tmp_path: Path) -> None:
    lines = (TESTDATA / "aws_cur_bedrock.csv").read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 3)[0]
    path = tmp_path / "cur.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BillingImportError, match=r"row 2 \(line 3\): expected 17 columns as in the header, found 14"):
        extract(path)


@pytest.mark.parametrize(
    ("content", "format", "message"),
    [
        pytest.param('{"data": [', "openai_costs", "line 1: expected valid JSON", id="truncated JSON"),
        pytest.param('{"data": [', "auto", "not recognised as any of", id="truncated JSON, auto"),
        pytest.param("just some text\n", "auto", "not recognised", id="not an export"),
        pytest.param("a,b,c\n1,2,3\n", "auto", "csv file not recognised", id="unrelated CSV"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, content: str, format: str, message: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(content)
    with pytest.raises(BillingImportError, match=message):
        extract(path, format)


def test_an_unknown_format_name_lists_the_formats(tmp_path: Path) -> None:
    with pytest.raises(BillingImportError, match="one of auto, openai_costs"):
        extract(TESTDATA / "openai_usage.json", "openai_invoice")
