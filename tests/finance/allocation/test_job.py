"""When periods are (re)allocated: the job's turns, the lookback, on-demand restatement, the thread."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from otelspend.clickhouse.client import Store
from otelspend.finance.allocation.job import AllocationJob, Allocator
from otelspend.finance.allocation.periods import DAY_NS, PoolPeriod
from otelspend.finance.allocation.pools import CostRules, Pool, parse_cost_rules
from otelspend.metrics import Metrics
from otelspend.pipeline.guard import LoopGuard
from tests.conftest import wait_for
from tests.finance.allocation.runs import insert_runs, run_row

DAY0 = 20_400 * DAY_NS
HOUR = 3600 * 10**9
POOLS = """
pools:
  - id: vector-db
    owner: platform-team
    review: 2027-03-01
    description: Managed vector database
    amount_usd: "300.00"
    period: day
    scope: {}
    signal: runs
    method: proportional
    by: tenant
"""


class Rules:
    def __init__(self, text: str) -> None:
        self.current = parse_cost_rules(text)

    def __call__(self) -> CostRules:
        return self.current


def fixed(pool: Pool, _period: PoolPeriod) -> int | None:
    return pool.amount_femto


def per_day(store: Store) -> dict[int, Decimal]:
    rows = store.rows(
        "SELECT intDiv(toUnixTimestamp(period_start), 86400), sum(sign * amount_usd) "
        f"FROM {store.database}.allocations GROUP BY 1 HAVING sum(sign * amount_usd) != 0 ORDER BY 1"
    )
    return {int(day) - 20_400: Decimal(amount) for day, amount in rows}


def by_consumer(store: Store, day: int) -> dict[str, Decimal]:
    rows = store.rows(
        f"SELECT consumer, sum(sign * amount_usd) FROM {store.database}.allocations "
        "WHERE period_start = toDateTime({start:Int64}, 'UTC') GROUP BY consumer HAVING sum(sign) != 0 ORDER BY 1",
        {"start": (DAY0 + day * DAY_NS) // 10**9},
    )
    return {consumer: Decimal(amount) for consumer, amount in rows}


def test_turns_allocate_new_periods_restate_dirty_ones_and_follow_the_rules(store: Store) -> None:
    insert_runs(
        store,
        [
            run_row("a", DAY0 + HOUR, tenant="acme"),
            run_row("b", DAY0 + 2 * HOUR, tenant="beta"),
            run_row("c", DAY0 + 2 * DAY_NS + HOUR, tenant="acme"),
        ],
    )
    clock = [DAY0 + 3 * DAY_NS + 5 * HOUR]
    rules = Rules(POOLS)
    allocator = Allocator(store, rules, fixed, node="n", lookback_days=35, clock=lambda: clock[0])
    first = allocator.catch_up()
    # days 0..3: day 1 had no run, day 3 is open and has none yet: both shown unallocated
    assert [p.period for p in first.periods] == ["2025-11-08", "2025-11-09", "2025-11-10", "2025-11-11"]
    assert per_day(store) == {0: Decimal(300), 1: Decimal(300), 2: Decimal(300), 3: Decimal(300)}
    assert by_consumer(store, 1) == {"(unallocated)": Decimal(300)}
    assert allocator.catch_up().rows_written == 0

    # A late run in closed day 0, written now: only day 0 is restated, by exact deltas.
    insert_runs(store, [run_row("late", DAY0 + 3 * HOUR, tenant="gamma", written_at=clock[0])])
    late = allocator.catch_up()
    assert [(p.period, p.cancelled, p.inserted) for p in late.periods if p.cancelled or p.inserted] == [
        ("2025-11-08", 2, 3)
    ]
    assert by_consumer(store, 0) == {"acme": Decimal(100), "beta": Decimal(100), "gamma": Decimal(100)}
    assert sum(per_day(store).values()) == Decimal(1200)

    # A rule change restates every period in the lookback.
    rules.current = parse_cost_rules(POOLS.replace('"300.00"', '"30"'))
    changed = allocator.catch_up()
    assert len([p for p in changed.periods if p.inserted]) == 4
    assert per_day(store) == {0: Decimal(30), 1: Decimal(30), 2: Decimal(30), 3: Decimal(30)}

    # A pool leaving the file: its allocations are cancelled.
    rules.current = parse_cost_rules("pools: []")
    allocator.catch_up()
    assert per_day(store) == {}
    hourly = store.scalar(f"SELECT sum(allocated_usd) FROM {store.database}.rollup_alloc_hourly")
    assert Decimal(hourly) == 0


def test_the_lookback_bounds_the_job_and_a_command_restates_any_window(store: Store) -> None:
    insert_runs(store, [run_row("old", DAY0 + HOUR, tenant="acme"), run_row("new", DAY0 + 40 * DAY_NS, tenant="acme")])
    clock = [DAY0 + 40 * DAY_NS + HOUR]
    allocator = Allocator(store, Rules(POOLS), fixed, node="n", lookback_days=2, clock=lambda: clock[0])
    turn = allocator.catch_up()
    assert [p.period for p in turn.periods] == ["2025-12-16", "2025-12-17", "2025-12-18"]
    assert 0 not in per_day(store)
    dry = allocator.allocate(DAY0, DAY0 + DAY_NS, dry_run=True)
    assert [(p.period, p.inserted, p.amount_femto) for p in dry.periods] == [("2025-11-08", 1, 300 * 10**15)]
    assert 0 not in per_day(store)
    done = allocator.allocate(DAY0, DAY0 + DAY_NS)
    assert done.rows_written == 1 and per_day(store)[0] == Decimal(300)
    with pytest.raises(KeyError):
        allocator.allocate(DAY0, DAY0 + DAY_NS, pool_ids=["nope"])


def test_the_thread_survives_a_failing_turn_and_reports_when_stuck(store: Store) -> None:
    insert_runs(store, [run_row("a", DAY0 + HOUR, tenant="acme")])
    allocator = Allocator(store, Rules(POOLS), fixed, node="n", lookback_days=35, clock=lambda: DAY0 + 2 * HOUR)
    failures = [2]
    real = allocator.catch_up
    turned = threading.Event()

    def flaky() -> object:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("store hiccup")
        turned.set()
        return real()

    allocator.catch_up = flaky  # type: ignore[method-assign]
    metrics = Metrics()
    job = AllocationJob(allocator, LoopGuard("allocation", metrics), interval_seconds=0.05)
    job.start()
    try:
        assert turned.wait(10)
        wait_for(lambda: per_day(store) == {0: Decimal(300)}, 10, "the turn after the failures")
        assert metrics.value("otelspend_loop_errors_total", thread="allocation", step="allocate") == 2
        assert job.problem() is None and job.alive
    finally:
        job.shutdown()
    assert not job.alive

    def always_fails() -> object:
        raise RuntimeError("store gone")

    allocator.catch_up = always_fails  # type: ignore[method-assign]
    stuck = AllocationJob(allocator, LoopGuard("allocation", metrics, give_up_seconds=0.2), interval_seconds=0.05)
    stuck.start()
    wait_for(lambda: stuck.problem() is not None, 10, "the job to give up")
    assert "allocation thread stopped: allocate failed" in (stuck.problem() or "")
    assert "store gone" in (stuck.problem() or "")
    stuck.shutdown()
