"""Read what an allocation needs from the store and write it back as exact deltas.

``restate`` is the one write path, used by the background job and by the on-demand command
alike: it computes a pool's period from the runs in force now, reads the allocation rows in
force, and writes, in one insert, a cancel row (the stored copy with ``sign = -1``, same
version) for every stored row that changed or went away and a new row (``sign = +1``, a newer
version) for every row that changed or appeared. Unchanged rows are not touched, so a
recomputation with nothing new writes nothing, and the rollups fed from ``allocations`` move
by exactly the difference.

A period with nothing stored (a first allocation: the common case, thirty of them when a pool
is added) skips the row objects: the split runs over columns (``engine.split_shares``) and the
runs' id, start and attribution go from the Arrow read straight into the insert, about half the
CPU of the row path on a daily period of 46k runs (README, "Allocation and loaded metrics").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import allocation as queries
from otelspend.clickhouse.queries.runs import RUN_ATTRIBUTION
from otelspend.finance.allocation.engine import Allocation, RunSignal, Shares, SignalColumns, allocate, split_shares
from otelspend.finance.allocation.periods import NS, PoolPeriod
from otelspend.finance.allocation.pools import Pool
from otelspend.record import FEMTO_PER_USD

DIMENSIONS = RUN_ATTRIBUTION
AmountOf = Callable[[Pool, PoolPeriod], int | None]
"""A pool's amount for a period in femto-USD, or None when it is not known yet (a bill not imported)."""

_D0 = pa.decimal128(38, 0)
_D15 = pa.decimal128(38, 15)
_D18 = pa.decimal128(38, 18)
_SECONDS = pa.timestamp("s", tz="UTC")
_NANOS = pa.timestamp("ns", tz="UTC")
_MILLIS = pa.timestamp("ms", tz="UTC")


@dataclass
class Restated:
    """What one restatement changed (all money exact, femto-USD)."""

    pool: str
    period: str
    amount_femto: int | None
    rows_in_force: int = 0
    cancelled: int = 0
    inserted: int = 0
    moved_femto: int = 0
    """Sum of the absolute amount changes over every row touched."""
    consumers: int = 0
    unallocated_femto: int = 0
    skipped: str = ""
    """Why nothing was computed (e.g. the bill for the period is not imported yet)."""
    changes: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Consumer -> (amount before, amount after), for consumers whose amount changed."""


def read_signal_table(store: Store, pool: Pool, period: PoolPeriod) -> pa.Table:
    """The runs in force in the pool's scope for this period, with their signal, as Arrow columns
    (``queries.signals``): the attribution goes from here to the insert without Python objects."""
    scope = tuple((name, values) for name, values in pool.scope_filter.items())
    return store.arrow(*queries.signals(store.database, period.start_ns, period.end_ns, scope, pool.by, pool.signal))


def read_signals(store: Store, pool: Pool, period: PoolPeriod) -> list[RunSignal]:
    """The runs in force in the pool's scope for this period, with their signal."""
    table = read_signal_table(store, pool, period)
    return _run_signals(table, _signal_columns(table))


def _signal_columns(table: pa.Table) -> SignalColumns:
    weights = [int(weight) for weight in table.column("weight").to_pylist()]
    return SignalColumns(
        table.column("run_id").to_pylist(), table.column("start_ns").to_pylist(),
        table.column("consumer").to_pylist(), weights,
    )  # fmt: skip


def _run_signals(table: pa.Table, columns: SignalColumns) -> list[RunSignal]:
    dims = zip(*(table.column(f"d_{name}").to_pylist() for name in DIMENSIONS), strict=True)
    return [
        RunSignal(run_id, start, consumer, weight, tuple(values))
        for run_id, start, consumer, weight, values in zip(*columns, dims, strict=True)
    ]


def read_stored(
    store: Store, pool_id: str, period: PoolPeriod
) -> dict[tuple[str, int, str, str], tuple[Allocation, int]]:
    """The rows in force of one pool's period: key -> (row, its version)."""
    rows = store.rows(*queries.stored(store.database, pool_id, period.start_ns // NS))
    found: dict[tuple[str, int, str, str], tuple[Allocation, int]] = {}
    for values in rows:
        row = _from_stored(values[:-1])
        found[row.key] = (row, int(values[-1]))
    return found


def restate(
    store: Store,
    pool: Pool,
    period: PoolPeriod,
    amount_of: AmountOf,
    *,
    node: str,
    dry_run: bool = False,
    now_ns: int | None = None,
) -> Restated:
    """Bring one pool's period in step with the runs and the rule in force (see the module doc)."""
    amount = amount_of(pool, period)
    result = Restated(pool.id, period.label, amount)
    if amount is None:
        result.skipped = "amount not known yet (no imported bill lines for the period)"
        return result
    table = read_signal_table(store, pool, period)
    columns = _signal_columns(table)
    stored = read_stored(store, pool.id, period)
    if not stored:  # a first allocation: every row is new, written straight from columns
        shares = split_shares(pool, amount, columns)
        _fresh(result, shares)
        if not dry_run:
            version = now_ns or time.time_ns()
            store.insert_arrow(
                f"{store.database}.allocations",
                _shares_table(pool, period, shares, table, columns.weights, version, node),
            )
        return result
    desired = allocate(pool, period, amount, _run_signals(table, columns), DIMENSIONS)
    _diff(result, desired, stored)
    if not dry_run and (result.cancelled or result.inserted):
        write_delta(store, desired, stored, node=node, now_ns=now_ns)
    return result


def withdraw(store: Store, pool_id: str, period: PoolPeriod, *, node: str, dry_run: bool = False) -> Restated:
    """Cancel every row of a pool's period (the pool left the file, or no longer covers it)."""
    stored = read_stored(store, pool_id, period)
    result = Restated(pool_id, period.label, 0)
    _diff(result, [], stored)
    if not dry_run and result.cancelled:
        write_delta(store, [], stored, node=node)
    return result


def _diff(
    result: Restated, desired: Sequence[Allocation], stored: dict[tuple[str, int, str, str], tuple[Allocation, int]]
) -> None:
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    wanted = {row.key: row for row in desired}
    for key, (row, _) in stored.items():
        before[row.consumer] = before.get(row.consumer, 0) + row.amount_femto
        new = wanted.get(key)
        if new != row:
            result.cancelled += 1
            result.moved_femto += abs(row.amount_femto - (new.amount_femto if new is not None else 0))
    for key, row in wanted.items():
        after[row.consumer] = after.get(row.consumer, 0) + row.amount_femto
        old = stored.get(key)
        if old is None or old[0] != row:
            result.inserted += 1
            if old is None:
                result.moved_femto += abs(row.amount_femto)
    result.rows_in_force = len(desired)
    result.consumers = sum(1 for row_consumer in after if row_consumer and not _is_unallocated(desired, row_consumer))
    result.unallocated_femto = sum(row.amount_femto for row in desired if row.unallocated)
    result.changes = {
        consumer: (before.get(consumer, 0), after.get(consumer, 0))
        for consumer in sorted(before.keys() | after.keys())
        if before.get(consumer, 0) != after.get(consumer, 0)
    }


def _fresh(result: Restated, shares: Shares) -> None:
    """``_diff`` against nothing stored: every row is inserted."""
    after: dict[str, int] = {}
    for consumer, amount in zip(shares.consumers, shares.amounts, strict=True):
        after[consumer] = after.get(consumer, 0) + amount
    result.inserted = result.rows_in_force = len(shares.amounts)
    result.moved_femto = sum(abs(amount) for amount in shares.amounts)
    result.consumers = 0 if shares.unallocated else sum(1 for consumer in after if consumer)
    result.unallocated_femto = shares.amounts[0] if shares.unallocated else 0
    result.changes = {consumer: (0, after[consumer]) for consumer in sorted(after) if after[consumer] != 0}


def _is_unallocated(rows: Sequence[Allocation], consumer: str) -> bool:
    return any(row.unallocated and row.consumer == consumer for row in rows[:1])


def write_delta(
    store: Store,
    desired: Sequence[Allocation],
    stored: dict[tuple[str, int, str, str], tuple[Allocation, int]],
    *,
    node: str,
    now_ns: int | None = None,
) -> None:
    """One insert: cancel rows for stored rows that changed or went away, new rows for the rest."""
    wanted = {row.key: row for row in desired}
    cancels = [(row, version) for key, (row, version) in stored.items() if wanted.get(key) != row]
    newest = max((version for _, version in stored.values()), default=0)
    version = max(now_ns or time.time_ns(), newest + 1)
    inserts = [row for key, row in wanted.items() if key not in stored or stored[key][0] != row]
    signed = [(row, v, -1) for row, v in cancels] + [(row, version, 1) for row in inserts]
    if signed:
        store.insert_arrow(f"{store.database}.allocations", _table(signed, node, time.time_ns()))


def _from_stored(values: Sequence[Any]) -> Allocation:
    """A row as ``queries.stored`` reads it (without its version) -> ``Allocation``."""
    (pool, period_start, consumer, run_id, rule_version, period, period_end, by, method, signal, cost_kind,
     unallocated, start_ns, amount, run_q, consumer_q, pool_q, ratio, *dims) = values  # fmt: skip
    scale = queries.SIGNAL_WEIGHTS[signal][1] if signal in queries.SIGNAL_WEIGHTS else 1
    return Allocation(
        pool,
        int(period_start),
        consumer,
        run_id,
        rule_version,
        period,
        int(period_end),
        by,
        method,
        signal,
        cost_kind,
        int(unallocated),
        int(start_ns),
        int(Decimal(amount) * FEMTO_PER_USD),
        int(Decimal(run_q) * scale),
        int(Decimal(consumer_q) * scale),
        int(Decimal(pool_q) * scale),
        Decimal(ratio),
        tuple(dims),
    )


def _quantities(weights: Sequence[int], signals: Sequence[str]) -> pa.Array:
    """Integer weights as ``Decimal(38, 15)`` quantities in each row's signal unit, exactly."""
    scales = {queries.SIGNAL_WEIGHTS[s][1] for s in set(signals)}
    if len(scales) == 1:
        (scale,) = scales
        digits = len(str(scale)) - 1
        try:
            ints = pa.array(weights, pa.int64()).cast(_D0)
        except (OverflowError, pa.ArrowInvalid):
            ints = None
        if ints is not None:
            viewed = ints.view(pa.decimal128(38, digits)) if digits else ints
            return viewed.cast(_D15)
    values = [
        Decimal(w).scaleb(-(len(str(queries.SIGNAL_WEIGHTS[s][1])) - 1)) for w, s in zip(weights, signals, strict=True)
    ]
    return pa.array(values, _D15)


def _money(femtos: Sequence[int]) -> pa.Array:
    try:
        return pa.array(femtos, pa.int64()).cast(_D0).view(_D15)
    except (OverflowError, pa.ArrowInvalid):
        return pa.array([Decimal(f).scaleb(-15) for f in femtos], _D15)


def _ratios(ratios: Sequence[Decimal]) -> pa.Array:
    """Ratios (at most 1, 18 places) as ``Decimal(38, 18)``: each distinct value (one per consumer)
    scaled to an integer once, the column built from integers (Decimals one by one are slow)."""
    scaled = {ratio: int(ratio.scaleb(18)) for ratio in set(ratios)}
    try:
        return pa.array([scaled[ratio] for ratio in ratios], pa.int64()).cast(_D0).view(_D18)
    except (OverflowError, pa.ArrowInvalid):
        return pa.array(ratios, _D18)


def _shares_table(
    pool: Pool, period: PoolPeriod, shares: Shares, signals: pa.Table, weights: Sequence[int], version: int, node: str
) -> pa.Table:
    """A first allocation's rows (``sign = +1``) as an Arrow table in ``allocations`` column order:
    the runs' id, start and attribution taken from the signal columns as read (a row without a
    run: no id, the period's start, its consumer as the only attribution)."""
    n = len(shares.sources)
    taken = signals.take(pa.array([i if i >= 0 else None for i in shares.sources], pa.int64()))

    def repeat(value: Any, kind: pa.DataType) -> pa.Array:
        return pa.array([value] * n, kind)

    def column(name: str, fill: Any) -> pa.Array:
        return pc.coalesce(taken.column(name), fill).combine_chunks()

    consumers = pa.array(shares.consumers, pa.string())
    signal = [pool.signal] * n
    columns: dict[str, pa.Array] = {
        "pool": repeat(pool.id, pa.string()),
        "period_start": repeat(period.start_ns // NS, pa.int64()).view(_SECONDS),
        "consumer": consumers,
        "run_id": column("run_id", ""),
        "version": repeat(version, pa.uint64()),
        "sign": repeat(1, pa.int8()),
        "rule_version": repeat(pool.rule_version, pa.string()),
        "period": repeat(period.kind, pa.string()),
        "period_end": repeat(period.end_ns // NS, pa.int64()).view(_SECONDS),
        "by": repeat(pool.by, pa.string()),
        "method": repeat(pool.method, pa.string()),
        "signal": pa.array(signal, pa.string()),
        "cost_kind": repeat(pool.cost_kind, pa.string()),
        "unallocated": repeat(int(shares.unallocated), pa.uint8()),
        "start_time": column("start_ns", period.start_ns).view(_NANOS),
        "amount_usd": _money(shares.amounts),
        "run_quantity": _quantities([weights[i] if i >= 0 else 0 for i in shares.sources], signal),
        "consumer_quantity": _quantities(shares.consumer_weights, signal),
        "pool_quantity": _quantities([shares.pool_weight] * n, signal),
        "consumer_ratio": _ratios(shares.ratios),
    }
    for name in DIMENSIONS:
        columns[name] = column(f"d_{name}", consumers if name == pool.by else "")
    columns["written_at"] = repeat(time.time_ns() // 1_000_000, pa.int64()).view(_MILLIS)
    columns["node"] = repeat(node, pa.string())
    return pa.Table.from_arrays([columns[name] for name in queries.FIELDS], names=list(queries.FIELDS))


def _table(signed: Sequence[tuple[Allocation, int, int]], node: str, written_ns: int) -> pa.Table:
    """Signed rows (row, version, sign) as an Arrow table in ``allocations`` column order."""
    n = len(signed)
    if not n:
        raise ValueError("no rows to write")
    # Transposed once in C (Allocation is a tuple) rather than one comprehension per column.
    (pool_ids, period_starts, consumers, run_ids, rule_versions, periods, period_ends, bys, methods, signals,
     cost_kinds, unallocated, starts, amounts, run_weights, consumer_weights, pool_weights, ratios,
     dims) = zip(*(row for row, _, _ in signed), strict=True)  # fmt: skip
    signal_list = list(signals)
    columns: dict[str, pa.Array] = {
        "pool": pa.array(pool_ids, pa.string()),
        "period_start": pa.array([start // NS for start in period_starts], pa.int64()).view(_SECONDS),
        "consumer": pa.array(consumers, pa.string()),
        "run_id": pa.array(run_ids, pa.string()),
        "version": pa.array([v for _, v, _ in signed], pa.uint64()),
        "sign": pa.array([s for _, _, s in signed], pa.int8()),
        "rule_version": pa.array(rule_versions, pa.string()),
        "period": pa.array(periods, pa.string()),
        "period_end": pa.array([end // NS for end in period_ends], pa.int64()).view(_SECONDS),
        "by": pa.array(bys, pa.string()),
        "method": pa.array(methods, pa.string()),
        "signal": pa.array(signal_list, pa.string()),
        "cost_kind": pa.array(cost_kinds, pa.string()),
        "unallocated": pa.array(unallocated, pa.uint8()),
        "start_time": pa.array(starts, pa.int64()).view(_NANOS),
        "amount_usd": _money(amounts),
        "run_quantity": _quantities(run_weights, signal_list),
        "consumer_quantity": _quantities(consumer_weights, signal_list),
        "pool_quantity": _quantities(pool_weights, signal_list),
        "consumer_ratio": _ratios(ratios),
    }
    for name, values in zip(DIMENSIONS, zip(*dims, strict=True), strict=True):
        columns[name] = pa.array(values, pa.string())
    columns["written_at"] = pa.array([written_ns // 1_000_000] * n, pa.int64()).view(_MILLIS)
    columns["node"] = pa.array([node] * n, pa.string())
    return pa.Table.from_arrays([columns[name] for name in queries.FIELDS], names=list(queries.FIELDS))
