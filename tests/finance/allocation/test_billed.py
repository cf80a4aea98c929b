"""Billed pools on real chDB: the amount is what imported bill lines bill, read through the
billing import's own store; a period waits for its bill, is allocated once the bill arrives and
restated by exact deltas when a later import restates the bill."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.amounts import PoolAmounts
from otelspend.finance.allocation.job import Allocator
from otelspend.finance.allocation.periods import DAY_NS, period_of
from otelspend.finance.allocation.pools import CostRules, Pool, parse_cost_rules
from otelspend.finance.billing import service
from tests.finance.allocation.runs import insert_runs, run_row
from tests.finance.billing.helpers import TESTDATA

JUNE1 = 1_748_736_000 * 10**9  # 2025-06-01T00:00:00Z: the Anthropic cost report's first day
HOUR = 3600 * 10**9
JUNE2 = JUNE1 + DAY_NS
# The fixture bills $7.2375 on June 1 (input, output, cache read) and $0.2975 on June 2
# (two cache writes and $0.20 of web searches); amounts are in cents in the report.


def billed_pool(billed: dict[str, object], period: str = "day") -> Pool:
    return Pool.model_validate(
        {
            "id": "search-bill",
            "owner": "platform",
            "review": "2027-03-01",
            "description": "the provider's bill for web search",
            "billed": billed,
            "period": period,
            "signal": "runs",
            "method": "proportional",
            "by": "tenant",
        }
    )


@pytest.mark.parametrize(
    ("billed", "period", "day", "expected"),
    [
        pytest.param({"provider": "anthropic"}, "day", JUNE1, "7.2375", id="every-line-of-the-day"),
        pytest.param({"provider": "anthropic"}, "day", JUNE2, "0.2975", id="the-next-day"),
        pytest.param({"kind": "web_search"}, "day", JUNE2, "0.2", id="one-kind"),
        pytest.param({"kind": ["web_search", "output"]}, "day", JUNE1, "6", id="a-list-of-values"),
        pytest.param({"provider": "anthropic"}, "month", JUNE1, "7.535", id="a-monthly-pool-takes-every-day"),
        pytest.param({"kind": "web_search"}, "day", JUNE1, None, id="no-line-that-day-waits"),
        pytest.param({"provider": "openai"}, "day", JUNE1, None, id="another-provider-waits"),
    ],
)
def test_a_billed_pool_costs_what_the_matching_lines_bill(
    store: Store, billed: dict[str, object], period: str, day: int, expected: str | None
) -> None:
    service.import_file(store, TESTDATA / "anthropic_cost.json")
    amount = PoolAmounts(store)(billed_pool(billed, period), period_of(period, day))  # type: ignore[arg-type]
    assert amount == (None if expected is None else int(Decimal(expected) * 10**15))


def test_a_fixed_pool_reads_no_bill(store: Store) -> None:
    pool = Pool.model_validate(
        {
            "id": "p",
            "owner": "o",
            "review": "2027-01-01",
            "description": "d",
            "amount_usd": "1.5",
            "period": "day",
            "signal": "runs",
            "method": "even",
            "by": "tenant",
        }
    )
    assert PoolAmounts(store)(pool, period_of("day", JUNE1)) == 1_500_000_000_000_000


def _allocated(store: Store, start_ns: int) -> dict[str, Decimal]:
    rows = store.rows(
        f"SELECT consumer, sum(sign * amount_usd) FROM {store.database}.allocations "
        "WHERE period_start = toDateTime({start:Int64}, 'UTC') GROUP BY consumer HAVING sum(sign) != 0 ORDER BY 1",
        {"start": start_ns // 10**9},
    )
    return {consumer: Decimal(amount) for consumer, amount in rows}


def _restated_day2(tmp_path: Path, cents: str) -> Path:
    """The report's June 2 page again, the web search billed ``cents`` instead of 20."""
    pages = json.loads((TESTDATA / "anthropic_cost.json").read_text())
    page = pages[1]
    page["data"][0]["results"][2]["amount"] = cents
    path = tmp_path / f"anthropic_day2_{cents}.json"
    path.write_text(json.dumps(page))
    return path


def test_a_period_waits_for_its_bill_then_follows_every_restatement_of_it(store: Store, tmp_path: Path) -> None:
    insert_runs(
        store,
        [
            run_row("a1", JUNE1 + HOUR, tenant="acme"),
            run_row("a2", JUNE2 + HOUR, tenant="acme"),
            run_row("b1", JUNE2 + 2 * HOUR, tenant="beta"),
            run_row("c1", JUNE2 + 3 * HOUR, tenant="gamma"),
        ],
    )
    rules: CostRules = parse_cost_rules(
        "pools:\n  - {id: search-bill, owner: platform, review: 2027-03-01, description: web search bill,\n"
        "     billed: {provider: anthropic, kind: web_search}, period: day, signal: runs,\n"
        "     method: proportional, by: tenant}\n"
    )
    clock = [JUNE2 + DAY_NS + 5 * HOUR]
    allocator = Allocator(store, lambda: rules, PoolAmounts(store), node="n", lookback_days=35, clock=lambda: clock[0])

    before = allocator.catch_up()
    assert [(p.period, bool(p.skipped), p.inserted) for p in before.periods] == [
        ("2025-06-01", True, 0),
        ("2025-06-02", True, 0),
        ("2025-06-03", True, 0),
    ], "no bill yet: every period waits, none is allocated at zero"
    assert store.scalar(f"SELECT count() FROM {store.database}.allocations") == 0

    service.import_file(store, TESTDATA / "anthropic_cost.json")
    clock[0] += HOUR
    billed = allocator.catch_up()
    done = {p.period: p for p in billed.periods}
    assert done["2025-06-02"].amount_femto == 200_000_000_000_000 and done["2025-06-02"].consumers == 3
    assert done["2025-06-01"].skipped, "the bill has no web search on June 1: that day still waits"
    shares = _allocated(store, JUNE2)
    assert sorted(shares) == ["acme", "beta", "gamma"]
    assert sorted(shares.values()) == [Decimal("0.066666666666666"), *[Decimal("0.066666666666667")] * 2]
    assert sum(_allocated(store, JUNE2).values()) == Decimal("0.2"), "to the femto-dollar"
    assert _allocated(store, JUNE1) == {}

    # A later export restates June 2's web search from $0.20 to $0.25: the day moves by the delta.
    service.import_file(store, _restated_day2(tmp_path, "25"))
    clock[0] += HOUR
    restated = {p.period: p for p in allocator.catch_up().periods}["2025-06-02"]
    assert restated.amount_femto == 250_000_000_000_000
    assert restated.cancelled == 3 and restated.inserted == 3
    assert restated.moved_femto == 50_000_000_000_000
    assert sum(_allocated(store, JUNE2).values()) == Decimal("0.25")
    rollup = store.scalar(f"SELECT sum(allocated_usd) FROM {store.database}.rollup_alloc_daily")
    assert Decimal(rollup) == Decimal("0.25"), "the rollups moved by exactly the difference"

    clock[0] += HOUR
    assert allocator.catch_up().rows_written == 0, "nothing new: nothing written"
