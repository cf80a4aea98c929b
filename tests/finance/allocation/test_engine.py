"""Property tests of the allocation split: exact sums, within a femto-dollar, nothing lost."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from otelspend.finance.allocation.engine import UNALLOCATED, Allocation, RunSignal, allocate
from otelspend.finance.allocation.periods import DAY_NS, PoolPeriod
from otelspend.finance.allocation.pools import Pool

DIMENSIONS = ("tenant", "workflow_type")
PERIOD = PoolPeriod("day", 20_000 * DAY_NS, 20_001 * DAY_NS)


def make_pool(method: str = "proportional", **extra: object) -> Pool:
    return Pool.model_validate(
        {
            "id": "p",
            "owner": "o",
            "review": "2027-01-01",
            "description": "d",
            "amount_usd": "1",
            "period": "day",
            "method": method,
            "by": "tenant",
            **extra,
        }
    )


consumers = st.sampled_from([f"tenant-{i}" for i in range(12)] + [""])
run_lists = st.lists(st.tuples(consumers, st.integers(min_value=0, max_value=10**9)), min_size=0, max_size=80).map(
    lambda items: [
        RunSignal(f"run-{i:03d}", PERIOD.start_ns + i, consumer, weight, (consumer, "wf"))
        for i, (consumer, weight) in enumerate(items)
    ]
)
amounts = st.integers(min_value=0, max_value=10**24)


def by_consumer(rows: list[Allocation]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for row in rows:
        sums[row.consumer] += row.amount_femto
    return dict(sums)


@settings(max_examples=300)
@given(run_lists, amounts)
def test_proportional_shares_add_up_exactly_and_each_is_within_a_femto_dollar(
    runs: list[RunSignal], amount: int
) -> None:
    rows = allocate(make_pool(), PERIOD, amount, runs, DIMENSIONS)
    assert sum(row.amount_femto for row in rows) == amount
    weights: dict[str, int] = defaultdict(int)
    for run in runs:
        weights[run.consumer] += run.weight
    total = sum(weights.values())
    if total == 0:
        assert [(r.consumer, r.unallocated, r.amount_femto, r.dims) for r in rows] == [
            (UNALLOCATED, 1, amount, (UNALLOCATED, ""))
        ]
        return
    shares = by_consumer(rows)
    assert set(shares) == {c for c, w in weights.items() if w > 0}
    for consumer, share in shares.items():
        assert abs(share - Fraction(amount * weights[consumer], total)) < 1
    for row in rows:
        assert row.run_id and not row.unallocated
        # two exact splits: within one femto-dollar of the consumer's part, two of the pool's
        assert abs(row.amount_femto - Fraction(amount * row.run_weight, total)) < 2
        assert row.run_weight > 0 and row.consumer_weight == weights[row.consumer] and row.pool_weight == total
        assert row.consumer_ratio == (Decimal(weights[row.consumer]) / Decimal(total)).quantize(Decimal("1e-18"))


@settings(max_examples=150)
@given(run_lists, amounts)
def test_even_gives_every_consumer_the_same_within_a_femto_dollar(runs: list[RunSignal], amount: int) -> None:
    rows = allocate(make_pool("even"), PERIOD, amount, runs, DIMENSIONS)
    assert sum(row.amount_femto for row in rows) == amount
    shares = by_consumer(rows)
    if UNALLOCATED in shares:
        assert all(run.weight == 0 for run in runs)
        return
    for share in shares.values():
        assert abs(share - Fraction(amount, len(shares))) < 1


@settings(max_examples=150)
@given(run_lists, amounts, st.integers(min_value=1, max_value=99))
def test_fixed_coefficients_hold_even_for_a_consumer_without_runs(
    runs: list[RunSignal], amount: int, first_pct: int
) -> None:
    pool = make_pool("fixed", coefficients={"tenant-0": first_pct, "nobody": 100 - first_pct})
    rows = allocate(pool, PERIOD, amount, runs, DIMENSIONS)
    assert sum(row.amount_femto for row in rows) == amount
    shares = by_consumer(rows)
    assert set(shares) == {"tenant-0", "nobody"}
    assert abs(shares["tenant-0"] - Fraction(amount * first_pct, 100)) < 1
    nobody = [row for row in rows if row.consumer == "nobody"]
    assert [(row.run_id, row.dims) for row in nobody] == [("", ("nobody", ""))]
    assert not any(row.consumer.startswith("tenant-") and row.consumer != "tenant-0" for row in rows)


@given(run_lists, amounts, st.randoms())
def test_the_order_of_the_runs_changes_nothing(runs: list[RunSignal], amount: int, rnd: random.Random) -> None:
    shuffled = list(runs)
    rnd.shuffle(shuffled)
    assert allocate(make_pool(), PERIOD, amount, runs, DIMENSIONS) == allocate(
        make_pool(), PERIOD, amount, shuffled, DIMENSIONS
    )


def test_rows_carry_the_rule_and_the_signal() -> None:
    runs = [
        RunSignal("a", PERIOD.start_ns + 5, "acme", 3, ("acme", "chat")),
        RunSignal("b", PERIOD.start_ns + 7, "acme", 1, ("acme", "qa")),
        RunSignal("c", PERIOD.start_ns + 9, "beta", 4, ("beta", "qa")),
    ]
    pool = make_pool(signal="tokens", cost_kind="retrieval")
    rows = allocate(pool, PERIOD, 10**15, runs, DIMENSIONS)
    assert [(r.run_id, r.consumer, r.amount_femto, r.run_weight, r.consumer_weight, r.pool_weight) for r in rows] == [
        ("a", "acme", 375 * 10**12, 3, 4, 8),
        ("b", "acme", 125 * 10**12, 1, 4, 8),
        ("c", "beta", 500 * 10**12, 4, 4, 8),
    ]
    assert {(r.rule_version, r.signal, r.cost_kind, r.method, r.by) for r in rows} == {
        (pool.rule_version, "tokens", "retrieval", "proportional", "tenant")
    }
    assert rows[0].consumer_ratio == Decimal("0.5") and rows[0].start_ns == PERIOD.start_ns + 5
    assert rows[0].key == ("p", PERIOD.start_ns, "acme", "a")
