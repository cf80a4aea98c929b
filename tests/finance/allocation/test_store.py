"""Allocation rows on real chDB: exact sums, exact deltas on restatement, rollups in step."""

from __future__ import annotations

from decimal import Decimal

from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.periods import DAY_NS, PoolPeriod, period_of
from otelspend.finance.allocation.pools import Pool
from otelspend.finance.allocation.store import read_stored, restate, withdraw
from tests.finance.allocation.runs import insert_runs, reemit, run_row

DAY0 = 20_400 * DAY_NS  # 2025-11-08
PERIOD = period_of("day", DAY0 + 3600 * 10**9)


def pool(**extra: object) -> Pool:
    fields: dict[str, object] = {
        "id": "vector-db",
        "owner": "platform",
        "review": "2027-03-01",
        "description": "shared",
        "amount_usd": "300.00",
        "period": "day",
        "signal": "tokens",
        "method": "proportional",
        "by": "tenant",
    }
    fields.update(extra)
    return Pool.model_validate(fields)


def fixed(p: Pool, _period: PoolPeriod) -> int | None:
    return p.amount_femto


def amounts(store: Store) -> dict[str, Decimal]:
    """Per consumer, the money in force (sum of signed rows) and the rollups' view of it."""
    rows = store.rows(
        f"SELECT consumer, sum(sign * amount_usd) FROM {store.database}.allocations GROUP BY consumer "
        "HAVING sum(sign * amount_usd) != 0 ORDER BY consumer"
    )
    return {consumer: Decimal(amount) for consumer, amount in rows}


def rollup_total(store: Store, table: str) -> Decimal:
    return Decimal(store.scalar(f"SELECT sum(allocated_usd) FROM {store.database}.{table}"))


def test_a_period_adds_up_and_a_second_look_writes_nothing(store: Store) -> None:
    insert_runs(
        store,
        [
            run_row("r1", DAY0 + 1, tenant="acme", input_tokens=300, output_tokens=0),
            run_row("r2", DAY0 + 2, tenant="acme", input_tokens=100, output_tokens=0),
            run_row("r3", DAY0 + 3, tenant="beta", input_tokens=200, output_tokens=100),
            run_row("r4", DAY0 + DAY_NS + 3, tenant="beta", input_tokens=900),  # the next day
        ],
    )
    first = restate(store, pool(), PERIOD, fixed, node="n")
    assert (first.inserted, first.cancelled, first.rows_in_force) == (3, 0, 3)
    assert amounts(store) == {"acme": Decimal("171.428571428571429"), "beta": Decimal("128.571428571428571")}
    assert sum(amounts(store).values()) == Decimal(300)
    assert rollup_total(store, "rollup_alloc_hourly") == rollup_total(store, "rollup_alloc_daily") == Decimal(300)
    again = restate(store, pool(), PERIOD, fixed, node="n")
    assert (again.inserted, again.cancelled, again.moved_femto) == (0, 0, 0)
    assert store.scalar(f"SELECT count() FROM {store.database}.allocations") == 3
    row, _ = read_stored(store, "vector-db", PERIOD)[("vector-db", PERIOD.start_ns, "acme", "r1")]
    assert (row.run_weight, row.consumer_weight, row.pool_weight) == (300, 400, 700)
    assert row.consumer_ratio == Decimal("0.571428571428571429") and row.rule_version == pool().rule_version


def test_a_late_run_restates_by_exact_deltas(store: Store) -> None:
    insert_runs(
        store,
        [
            run_row("r1", DAY0 + 1, tenant="acme", input_tokens=100),
            run_row("r2", DAY0 + 2, tenant="beta", input_tokens=100),
        ],
    )
    restate(store, pool(), PERIOD, fixed, node="n")
    before = amounts(store)
    insert_runs(store, [run_row("late", DAY0 + 5, tenant="gamma", input_tokens=200)])
    result = restate(store, pool(), PERIOD, fixed, node="n")
    after = amounts(store)
    assert before == {"acme": Decimal(150), "beta": Decimal(150)}
    assert after == {"acme": Decimal(75), "beta": Decimal(75), "gamma": Decimal(150)}
    assert result.changes == {
        "acme": (150 * 10**15, 75 * 10**15),
        "beta": (150 * 10**15, 75 * 10**15),
        "gamma": (0, 150 * 10**15),
    }
    assert (result.cancelled, result.inserted) == (2, 3)
    # The last insert is the delta itself: cancels and new rows add up to the change.
    delta = store.rows(
        f"SELECT consumer, sum(sign * amount_usd) FROM {store.database}.allocations "
        f"WHERE version = (SELECT max(version) FROM {store.database}.allocations) OR sign = -1 GROUP BY consumer "
        "ORDER BY consumer"
    )
    assert {c: Decimal(a) for c, a in delta} == {"acme": Decimal(-75), "beta": Decimal(-75), "gamma": Decimal(150)}
    assert rollup_total(store, "rollup_alloc_hourly") == Decimal(300)


def test_a_changed_run_and_a_changed_rule_restate_too(store: Store) -> None:
    old = run_row("r1", DAY0 + 1, tenant="acme", input_tokens=100, outcome="")
    insert_runs(store, [old, run_row("r2", DAY0 + 2, tenant="beta", input_tokens=300)])
    restate(store, pool(), PERIOD, fixed, node="n")
    reemit(store, old, outcome="accepted")  # attribution moved: the row follows
    result = restate(store, pool(), PERIOD, fixed, node="n")
    assert (result.cancelled, result.inserted, result.moved_femto) == (1, 1, 0)
    outcome = store.rows(
        f"SELECT outcome, sum(sign * amount_usd) FROM {store.database}.allocations WHERE run_id = 'r1' GROUP BY outcome"
        " HAVING sum(sign) != 0"
    )
    assert outcome == [("accepted", Decimal(75))]
    changed = pool(amount_usd="400", signal="runs")
    result = restate(store, changed, PERIOD, fixed, node="n")
    assert (result.cancelled, result.inserted) == (2, 2)
    assert amounts(store) == {"acme": Decimal(200), "beta": Decimal(200)}
    versions = store.rows(
        f"SELECT DISTINCT rule_version FROM {store.database}.allocations GROUP BY rule_version, consumer, run_id "
        "HAVING sum(sign) > 0"
    )
    assert versions == [(changed.rule_version,)]
    assert rollup_total(store, "rollup_alloc_hourly") == rollup_total(store, "rollup_alloc_daily") == Decimal(400)


def test_a_period_without_consumers_is_shown_unallocated_and_withdrawal_cancels(store: Store) -> None:
    result = restate(store, pool(), PERIOD, fixed, node="n")
    assert result.unallocated_femto == 300 * 10**15 and result.consumers == 0
    assert amounts(store) == {"(unallocated)": Decimal(300)}
    unallocated = store.scalar(f"SELECT sum(unallocated_usd) FROM {store.database}.rollup_alloc_hourly")
    assert Decimal(unallocated) == Decimal(300)
    gone = withdraw(store, "vector-db", PERIOD, node="n")
    assert gone.cancelled == 1 and amounts(store) == {}
    assert rollup_total(store, "rollup_alloc_hourly") == 0


def test_a_billed_pool_waits_for_its_bill(store: Store) -> None:
    result = restate(store, pool(), PERIOD, lambda p, period: None, node="n")
    assert result.skipped and result.inserted == 0
