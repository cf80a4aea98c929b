"""A call whose stored cost its components do not itemize (a ledger written by something other than
otelspend's pricer) still adds up: the rest is an ``unitemized`` row of one call per call, and the
file validates. Real chDB, rows inserted as a foreign writer would."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from otelspend.clickhouse.client import Store
from otelspend.finance.export.service import ExportRequest, export
from otelspend.finance.export.validate import validate_file
from tests.finance.export import foreign

DAY = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
NS = 10**9


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * NS


def test_cost_without_components_is_an_unitemized_row(store: Store, tmp_path: Path) -> None:
    start = DAY + dt.timedelta(hours=9)
    runs = [
        [f"run{i}", 1, 1, start + dt.timedelta(minutes=i), start + dt.timedelta(minutes=i, seconds=2), "search",
         Decimal("0.0035")] for i in range(2)
    ]  # fmt: skip
    spans = [
        # Itemized by the pricer: input and output make up the whole cost.
        ["run0", "a", 1, start, "call", "openai", "gpt-4o-mini", "openai/gpt-4o-mini", Decimal("0.0025"),
         Decimal("0.0015"), Decimal("0.001"), 10_000, 1_000],
        # Only a total: nothing itemized.
        ["run1", "b", 1, start + dt.timedelta(minutes=1), "call", "openai", "gpt-4o-mini", "", Decimal("0.0035"),
         None, None, 10_000, 1_000],
        # Partly itemized: 0.001 of its 0.0035 is not accounted for by its components.
        ["run0", "c", 1, start + dt.timedelta(seconds=1), "call", "openai", "gpt-4o-mini", "openai/gpt-4o-mini",
         Decimal("0.001"), Decimal("0.0005"), None, 3_000, 0],
    ]  # fmt: skip
    foreign.insert(store, runs, spans)
    path = tmp_path / "unitemized.csv"
    request = ExportRequest(_ns(DAY), _ns(DAY + dt.timedelta(days=1)), "day")
    path.write_bytes(b"".join(export(store, request, "csv")))
    report = validate_file(path)
    assert report.ok and report.warnings == 0, report.summary()
    assert report.totals["BilledCost"] == report.totals["ListCost"] == Decimal("0.007")
    rows = list(csv.DictReader(path.open()))
    rest = [r for r in rows if r["x_ChargeKind"] == "unitemized"]
    assert sorted((r["ConsumedQuantity"], r["ConsumedUnit"], r["ListCost"]) for r in rest) == [
        ("1", "Requests", "0.0005"),
        ("1", "Requests", "0.0035"),
    ]
    assert {r["x_ChargeKind"] for r in rows} == {"uncached_input", "output", "unitemized"}
