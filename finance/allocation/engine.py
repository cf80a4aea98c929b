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


class SignalColumns(NamedTuple):
    """The runs in a pool's scope for one period as columns (position ``i`` is one run)."""

    run_ids: Sequence[str]
    starts: Sequence[int]
    consumers: Sequence[str]
    weights: Sequence[int]


class Shares(NamedTuple):
    """A pool-period's allocation rows as columns, in row order (what ``allocate`` returns as rows).

    ``sources[i]`` is the position of row ``i``'s run among the input runs, or -1 for a row
    without a run (a consumer's share nobody carried, or the unallocated amount); such a row's
    run quantity is 0 and its attribution is its consumer alone."""

    sources: list[int]
    consumers: list[str]
    amounts: list[int]
    consumer_weights: list[int]
    ratios: list[Decimal]
    unallocated: bool
    """Whether the one row is the whole amount kept unallocated (the period had no consumer)."""
    pool_weight: int


def allocate(
    pool: Pool,
    period: PoolPeriod,
    amount_femto: int,
    runs: Sequence[RunSignal],
    dimensions: Sequence[str],
) -> list[Allocation]:
    """The rows of one pool for one period (``dimensions`` names the positions of ``dims``)."""
    columns = SignalColumns(
        [run.run_id for run in runs], [run.start_ns for run in runs], [run.consumer for run in runs],
        [run.weight for run in runs],
    )  # fmt: skip
    shares = split_shares(pool, amount_femto, columns)
    base = _Row(pool, period, shares.pool_weight, len(dimensions), list(dimensions).index(pool.by))
    if shares.unallocated:
        return [base.unallocated(shares.amounts[0])]  # no consumer: shown as not allocated, never lost
    rows: list[Allocation] = []
    for source, consumer, amount, consumer_weight, ratio in zip(
        shares.sources, shares.consumers, shares.amounts, shares.consumer_weights, shares.ratios, strict=True
    ):
        if source < 0:
            rows.append(base.consumer_only(consumer, amount, ratio))
        else:
            rows.append(base.of_run(runs[source], consumer, amount, consumer_weight, ratio))
    return rows


def split_shares(pool: Pool, amount_femto: int, runs: SignalColumns) -> Shares:
    """The two exact splits of the module doc over columns of ints and strings: no object per
    run (a daily period of a large ledger holds tens of thousands of runs)."""
    weights = runs.weights
    keys = list(zip(runs.consumers, runs.run_ids, strict=True))
    # Consumers in sorted order, each one's runs by id (input already in this order sorts in linear time).
    order = sorted(range(len(keys)), key=keys.__getitem__)
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(keys[i][0], []).append(i)
    pool_weight = sum(weights)
    consumers, consumer_weights = _consumers(pool, {c: sum(weights[i] for i in g) for c, g in groups.items()})
    total_weight = sum(consumer_weights, Fraction(0))
    if total_weight == 0:
        return Shares([-1], [UNALLOCATED], [amount_femto], [0], [_decimal(Fraction(0))], True, pool_weight)
    split = split_largest_remainder(amount_femto, consumer_weights)
    out = Shares([], [], [], [], [], False, pool_weight)
    for consumer, weight, share in zip(consumers, consumer_weights, split.shares, strict=True):
        members = [i for i in groups.get(consumer, ()) if weights[i] > 0]
        ratio = _decimal(Fraction(weight) / total_weight)  # once per consumer, not per run
        if not members:
            out.sources.append(-1)
            parts: Sequence[int] = (share,)
            carried = 0
        else:
            out.sources.extend(members)
            member_weights = [weights[i] for i in members]
            parts = split_largest_remainder(share, member_weights).shares
            carried = sum(member_weights)
        out.amounts.extend(parts)
        out.consumers.extend([consumer] * len(parts))
        out.consumer_weights.extend([carried] * len(parts))
        out.ratios.extend([ratio] * len(parts))
    return out


def _consumers(pool: Pool, totals: dict[str, int]) -> tuple[list[str], list[int | Fraction]]:
    """The consumers in sorted order and their weights under the pool's method."""
    if pool.method == "fixed":
        coefficients = pool.coefficients or {}
        names = sorted(name for name, pct in coefficients.items() if pct > 0)
        return names, [Fraction(coefficients[name]) for name in names]
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
