"""Split one pool's period over its consumers, then each consumer's share over its runs.

Pure: the runs in scope with their signal come in, allocation rows go out. Two exact splits,
both ``otelspend.money.split_largest_remainder``:

1. **consumers** (the values of the pool's ``by`` dimension): ``proportional`` to each
   consumer's total signal, ``even`` (equal weights), or ``fixed`` coefficients. A consumer
   is a value with a positive signal in the period (``fixed``: a value listed in the
   coefficients). Each consumer's share is within one femto-USD of its exact value and the
   shares add up to the pool's amount.
2. **runs** of each consumer, in proportion to their signal, so every cut of the ledger
   (workflow type, feature, outcome, ...) carries its part and loaded cost is a per-run
   figure. A consumer with no run to carry its share (a fixed coefficient for a tenant with
   no runs in the period) keeps it in one row of its own.

A period without a consumer keeps the whole amount in one ``unallocated`` row: money is
shown as not allocated, never lost. Every row says which rule produced it (pool id, rule
version), the signal quantities behind it (the run's, its consumer's, the pool's) and the
consumer's ratio (FOCUS 1.3 ``AllocatedMethodDetails``: ``AllocatedRatio``, ``UsageUnit``,
``UsageQuantity``).

Order never matters: consumers are taken in sorted order, runs by id, so the same inputs
give the same rows and a recomputation with nothing changed writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from otelspend.finance.allocation.periods import PoolPeriod
from otelspend.finance.allocation.pools import Pool
from otelspend.money import split_largest_remainder

UNALLOCATED = "(unallocated)"
"""The consumer (and ``by`` dimension value) of money a period had no consumer for."""
RATIO_PLACES = Decimal("1e-18")


class RunSignal(NamedTuple):
    """A run in a pool's scope for one period: its consumer, signal and attribution."""

    run_id: str
    start_ns: int
    consumer: str
    weight: int
    """The signal as an exact integer (femto-USD for direct cost, GPU-microseconds, tokens, ...)."""
    dims: tuple[str, ...]
    """The run's values of the allocation dimensions (``store.DIMENSIONS`` order)."""


class Allocation(NamedTuple):
    """One allocation row: a run's (or a consumer's, or the unallocated) part of a pool's period."""

    pool_id: str
    period_start_ns: int
    consumer: str
    run_id: str
    rule_version: str
    period: str
    period_end_ns: int
    by: str
    method: str
    signal: str
    cost_kind: str
    unallocated: int
    start_ns: int
    """The run's start (rollups bucket by it); the period's start for a row without a run."""
    amount_femto: int
    run_weight: int
    consumer_weight: int
    pool_weight: int
    consumer_ratio: Decimal
    """The consumer's ratio of the pool under the rule (signal share, 1/n, or coefficient), 18 places."""
    dims: tuple[str, ...]

    @property
    def key(self) -> tuple[str, int, str, str]:
        """The row's identity: a changed row is cancelled and written again under this key."""
        return (self.pool_id, self.period_start_ns, self.consumer, self.run_id)


def allocate(
    pool: Pool,
    period: PoolPeriod,
    amount_femto: int,
    runs: Sequence[RunSignal],
    dimensions: Sequence[str],
) -> list[Allocation]:
    """The rows of one pool for one period (``dimensions`` names the positions of ``dims``)."""
    by_index = list(dimensions).index(pool.by)
    groups: dict[str, list[RunSignal]] = defaultdict(list)
    for run in runs:
        groups[run.consumer].append(run)
    consumers, weights = _consumers(pool, groups)
    pool_weight = sum(sum(run.weight for run in group) for group in groups.values())
    base = _Row(pool, period, pool_weight, len(dimensions), by_index)
    total_weight = sum(weights, Fraction(0))
    if total_weight == 0:
        return [base.unallocated(amount_femto)]  # no consumer: shown as not allocated, never lost
    split = split_largest_remainder(amount_femto, weights)
    rows: list[Allocation] = []
    for consumer, weight, share in zip(consumers, weights, split.shares, strict=True):
        members = sorted((run for run in groups.get(consumer, ()) if run.weight > 0), key=lambda run: run.run_id)
        ratio = _decimal(Fraction(weight) / total_weight)  # once per consumer, not per run
        consumer_weight = sum(run.weight for run in members)
        if not members:
            rows.append(base.consumer_only(consumer, share, ratio))
            continue
        run_split = split_largest_remainder(share, [run.weight for run in members])
        rows.extend(
            base.of_run(run, consumer, part, consumer_weight, ratio)
            for run, part in zip(members, run_split.shares, strict=True)
        )
    return rows


def _consumers(pool: Pool, groups: dict[str, list[RunSignal]]) -> tuple[list[str], list[int | Fraction]]:
    """The consumers in sorted order and their weights under the pool's method."""
    if pool.method == "fixed":
        coefficients = pool.coefficients or {}
        names = sorted(name for name, pct in coefficients.items() if pct > 0)
        return names, [Fraction(coefficients[name]) for name in names]
    totals = {consumer: sum(run.weight for run in group) for consumer, group in groups.items()}
    names = sorted(consumer for consumer, total in totals.items() if total > 0)
    if pool.method == "even":
        return names, [1] * len(names)
    return names, [totals[name] for name in names]


class _Row:
    """Builds the rows of one pool-period (the fields they share, computed once)."""

    def __init__(self, pool: Pool, period: PoolPeriod, pool_weight: int, ndims: int, by_index: int) -> None:
        self.pool = pool
        self.period = period
        self.rule_version = pool.rule_version
        self.pool_weight = pool_weight
        self.ndims = ndims
        self.by_index = by_index

    def _make(
        self,
        consumer: str,
        run_id: str,
        start_ns: int,
        amount: int,
        weights: tuple[int, int],
        ratio: Decimal,
        dims: tuple[str, ...],
        unallocated: int = 0,
    ) -> Allocation:
        pool, period = self.pool, self.period
        return Allocation(
            pool.id,
            period.start_ns,
            consumer,
            run_id,
            self.rule_version,
            period.kind,
            period.end_ns,
            pool.by,
            pool.method,
            pool.signal,
            pool.cost_kind,
            unallocated,
            start_ns,
            amount,
            weights[0],
            weights[1],
            self.pool_weight,
            ratio,
            dims,
        )

    def _only(self, value: str) -> tuple[str, ...]:
        dims = [""] * self.ndims
        dims[self.by_index] = value
        return tuple(dims)

    def unallocated(self, amount: int) -> Allocation:
        """The whole period's amount, kept when no consumer takes it."""
        return self._make(
            UNALLOCATED, "", self.period.start_ns, amount, (0, 0), _decimal(Fraction(0)), self._only(UNALLOCATED), 1
        )

    def consumer_only(self, consumer: str, amount: int, ratio: Decimal) -> Allocation:
        """A consumer's share with no run in scope to carry it."""
        return self._make(consumer, "", self.period.start_ns, amount, (0, 0), ratio, self._only(consumer))

    def of_run(self, run: RunSignal, consumer: str, amount: int, consumer_weight: int, ratio: Decimal) -> Allocation:
        """A run's part of its consumer's share."""
        return self._make(consumer, run.run_id, run.start_ns, amount, (run.weight, consumer_weight), ratio, run.dims)


def _decimal(ratio: Fraction) -> Decimal:
    return (Decimal(ratio.numerator) / Decimal(ratio.denominator)).quantize(RATIO_PLACES)
