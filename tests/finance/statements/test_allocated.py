"""Statements' allocated cost by pool on a loaded ledger (real chDB, pools allocated by the
server's job): per owner and month, each pool's share equals the rollups API's
``allocated_cost_usd`` for the same owner, pool and month, and nothing allocated is lost."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest

from otelspend.finance.statements.model import month_window
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
    # The vector-db pool is split by tenant: by tenant, its shares are the pool's consumers.
    if by == "tenant":
        assert {o for o, pools in found.items() if "vector-db" in pools} >= {"acme", "globex", "initech", "umbrella"}
