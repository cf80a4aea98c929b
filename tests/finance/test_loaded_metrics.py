"""Loaded cost, revenue and margin through the rollup builder equal plain sums, whichever tables
answer (daily and hourly rollups, raw edges), and are null where a cut is not theirs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from otelspend.api.query import rollup
from otelspend.api.requests import rollup_request
from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.periods import DAY_NS, period_of
from otelspend.finance.allocation.pools import Pool
from otelspend.finance.allocation.store import restate
from otelspend.finance.revenue import parse_csv, store_lines
from tests.finance.allocation.runs import insert_runs, run_row

DAY0 = 20_400 * DAY_NS  # 2025-11-08
HOUR = 3600 * 10**9
TENANTS = ("acme", "beta", "gamma")
LOADED = (
    "direct_cost_usd,allocated_cost_usd,loaded_cost_usd,loaded_cost_per_success_usd,revenue_usd,margin_usd,margin_pct"
)


def pool(pool_id: str, amount: str, signal: str, kind: str, **extra: Any) -> Pool:
    return Pool.model_validate(
        {
            "id": pool_id,
            "owner": "o",
            "review": "2027-01-01",
            "description": "d",
            "amount_usd": amount,
            "period": "day",
            "signal": signal,
            "method": "proportional",
            "by": "tenant",
            "cost_kind": kind,
            **extra,
        }
    )


@pytest.fixture
def ledger(store: Store) -> Store:
    runs = []
    for day in range(3):
        for i in range(12):
            tenant = TENANTS[i % 3]
            start = DAY0 + day * DAY_NS + (i * 2 + 1) * HOUR + 17
            runs.append(
                run_row(
                    f"d{day}-r{i}",
                    start,
                    tenant=tenant,
                    customer=f"cust-{tenant}",
                    workflow_type="qa" if i % 2 else "chat",
                    status="error" if i == 5 else "success",
                    input_tokens=100 * (i + 1),
                    output_tokens=10,
                    cost_usd=(i + 1) * 10**13,
                )
            )
    insert_runs(store, runs)
    pools = [pool("vector-db", "300.00", "runs", "retrieval"), pool("gpu", "99.99", "tokens", "compute")]
    for p in pools:
        for day in range(3):
            restate(store, p, period_of("day", DAY0 + day * DAY_NS), lambda q, _: q.amount_femto, node="n")
    store_lines(
        store,
        parse_csv(
            "period_start,period_end,tenant,revenue_usd\n2025-11-08,2025-11-11,acme,900\n2025-11-09,2025-11-10,beta,1\n"
        ),
        "test",
    )
    return store


def ask(store: Store, start: dt.datetime, end: dt.datetime, **params: Any) -> dict[str, Any]:
    request = rollup_request(start=start, end=end, now_ns=DAY0 + 10 * DAY_NS, limit=1000, **params)
    return rollup(store, request)


def plain(store: Store, sql: str, **params: Any) -> dict[str, Decimal]:
    return {str(k): Decimal(v) for k, v in store.rows(sql.replace("{db}", store.database), params)}


WINDOWS = [
    pytest.param(dt.datetime(2025, 11, 8, tzinfo=dt.UTC), dt.datetime(2025, 11, 11, tzinfo=dt.UTC), id="whole-days"),
    pytest.param(
        dt.datetime(2025, 11, 8, 4, 30, tzinfo=dt.UTC), dt.datetime(2025, 11, 10, 13, 7, tzinfo=dt.UTC), id="cut-hours"
    ),
]


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_loaded_cost_by_tenant_adds_direct_and_allocated_exactly(
    ledger: Store, start: dt.datetime, end: dt.datetime
) -> None:
    window = {"a": int(start.timestamp()) * 10**9, "b": int(end.timestamp()) * 10**9}
    direct = plain(
        ledger,
        "SELECT tenant, sum(sign * cost_usd) FROM {db}.runs WHERE start_time >= fromUnixTimestamp64Nano({a:Int64}) "
        "AND start_time < fromUnixTimestamp64Nano({b:Int64}) GROUP BY tenant",
        **window,
    )
    allocated = plain(
        ledger,
        "SELECT tenant, sum(sign * amount_usd) FROM {db}.allocations "
        "WHERE start_time >= fromUnixTimestamp64Nano({a:Int64}) "
        "AND start_time < fromUnixTimestamp64Nano({b:Int64}) GROUP BY tenant",
        **window,
    )
    answer = ask(ledger, start, end, group_by="tenant", metrics=LOADED + ",successful_runs")
    rows = {row["tenant"]: row for row in answer["rows"]}
    assert set(rows) == set(TENANTS)
    for tenant, row in rows.items():
        assert Decimal(row["direct_cost_usd"]) == direct[tenant]
        assert Decimal(row["allocated_cost_usd"]) == allocated[tenant]
        assert Decimal(row["loaded_cost_usd"]) == direct[tenant] + allocated[tenant]
    assert Decimal(answer["totals"]["allocated_cost_usd"]) == sum(allocated.values())
    by_pool = ask(ledger, start, end, group_by="pool", metrics="allocated_cost_usd,direct_cost_usd")
    pools = {row["pool"]: row for row in by_pool["rows"]}
    assert set(pools) == {"", "vector-db", "gpu"}  # direct cost is in no pool
    assert Decimal(pools[""]["direct_cost_usd"]) == sum(direct.values())
    assert Decimal(pools[""]["allocated_cost_usd"]) == 0 and Decimal(pools["gpu"]["direct_cost_usd"]) == 0


def test_whole_days_add_up_to_the_pools_and_revenue_gives_margin(ledger: Store) -> None:
    start, end = dt.datetime(2025, 11, 8, tzinfo=dt.UTC), dt.datetime(2025, 11, 11, tzinfo=dt.UTC)
    answer = ask(ledger, start, end, metrics=LOADED)
    assert Decimal(answer["totals"]["allocated_cost_usd"]) == 3 * (Decimal("300") + Decimal("99.99"))
    assert answer["source"]["tables"][0] == "rollup_runs_daily"
    kinds = ask(ledger, start, end, group_by="cost_kind", metrics="allocated_cost_usd")
    assert {r["cost_kind"]: Decimal(r["allocated_cost_usd"]) for r in kinds["rows"]} == {
        "retrieval": Decimal(900),
        "compute": Decimal("299.97"),
    }
    tenants = {r["tenant"]: r for r in ask(ledger, start, end, group_by="tenant", metrics=LOADED)["rows"]}
    acme = tenants["acme"]
    assert Decimal(acme["revenue_usd"]) == 900
    assert Decimal(acme["margin_usd"]) == 900 - Decimal(acme["loaded_cost_usd"])
    assert acme["margin_pct"] == pytest.approx(100 * float(Decimal(acme["margin_usd"]) / 900))
    assert Decimal(tenants["beta"]["revenue_usd"]) == 1 and Decimal(tenants["beta"]["margin_usd"]) < 0
    assert tenants["gamma"]["revenue_usd"] is None and tenants["gamma"]["margin_usd"] is None


def test_cuts_the_allocations_or_revenue_do_not_hold_are_null(ledger: Store) -> None:
    start, end = dt.datetime(2025, 11, 8, tzinfo=dt.UTC), dt.datetime(2025, 11, 11, tzinfo=dt.UTC)
    by_workflow = ask(ledger, start, end, group_by="workflow_type", metrics=LOADED)
    for row in by_workflow["rows"]:
        assert row["allocated_cost_usd"] is not None and row["revenue_usd"] is None
    by_model = ask(ledger, start, end, group_by="model", metrics=LOADED)
    for row in by_model["rows"]:
        assert row["allocated_cost_usd"] is None and row["loaded_cost_usd"] is None and row["margin_usd"] is None
    assert by_model["totals"]["loaded_cost_usd"] is None
