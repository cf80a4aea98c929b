"""Billing lines in ClickHouse (real chDB): imports are all or nothing, re-imports and
overlapping periods never double count, restated lines stay in history."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from otelspend.finance.billing import service
from otelspend.finance.billing import store as billing_store
from otelspend.finance.billing.lines import BillingImportError
from tests.finance.billing.helpers import TESTDATA

DAY1, DAY3 = 1748736000, 1748908800


def _billed(store) -> Decimal:
    return sum((row["amount"] or Decimal(0) for row in billing_store.current_lines(store, DAY1, DAY3)), Decimal(0))


def test_import_stores_lines_and_records_the_import(store) -> None:
    result = service.import_file(store, TESTDATA / "anthropic_cost.json")
    assert result.lines == 6 and result.replaced == 0 and result.format == "anthropic_cost"
    assert result.usage_usd == Decimal("7.535") and [d.isoformat() for d in result.days] == ["2025-06-01", "2025-06-02"]
    assert _billed(store) == Decimal("7.535")
    (recorded,) = service.list_imports(store)
    assert recorded["lines"] == 6 and recorded["billed_usd"] == "7.535000000000000"
    assert recorded["file_name"] == "anthropic_cost.json" and len(recorded["file_sha256"]) == 64


def test_reimporting_the_same_file_never_double_counts(store) -> None:
    first = service.import_file(store, TESTDATA / "openai_costs.jsonl")
    second = service.import_file(store, TESTDATA / "openai_costs.jsonl")
    assert second.replaced == first.lines == 5
    lines = billing_store.current_lines(store, DAY1, DAY3)
    assert len(lines) == 5 and {row["import_id"] for row in lines} == {second.import_id}
    assert _billed(store) == Decimal("2.195")
    history = store.scalar(f"SELECT count() FROM {store.database}.billing_lines")
    assert history == 10, "both versions kept"


def test_an_overlapping_restated_period_replaces_and_keeps_history(store, tmp_path: Path) -> None:
    service.import_file(store, TESTDATA / "anthropic_cost.json")  # days 1 and 2: $7.535
    pages = json.loads((TESTDATA / "anthropic_cost.json").read_text())
    restated = pages[1]  # day 2 only, the web search restated from $0.20 to $0.25
    restated["data"][0]["results"][2]["amount"] = "25"
    path = tmp_path / "anthropic_day2.json"
    path.write_text(json.dumps(restated))
    result = service.import_file(store, path)
    assert result.replaced == 3 and result.lines == 3
    assert _billed(store) == Decimal("7.585")
    versions = store.rows(
        f"SELECT amount FROM {store.database}.billing_lines WHERE kind = 'web_search' ORDER BY import_seq"
    )
    assert [v[0] for v in versions] == [Decimal("0.2"), Decimal("0.25")]


def test_a_file_refused_half_way_leaves_nothing(store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "BATCH_LINES", 1)  # lines reach the table before the bad record
    rows = (TESTDATA / "aws_cur_bedrock.csv").read_text().splitlines()
    rows[4] = rows[4].replace(",USD,", ",EUR,")
    path = tmp_path / "cur.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(BillingImportError, match=r"cur.csv: row 4: line_item_currency_code = 'EUR'"):
        service.import_file(store, path)
    assert store.scalar(f"SELECT count() FROM {store.database}.billing_lines") == 0
    assert service.list_imports(store) == []
    assert _billed(store) == 0


def test_lines_of_an_unrecorded_import_are_never_seen(store) -> None:
    """A crash between the last line and the import record leaves rows nobody reads."""
    columns = service._Columns("crashed", 1)
    from tests.finance.billing.helpers import extract

    for line in extract(TESTDATA / "openai_costs.jsonl")[0]:
        columns.add(line)
    columns.flush(store)
    assert store.scalar(f"SELECT count() FROM {store.database}.billing_lines") == 5
    assert billing_store.current_lines(store, DAY1, DAY3) == []


@pytest.mark.parametrize(
    ("content", "format", "expected"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", "focus", "UnicodeDecodeError", id="binary as FOCUS"),
        pytest.param(b"\x1f\x8b\x08\x00broken", "aws_cur", "a readable aws_cur file", id="truncated gzip"),
        pytest.param(b"PAR1 not really parquet PAR1", "focus", "a readable focus file", id="broken parquet"),
    ],
)
def test_damaged_files_are_refused_not_crashed_on(store, tmp_path: Path, content: bytes, format: str,
                                                  expected: str) -> None:  # fmt: skip
    path = tmp_path / "export.bin"
    path.write_bytes(content)
    with pytest.raises(BillingImportError, match=expected):
        service.import_file(store, path, format=format)
    assert service.list_imports(store) == []


def test_the_ledger_query_runs_with_the_team_join(store) -> None:
    """A mapping by team reads each call's run team (runs hold it, spans do not)."""
    assert billing_store.ledger_usage(store, 0, 86_400 * 10**9, ["openai"], with_team=True) == []
    assert billing_store.ledger_usage(store, 0, 86_400 * 10**9, ["openai"], with_team=False) == []
