"""The FOCUS export, end to end: ledger charges per UTC day -> rows -> file chunks.

A window is exported one UTC day of run starts at a time (hourly rows are grouped by the day
they belong to), so memory holds one day's rows at most. The ledger is read ``CHUNK_DAYS`` days
per query; each day: the ledger's charges (``clickhouse.queries.export``), their billing
accounts, billed money split over them where billing has been reconciled, allocated shares, then
rows in a stable order. Windows are ``[from, to)`` over run start times, as every otelspend
figure is: a run's calls are all in the period its run started in, so the export adds up to the
rollups exactly. Charge periods are cut to the window (``rows.clip_periods``): adjacent exports
never overlap.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import export as queries
from otelspend.finance.billing.accounts import load_accounts
from otelspend.finance.export.allocated import AllocationSource, NoAllocation, StoredAllocation
from otelspend.finance.export.billed import BilledCell, BilledCosts, NoBilling, apply_billing
from otelspend.finance.export.charges import TAG_KEYS, AccountOf, Charge, with_accounts
from otelspend.finance.export.kinds import LEDGER_KINDS
from otelspend.finance.export.rows import Row, RowOptions, allocated_row, clip_periods, unattributed_row, usage_row
from otelspend.finance.export.writers import Format, chunks
from otelspend.money import usd_to_femto

NS = 10**9
DAY_S = 86_400
PERIOD_S = {"hour": 3_600, "day": DAY_S}


@dataclass
class ExportRequest:
    """One export: window, charge period, row options and the billing / allocation sources."""

    start_ns: int
    end_ns: int
    granularity: str = "day"
    """hour | day"""
    options: RowOptions = field(default_factory=RowOptions)
    account_of: AccountOf | None = None
    """Billing accounts by owner (billing's account mapping); None: every row in the default account."""
    billing: BilledCosts = field(default_factory=NoBilling)
    allocation: AllocationSource = field(default_factory=NoAllocation)


@dataclass
class ExportTotals:
    """What an export wrote, for the caller to report (filled while the rows stream)."""

    rows: int = 0
    billed_femto: int = 0
    calculated_femto: int = 0
    tokens: int = 0
    days: int = 0


def day_windows(start_ns: int, end_ns: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` cut at UTC midnights."""
    day_ns = DAY_S * NS
    current = start_ns
    while current < end_ns:
        following = min((current // day_ns + 1) * day_ns, end_ns)
        yield current, following
        current = following


CHUNK_DAYS = 4
"""UTC days of run starts per ledger query. Spans are sorted by trace, not time: any day's runs
have spans in every granule of the table, so a query reads the columns of the whole partition
whatever its window. Measured on the 10M-span ledger (one engine thread): a day alone costs
2.5 CPU s, four days 4.9 CPU s (1.2 a day); four days' result is ~190k charges, 42 MiB as
Arrow, and its sort of the spans' latest versions ~0.5 GiB in the engine: bounded whatever the
window."""


_INT128 = frozenset({"rate_num", "rate_den", "cost"})


def _integers(column: pa.ChunkedArray) -> list[int]:
    """An integer column's values (an Int128 comes through Arrow as 16 little-endian bytes)."""
    if pa.types.is_fixed_size_binary(column.type):
        return [int.from_bytes(value, "little", signed=True) for value in column.to_pylist()]
    return column.to_pylist()  # type: ignore[no-any-return]


def charges_of(table: pa.Table, granularity: str) -> list[Charge]:
    """Rows of ``queries.charges`` (an Arrow table) as Charges."""
    column = {name: _integers(table.column(name)) if name in _INT128 else table.column(name).to_pylist()
              for name in queries.CHARGE_COLUMNS}  # fmt: skip
    period_s = PERIOD_S[granularity]
    out: list[Charge] = []
    for period, provider, model, source, entry, effective, tags, kind, num, den, quantity, cost, runs, calls, token, \
            service in zip(
        column["period"], column["provider"], column["model"], column["price_source"], column["price_entry"],
        column["price_effective_from"], zip(*(column[key] for key in TAG_KEYS), strict=True), column["kind"],
        column["rate_num"], column["rate_den"], column["quantity"], column["cost"], column["runs"],
        column["calls"], column["ingest_token"], column["service"], strict=True,
    ):  # fmt: skip
        out.append(
            Charge(
                period_start_s=period,
                period_end_s=period + period_s,
                provider=provider,
                model=model,
                price_source=source,
                price_entry=entry,
                price_effective_from=effective,
                tags=tags,
                kind=LEDGER_KINDS[kind - 1],
                rate=Fraction(num, den) if den else Fraction(num),
                quantity=quantity,
                cost_femto=cost,
                runs=runs,
                calls=calls,
                ingest_token=token,
                service=service,
            )
        )
    return out


@dataclass(frozen=True)
class LedgerCharges:
    """The ledger query's result for a few days of run starts, sorted by charge period."""

    table: pa.Table
    periods: list[int]
    """Each row's charge period start (unix seconds), ascending."""

    def on_day(self, day_start_s: int, granularity: str) -> list[Charge]:
        """The charges of the runs that started on the UTC day starting at ``day_start_s``."""
        first = bisect.bisect_left(self.periods, day_start_s)
        last = bisect.bisect_left(self.periods, day_start_s + DAY_S)
        return charges_of(self.table.slice(first, last - first), granularity) if last > first else []


def ledger_charges(store: Store, request: ExportRequest, start_ns: int, end_ns: int) -> LedgerCharges:
    """The ledger query of run starts in ``[start_ns, end_ns)`` (empty when no run is in force)."""
    span_end = store.scalar(*queries.last_run_end(store.database, start_ns, end_ns))
    if not queries.has_runs(span_end):
        return LedgerCharges(pa.table({}), [])
    mapped = request.account_of is not None
    grain: queries.Granularity = "hour" if request.granularity == "hour" else "day"
    query = queries.charges(store.database, start_ns, end_ns, grain, span_end, owner_fields=mapped)
    # Embedded, the engine shares this process's cores with the Python that formats the rows
    # while the next query runs: one engine thread leaves it the other core (measured on two
    # cores, 31 days of the 10M-span ledger: 63 s against 69 s with two engine threads).
    table = store.arrow(*query, settings={"max_threads": 1} if store.embedded else None)
    return LedgerCharges(table, table.column("period").to_pylist())


def day_rows(
    store: Store, request: ExportRequest, start_ns: int, end_ns: int, found: list[Charge] | None = None
) -> list[Row]:
    """Every row of one day (or part of a day) of run starts (``found``: its charges, if already read)."""
    granularity = request.granularity
    if found is None:
        found = ledger_charges(store, request, start_ns, end_ns).on_day(start_ns // NS // DAY_S * DAY_S, granularity)
    placed = found if request.account_of is None else with_accounts(found, request.account_of)
    billed, orphans = apply_billing(placed, request.billing.cells(start_ns // NS, -(-end_ns // NS), granularity))
    rows = [usage_row(charge, part, request.options) for charge, part in zip(placed, billed, strict=True)]
    period_s = PERIOD_S[granularity]
    rows.extend(unattributed_row(cell, cell.period_start_s + period_s, request.options) for cell in orphans)
    rows.extend(
        allocated_row(share, request.options)
        for share in request.allocation.shares(start_ns // NS, -(-end_ns // NS), granularity)
    )
    clip_periods(rows, start_ns // NS, -(-end_ns // NS))
    return rows


def _chunks(days: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Day windows grouped into runs of at most ``CHUNK_DAYS`` calendar days (one query each),
    the first day alone: its rows are built while the next query runs, not after a long one."""
    out: list[list[tuple[int, int]]] = []
    for window in days:
        if len(out) > 1 and window[0] - out[-1][0][0] < CHUNK_DAYS * DAY_S * NS:
            out[-1].append(window)
        else:
            out.append([window])
    return out


def batches(store: Store, request: ExportRequest, totals: ExportTotals | None = None) -> Iterator[list[Row]]:
    """The export's rows, one UTC day per batch (days on which no run started are skipped).

    The ledger is read ``CHUNK_DAYS`` days per query; the next query runs on a second thread
    while this one's days are built and written (the store works while Python formats): at
    most two query results and one day's rows are in memory.
    """
    busy = {int(row[0]) for row in store.rows(*queries.run_days(store.database, request.start_ns, request.end_ns))}
    busy |= request.allocation.days(request.start_ns // NS, -(-request.end_ns // NS))
    days = [(a, b) for a, b in day_windows(request.start_ns, request.end_ns) if a // (DAY_S * NS) * DAY_S in busy]
    chunks = _chunks(days)

    def read(chunk: list[tuple[int, int]]) -> LedgerCharges:
        return ledger_charges(store, request, chunk[0][0], chunk[-1][1])

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="otelspend-export") as pool:
        pending = pool.submit(read, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            assert pending is not None
            ledger = pending.result()
            pending = pool.submit(read, chunks[index + 1]) if index + 1 < len(chunks) else None
            for start, end in chunk:
                found = ledger.on_day(start // NS // DAY_S * DAY_S, request.granularity)
                rows = day_rows(store, request, start, end, found)
                if totals is not None:
                    _count(totals, rows)
                yield rows


def _count(totals: ExportTotals, rows: list[Row]) -> None:
    totals.days += 1
    totals.rows += len(rows)
    for row in rows:
        totals.billed_femto += int(row["BilledCost"].scaleb(15))
        totals.calculated_femto += int(row["x_CalculatedCost"].scaleb(15))
        if row["ConsumedUnit"] == "Tokens":
            totals.tokens += int(row["ConsumedQuantity"])


def export(store: Store, request: ExportRequest, fmt: Format, totals: ExportTotals | None = None) -> Iterator[bytes]:
    """The FOCUS file of the request, as byte chunks (CSV or Parquet)."""
    return chunks(batches(store, request, totals), fmt)


def file_name(start_ns: int, end_ns: int, granularity: str, fmt: Format) -> str:
    """``focus-2026-11-01--2026-12-01-day.csv``: the window and the grain, so re-runs overwrite."""

    def label(ns: int) -> str:
        moment = dt.datetime.fromtimestamp(ns // NS, tz=dt.UTC)
        return moment.strftime("%Y-%m-%d") if ns % (DAY_S * NS) == 0 else moment.strftime("%Y-%m-%dT%H%M%SZ")

    return f"focus-{label(start_ns)}--{label(end_ns)}-{granularity}.{fmt}"


_CONFIDENCE = {1: "low", 2: "medium", 3: "high"}


@dataclass(frozen=True)
class StoredBilling:
    """``BilledCosts`` from the store: the current true-up shares of reconciled days (issue 13).

    Days never reconciled (or reconciled without true-up) have no shares: their rows keep the
    calculated cost (``x_CostSource`` = calculated)."""

    store: Store

    def cells(self, start_s: int, end_s: int, granularity: str) -> list[BilledCell]:
        """Billed money of the runs that started in ``[start_s, end_s)``, per charge period."""
        grain: queries.Granularity = "hour" if granularity == "hour" else "day"
        rows = self.store.dicts(*queries.billed_cells(self.store.database, start_s * NS, end_s * NS, grain))
        return [
            BilledCell(
                int(row["period"]),
                row["provider"],
                row["model"],
                row["account"],
                usd_to_femto(row["billed_usd"]),
                _CONFIDENCE.get(int(row["confidence_rank"]), "low"),
                bool(row["unattributed"]),
            )
            for row in rows
        ]


def request_from_settings(
    export_settings: Any,
    start_ns: int,
    end_ns: int,
    granularity: str,
    *,
    store: Store | None = None,
    billing_settings: Any = None,
) -> ExportRequest:
    """An export request with the row options of the ``export`` settings section.

    With a ``store``, BilledCost is the reconciled billed cost where billing has been imported
    and reconciled with true-up (``StoredBilling``); with ``billing_settings`` whose account
    mapping (``billing.accounts``) names accounts, rows are placed in those accounts, the ones
    the true-up uses. With a ``store``, shared costs allocated by the cost pools (issue 14) are
    rows of their own (``StoredAllocation``, by the export's sub-account).
    """
    options = RowOptions(sub_account=export_settings.sub_account, default_account=export_settings.billing_account)
    billing: BilledCosts = StoredBilling(store) if store is not None else NoBilling()
    allocation: AllocationSource = (
        StoredAllocation(store, export_settings.sub_account) if store is not None else NoAllocation()
    )
    account_of: AccountOf | None = None
    accounts_path = getattr(billing_settings, "accounts", None)
    if accounts_path is not None:
        accounts = load_accounts(accounts_path)
        if accounts.configured:
            account_of = accounts.for_call
    return ExportRequest(start_ns, end_ns, granularity, options, account_of, billing, allocation)


def unpriced_calls(store: Store, start_ns: int, end_ns: int) -> dict[str, int]:
    """Counted calls of the window's runs that have no price (not rows of the export): ``calls``,
    ``input_tokens``, ``output_tokens``."""
    span_end = store.scalar(*queries.last_run_end(store.database, start_ns, end_ns))
    if not queries.has_runs(span_end):
        return {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    rows = store.dicts(*queries.unpriced(store.database, start_ns, end_ns, span_end))
    return {key: int(value or 0) for key, value in rows[0].items()} if rows else {}
