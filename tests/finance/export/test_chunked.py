"""The export reads the ledger a few days per query (``CHUNK_DAYS``) and cuts each result into
days: a long window's file is byte for byte the files of its days put together, and money past
Int64's 9,223.37 USD (one big call, or one busy day's row) stays exact. Real chDB, rows inserted
as the writer stores them."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

from otelspend.clickhouse.client import Store
from otelspend.finance.export import service
from otelspend.finance.export.service import ExportRequest, export
from otelspend.finance.export.validate import validate_file
from tests.finance.export import foreign

FIRST = dt.datetime(2026, 10, 26, tzinfo=dt.UTC)
DAYS = 10
NS = 10**9
DAY_NS = 86_400 * NS
BIG_DAY = 6
"""The day team search makes two calls of 6,000 USD of input and 2,000 USD of output each:
under Int64's 9,223.37 USD a call, over it once summed."""


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * NS


def _ledger(store: Store) -> Decimal:
    """Runs on every day but the third (a gap), two teams, itemized calls at 3 USD per million
    input tokens and 20 per million output; returns the whole cost."""
    runs, spans, total = [], [], Decimal(0)
    for day in range(DAYS):
        if day == 2:
            continue
        for index in range(3):
            run = f"d{day}r{index}"
            start = FIRST + dt.timedelta(days=day, hours=5 * index + 1, minutes=day)
            if day == BIG_DAY and index < 2:
                # 2e9 input tokens at 3 USD per million, 1e8 output at 20: 8,000 USD a call.
                usage = (2_000_000_000, 100_000_000, Decimal(6_000), Decimal(2_000))
            else:
                usage = (
                    1_000 * (day + 1),
                    100 * (index + 1),
                    Decimal(3 * (day + 1)) / 1000,
                    Decimal(2 * (index + 1)) / 1000,
                )
            input_tokens, output_tokens, input_usd, output_usd = usage
            cost = input_usd + output_usd
            total += cost
            team = "search" if index == 0 or (day == BIG_DAY and index == 1) else "support"
            runs.append([run, 1, 1, start, start + dt.timedelta(seconds=3), team, cost])
            spans.append([run, "a", 1, start, "call", "anthropic", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5",
                          cost, input_usd, output_usd, input_tokens, output_tokens])  # fmt: skip
    foreign.insert(store, runs, spans)
    return total


def _file(store: Store, start_ns: int, end_ns: int, granularity: str) -> bytes:
    return b"".join(export(store, ExportRequest(start_ns, end_ns, granularity), "csv"))


def test_chunks_put_the_first_day_alone_then_group_calendar_days() -> None:
    days = [(d * DAY_NS, (d + 1) * DAY_NS) for d in (0, 1, 2, 3, 4, 5, 9, 10)]
    chunks = service._chunks(days)
    assert [[start // DAY_NS for start, _ in chunk] for chunk in chunks] == [[0], [1, 2, 3, 4], [5], [9, 10]]
    assert [window for chunk in chunks for window in chunk] == days


def test_a_long_window_is_its_days_put_together_and_stays_exact(store: Store, tmp_path: Path) -> None:
    total = _ledger(store)
    start, end = _ns(FIRST), _ns(FIRST) + DAYS * DAY_NS
    assert len(service._chunks(list(service.day_windows(start, end)))) >= 3, "the window spans several queries"
    for granularity in ("day", "hour"):
        whole = _file(store, start, end, granularity)
        header, _, body = whole.partition(b"\r\n")
        days = [_file(store, start + d * DAY_NS, start + (d + 1) * DAY_NS, granularity) for d in range(DAYS)]
        assert all(day.startswith(header + b"\r\n") for day in days)
        assert body == b"".join(day.partition(b"\r\n")[2] for day in days), granularity

        path = tmp_path / f"chunked-{granularity}.csv"
        path.write_bytes(whole)
        report = validate_file(path)
        assert report.ok and report.warnings == 0, report.summary()
        assert report.totals["BilledCost"] == report.totals["ListCost"] == total

    rows = list(csv.DictReader(io.StringIO(_file(store, start, end, "day").decode())))
    assert {r["ChargePeriodStart"][:10] for r in rows} == {
        (FIRST + dt.timedelta(days=d)).date().isoformat() for d in range(DAYS) if d != 2
    }
    big = [
        r for r in rows if r["ChargePeriodStart"].startswith((FIRST + dt.timedelta(days=BIG_DAY)).date().isoformat())
    ]
    by_kind = {(r["SubAccountId"], r["x_ChargeKind"]): r for r in big}
    # Team search had both big calls that day: 12,000 USD of input in one row (Int64 femto-USD
    # would have wrapped at 9,223.37), at the same 3 USD per million tokens as every small call.
    search_input, search_output = by_kind[("search", "uncached_input")], by_kind[("search", "output")]
    assert (search_input["ListCost"], search_input["ConsumedQuantity"], search_input["ListUnitPrice"]) == (
        "12000",
        "4000000000",
        "3",
    )
    assert (search_output["ListCost"], search_output["ConsumedQuantity"], search_output["ListUnitPrice"]) == (
        "4000",
        "200000000",
        "20",
    )
    assert (search_input["x_CallCount"], search_input["x_RunCount"]) == ("2", "2")
    assert by_kind[("support", "uncached_input")]["ListCost"] == "0.021"
