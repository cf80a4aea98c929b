"""The export's seams to issue 14 on a loaded ledger (real chDB, spans through the OTLP exporter,
pools allocated by the server's job): charge spans are rows of their kind and the export still
adds up to the rollups' direct cost; allocated money is rows of its own (pool@version, ratio over
the pool period, unallocated money apart) adding up to the rollups' allocated cost; every file
validates."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from otelspend.cli import main
from otelspend.finance.export.service import export, request_from_settings
from otelspend.finance.export.validate import validate_file
from otelspend.settings import ExportSettings
from tests.finance.loaded import DAY_NS, Loaded

ALLOCATED = {"allocated_share", "unallocated_share"}


def _rows(data: bytes, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    return pq.read_table(io.BytesIO(data)).to_pylist()


def _validated(tmp_path: Path, data: bytes, fmt: str) -> list[dict[str, Any]]:
    path = tmp_path / f"loaded.{fmt}"
    path.write_bytes(data)
    report = validate_file(path)
    assert report.ok and report.warnings == 0, report.summary()
    return _rows(data, fmt)


def _rollup_totals(loaded: Loaded, days: int = 2) -> dict[str, Decimal]:
    params = {**loaded.window(days), "group_by": "tenant", "metrics": "direct_cost_usd,allocated_cost_usd"}
    with loaded.api() as api:
        answer = api.get("/v1/rollups", params=params)
    assert answer.status_code == 200, answer.text
    return {key: Decimal(value) for key, value in answer.json()["totals"].items() if value is not None}


def _sum(rows: list[dict[str, Any]], column: str = "BilledCost") -> Decimal:
    return sum((Decimal(str(r[column])) for r in rows), Decimal(0))


def _stored_pool_periods(loaded: Loaded) -> dict[tuple[str, int], tuple[Decimal, str]]:
    """(pool, period start s) -> (amount in force, rule version), straight from the table."""
    rows = loaded.server.rows(
        "SELECT pool, toUnixTimestamp(period_start), sum(sign * amount_usd), any(rule_version) "
        "FROM {db}.allocations GROUP BY pool, period_start"
    )
    return {(pool, int(start)): (Decimal(amount), version) for pool, start, amount, version in rows}


@pytest.mark.parametrize(
    ("granularity", "fmt"),
    [pytest.param("day", "csv", id="daily-csv"), pytest.param("hour", "parquet", id="hourly-parquet")],
)
def test_charges_and_allocations_are_rows_that_add_up_to_the_rollups(
    loaded: Loaded, tmp_path: Path, granularity: str, fmt: str
) -> None:
    with loaded.api() as api:
        answer = api.get("/v1/export/focus", params={**loaded.window(), "granularity": granularity, "format": fmt})
    assert answer.status_code == 200, answer.text
    rows = _validated(tmp_path, answer.content, fmt)
    totals = _rollup_totals(loaded)
    usage = [r for r in rows if r["x_ChargeKind"] not in ALLOCATED]
    allocated = [r for r in rows if r["x_ChargeKind"] in ALLOCATED]
    # Direct cost (model calls and charges) and allocated cost, each to the femto-dollar.
    assert _sum(usage) == totals["direct_cost_usd"] > 0
    assert _sum(allocated) == totals["allocated_cost_usd"] == Decimal(2 * (300 + 7))
    assert _sum(rows, "x_CalculatedCost") == totals["direct_cost_usd"] + totals["allocated_cost_usd"]
    # Every charge kind of the runs is rows of its own kind, named by the entry that priced it.
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    quantity: dict[str, Decimal] = defaultdict(Decimal)
    for r in usage:
        by_kind[r["x_ChargeKind"]] += Decimal(str(r["BilledCost"]))
        quantity[r["x_ChargeKind"]] += Decimal(str(r["ConsumedQuantity"]))
    runs = loaded.runs
    assert by_kind["tool"] == runs * Decimal("0.01") and quantity["tool"] == runs
    assert by_kind["retrieval"] == runs * Decimal("0.00005") and quantity["retrieval"] == runs
    assert by_kind["compute"] == runs * Decimal("0.00275") and quantity["compute"] == runs * Decimal("2.5")
    assert "request_fee" not in by_kind  # the fees are tool and retrieval fees, said so
    services = {r["x_ChargeKind"]: r["ServiceName"] for r in usage if not r["x_Model"]}
    assert services == {"tool": "web-search", "retrieval": "retriever", "compute": "h100"}
    compute = next(r for r in usage if r["x_ChargeKind"] == "compute")
    assert (compute["ConsumedUnit"], compute["PricingUnit"], Decimal(str(compute["ListUnitPrice"]))) == (
        "GPU-Seconds", "GPU-Seconds", Decimal("0.0011")
    )  # fmt: skip
    assert all(int(str(r["x_CallCount"])) >= 1 for r in usage)


def test_allocated_rows_name_the_rule_and_the_ratio_and_keep_unallocated_money(loaded: Loaded) -> None:
    settings = ExportSettings(sub_account="tenant")
    start, end = loaded.day_ns, loaded.day_ns + 2 * DAY_NS
    request = request_from_settings(settings, start, end, "day", store=loaded.server.store)
    rows = _rows(b"".join(export(loaded.server.store, request, "csv")), "csv")
    periods = _stored_pool_periods(loaded)
    day_s, next_s = start // 10**9, start // 10**9 + 86_400
    allocated = [r for r in rows if r["x_ChargeKind"] == "allocated_share"]
    unallocated = [r for r in rows if r["x_ChargeKind"] == "unallocated_share"]
    # The day after the runs: each pool's whole amount, one row each, no owner, ratio 1.
    assert sorted((r["AllocatedResourceId"], Decimal(r["BilledCost"])) for r in unallocated) == [
        ("gateway", Decimal(7)),
        ("vector-db", Decimal(300)),
    ]
    for r in unallocated:
        assert r["SubAccountId"] == "" and r["ChargePeriodStart"].startswith(_day(next_s))
        assert r["AllocatedMethodId"] == f"{r['AllocatedResourceId']}@{periods[(r['AllocatedResourceId'], next_s)][1]}"
        assert '"AllocatedRatio":1,' in r["AllocatedMethodDetails"]
    # The runs' day: one row per pool x tenant, ratio = its amount over the pool period's amount.
    per_pool: dict[str, Decimal] = defaultdict(Decimal)
    for r in allocated:
        pool = r["AllocatedResourceId"]
        amount, version = periods[(pool, day_s)]
        assert r["AllocatedMethodId"] == f"{pool}@{version}"
        ratio = Fraction(Decimal(r["BilledCost"])) / Fraction(amount)
        element = r["AllocatedMethodDetails"].split('"AllocatedRatio":')[1].split(",")[0]
        assert abs(Fraction(Decimal(element)) - ratio) < Fraction(1, 10**15)
        per_pool[pool] += Decimal(r["BilledCost"])
    assert per_pool == {"vector-db": Decimal(300), "gateway": Decimal(7)}
    # By tenant, the vector-db rows are the pool's shares: proportional to each tenant's runs.
    vector = [r for r in allocated if r["AllocatedResourceId"] == "vector-db"]
    tenants = {r["SubAccountId"]: Decimal(r["BilledCost"]) for r in vector}
    stored = loaded.server.rows(
        "SELECT tenant, sum(sign * amount_usd) FROM {db}.allocations WHERE pool = 'vector-db' "
        "AND period_start = toDateTime({s:Int64}, 'UTC') GROUP BY tenant",
        s=day_s,
    )
    assert tenants == {tenant: Decimal(amount) for tenant, amount in stored} and len(tenants) == 4
    # Every run has a tenant: every share placed on runs has a sub-account.
    assert all(r["SubAccountId"] for r in allocated)


def _day(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%d")


def test_a_window_of_only_unallocated_money_still_exports_it(loaded: Loaded, tmp_path: Path) -> None:
    # The day after the runs has no run at all: its money is in the export, not skipped.
    following = {"from": loaded.window(1)["to"], "to": loaded.window(2)["to"]}
    with loaded.api() as api:
        answer = api.get("/v1/export/focus", params={**following, "granularity": "day", "format": "csv"})
    assert answer.status_code == 200, answer.text
    rows = _validated(tmp_path, answer.content, "csv")
    assert {r["x_ChargeKind"] for r in rows} == {"unallocated_share"}
    assert _sum(rows) == Decimal(307)


def test_the_offline_cli_exports_the_same_allocated_rows_as_the_api(loaded: Loaded, tmp_path: Path) -> None:
    window = loaded.window()
    with loaded.api() as api:
        served = api.get("/v1/export/focus", params={**window, "granularity": "day", "format": "csv"}).content
    settings = loaded.server.app.settings
    offline = tmp_path / "offline.csv"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["export", "focus", "--from", window["from"], "--to", window["to"], "--out", str(offline),
                     "--offline", "--clickhouse-dsn", settings.clickhouse.dsn.get_secret_value(),
                     "--database", settings.clickhouse.database, "--data-dir", str(tmp_path)])  # fmt: skip
    assert code == 0, out.getvalue()
    assert offline.read_bytes() == served
    kinds = {r["x_ChargeKind"] for r in _rows(served, "csv")}
    assert kinds >= {"allocated_share", "unallocated_share", "tool", "retrieval", "compute"}
