"""Statements' allocated cost by pool on a loaded ledger (real chDB, pools allocated by the
server's job): per owner and month, each pool's share equals the rollups API's
``allocated_cost_usd`` for the same owner, pool and month, and nothing allocated is lost."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otelspend.finance.statements.model import OwnerMoney, build, month_window
from otelspend.money import usd_to_femto
from tests.finance.loaded import Loaded


def _month(loaded: Loaded) -> str:
    return dt.datetime.fromtimestamp(loaded.day_ns // 10**9, tz=dt.UTC).strftime("%Y-%m")


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat()


@pytest.mark.parametrize("by", ["tenant", "team"])
def test_a_statements_allocated_figures_equal_the_rollups_by_pool(loaded: Loaded, by: str) -> None:
    month = _month(loaded)
    start, end = month_window(month)
    with loaded.api() as api:
        answer = api.get("/v1/statements", params={"month": month, "by": by})
        assert answer.status_code == 200, answer.text
        statements = answer.json()["statements"]
        params = {"from": _iso(start), "to": _iso(end), "group_by": f"{by},pool", "limit": 1000,
                  "metrics": "allocated_cost_usd"}  # fmt: skip
        rollups = api.get("/v1/rollups", params=params)
        assert rollups.status_code == 200, rollups.text
    expected: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for row in rollups.json()["rows"]:
        amount = Decimal(row["allocated_cost_usd"] or 0)
        if row["pool"] and amount:
            expected[row[by]][row["pool"]] = amount
    found = {
        s["owner"]: {a["pool"]: Decimal(a["cost_usd"]) for a in s["allocated"]} for s in statements if s["allocated"]
    }
    assert found == expected and found
    for s in statements:  # each statement's allocated total is its pools', and loaded = direct + allocated
        assert Decimal(s["allocated_cost_usd"]) == sum(Decimal(a["cost_usd"]) for a in s["allocated"])
        assert Decimal(s["total_cost_usd"]) == Decimal(s["direct_cost_usd"]) + Decimal(s["allocated_cost_usd"])
    # Nothing lost: the month's statements carry every allocated dollar of the month.
    month_allocated = sum(Decimal(s["allocated_cost_usd"]) for s in statements)
    assert month_allocated == Decimal(rollups.json()["totals"]["allocated_cost_usd"])
    # The CSV form says the same, pool by pool.
    with loaded.api() as api:
        text = api.get("/v1/statements", params={"month": month, "by": by, "format": "csv"}).text
    lines = {r["owner"]: r for r in csv.DictReader(io.StringIO(text))}
    for owner, pools in found.items():
        parts = dict(part.split("=") for part in lines[owner]["allocated_by_pool"].split("; "))
        assert {pool: Decimal(amount) for pool, amount in parts.items()} == pools
    # The vector-db pool is split by tenant: by tenant, its shares are the pool's consumers.
    if by == "tenant":
        assert {o for o, pools in found.items() if "vector-db" in pools} >= {"acme", "globex", "initech", "umbrella"}


owners = st.sampled_from(["", "search", "support", "(unallocated)"])
pools = st.sampled_from(["vector-db", "gateway", "gpu"])
allocated_rows = st.lists(
    st.tuples(owners, pools, st.integers(-(10**18), 10**18)).map(
        lambda t: {"owner": t[0], "pool": t[1], "allocated_usd": Decimal(t[2]).scaleb(-15)}
    ),
    max_size=20,
)


@given(rows=allocated_rows, direct=st.integers(0, 10**18))
def test_every_allocated_femto_dollar_is_in_one_statement(rows: list[dict[str, object]], direct: int) -> None:
    totals = [{"owner": "search", "cost_usd": Decimal(direct).scaleb(-15), "runs": 1, "successful_runs": 1,
               "calls": 1, "unpriced_calls": 0}]  # fmt: skip
    month = build("2026-11", "team", totals, [], [], [], money=OwnerMoney(allocated=rows))
    month.check()  # the direct cost still adds up to the month
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        expected[(str(row["owner"]), str(row["pool"]))] += usd_to_femto(row["allocated_usd"])  # type: ignore[arg-type]
    got = {(s.owner, share.pool): share.cost_femto for s in month.statements for share in s.allocated}
    assert got == {key: femto for key, femto in expected.items() if femto}
    for s in month.statements:
        assert s.total_femto == s.direct_femto + sum(share.cost_femto for share in s.allocated)
        assert [share.cost_femto for share in s.allocated] == sorted((p.cost_femto for p in s.allocated), reverse=True)
