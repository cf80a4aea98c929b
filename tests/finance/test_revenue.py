"""Revenue import: exact days, the latest import wins, every bad line named, nothing half-stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otelspend.cli import main
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import revenue as queries
from otelspend.finance.revenue import RevenueError, RevenueLine, parse_csv, parse_records, store_lines
from tests import canary
from tests.conftest import Running

GOOD = """period,tenant,customer,feature,revenue_usd
2026-11,acme,,,12000.00
2026-11-15,,globex,search,80.25
"""


@given(
    st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 1, 1)),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=-(10**22), max_value=10**22),
)
def test_a_line_spreads_over_its_days_exactly(start: dt.date, days: int, femto: int) -> None:
    line = RevenueLine(start, start + dt.timedelta(days=days), "t", "", "", femto)
    parts = line.days()
    assert len(parts) == days and sum(share for _, share in parts) == femto
    assert all(abs(share - Fraction(femto, days)) < 1 for _, share in parts)


def test_csv_lines() -> None:
    lines = parse_csv(GOOD, "r.csv")
    assert lines[0] == RevenueLine(dt.date(2026, 11, 1), dt.date(2026, 12, 1), "acme", "", "", 12000 * 10**15)
    assert lines[1] == RevenueLine(dt.date(2026, 11, 15), dt.date(2026, 11, 16), "", "globex", "search", 80250 * 10**12)
    spans = parse_csv("period_start,period_end,customer,revenue_usd,currency\n2026-12-30,2027-01-02,x,3,usd\n")
    assert [day.isoformat() for day, _ in spans[0].days()] == ["2026-12-30", "2026-12-31", "2027-01-01"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "period,tenant,revenue_usd\n2026-13,a,1\n", "line 2, period = '2026-13': expected YYYY-MM", id="bad-month"
        ),
        pytest.param(
            "period,tenant,revenue_usd\n2026-11,a,ten\n",
            "line 2, revenue_usd = 'ten': expected a decimal",
            id="bad-amount",
        ),
        pytest.param(
            "period,tenant,revenue_usd\n2026-11,a,0.0000000000000001\n",
            "line 2, revenue_usd = '0.0000000000000001': expected a decimal amount in USD with at most 15 places",
            id="finer-than-femto",
        ),
        pytest.param("period,tenant,revenue_usd\n2026-11,,5\n", "line 2, tenant/customer: name a tenant", id="nobody"),
        pytest.param(
            "period,tenant,revenue_usd,currency\n2026-11,a,5,EUR\n", "line 2, currency = 'EUR': only USD", id="currency"
        ),
        pytest.param("period,tenant,amount\n2026-11,a,5\n", "header: unknown column 'amount'", id="unknown-column"),
        pytest.param("tenant,revenue_usd\na,5\n", "header: give a period column", id="no-period"),
        pytest.param(
            "period_start,period_end,tenant,revenue_usd\n2026-11-05,2026-11-05,a,5\n",
            "line 2, period_end = '2026-11-05': must be after period_start",
            id="empty-span",
        ),
        pytest.param(
            "period,tenant,revenue_usd\n2026-11,a,5\n2026-11-03,a,1\n",
            "lines 1 and 2 both give revenue for tenant 'a'",
            id="overlap",
        ),
        pytest.param("period,tenant,revenue_usd\n", "no revenue lines", id="empty"),
    ],
)
def test_bad_input_is_refused_whole_naming_line_column_and_value(text: str, message: str) -> None:
    with pytest.raises(RevenueError) as caught:
        parse_csv(text, "r.csv")
    assert str(caught.value).startswith("revenue r.csv: ")
    assert message in str(caught.value), str(caught.value)


def test_json_records_are_checked_the_same_way() -> None:
    with pytest.raises(RevenueError, match=r"item 2, revenue_usd = 'x'"):
        parse_records(
            [
                ({"period": "2026-11", "tenant": "a", "revenue_usd": "1"}, 1),
                ({"period": "2026-11", "tenant": "b", "revenue_usd": "x"}, 2),
            ],
            "body",
        )


def test_stored_days_add_up_and_a_reimport_replaces(store: Store) -> None:
    first = store_lines(store, parse_csv(GOOD), "r.csv@1")
    assert (first.lines, first.days, first.revenue_femto) == (2, 31, 12080250 * 10**12)
    rows = store.rows(*queries.totals(store.database, "2026-11-01", "2026-12-01"))
    assert [(t, c, f, Decimal(r), n) for t, c, f, r, _, _, n in rows] == [
        ("acme", "", "", Decimal("12000"), 30),
        ("", "globex", "search", Decimal("80.25"), 1),
    ]
    store_lines(store, parse_csv("period,tenant,revenue_usd\n2026-11,acme,9000\n"), "r.csv@2")
    again = store.rows(*queries.totals(store.database, "2026-11-01", "2026-12-01"))
    assert Decimal(again[0][3]) == Decimal(9000)
    assert sum(Decimal(row[3]) for row in again) == Decimal("9080.25")


def test_cli_imports_through_the_running_server_and_a_refusal_is_not_a_fallback(
    server: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "revenue.csv"
    path.write_text(GOOD)
    api = ["--api", server.api_url]
    assert main(["revenue", "import", str(path), *api, "--token", canary.API_TOKEN]) == 0
    out = capsys.readouterr().out
    assert f"imported revenue from {path} through the server at {server.api_url}" in out
    assert "lines      2 (31 days, 2026-11-01 .. 2026-11-30)" in out and "revenue    12080.250000000000000 USD" in out
    assert Decimal(server.scalar("SELECT sum(amount_usd) FROM {db}.revenue FINAL")) == Decimal("12080.25")
    # A wrong token is the server refusing: exit 1 with its answer, never an offline import instead.
    assert main(["revenue", "import", str(path), *api, "--token", canary.WRONG_TOKEN]) == 1
    captured = capsys.readouterr()
    assert (
        f"otelspend: {server.api_url} answered 401: missing or invalid bearer token" in captured.err
        and "imported" not in captured.out
    )
