"""The FOCUS export, end to end: ledger charges per UTC day -> rows -> file chunks.

A window is exported one UTC day of run starts at a time (hourly rows are grouped by the day
they belong to), so memory holds one day's rows at most and a 30-day export is 30 queries. Each
day: the ledger's charges (``clickhouse.queries.export``), their billing accounts, billed money
split over them where billing has been reconciled, allocated shares, then rows in a stable
order. Windows are ``[from, to)`` over run start times, as every otelspend figure is: a run's
calls are all in the period its run started in, so the export adds up to the rollups exactly.
Charge periods are cut to the window (``rows.clip_periods``): adjacent exports never overlap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

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


_COLUMN = {name: index for index, name in enumerate(queries.CHARGE_COLUMNS)}
_TAG_INDEXES = tuple(_COLUMN[key] for key in TAG_KEYS)
(_PERIOD, _PROVIDER, _MODEL, _SOURCE, _ENTRY, _FROM, _TOKEN, _SERVICE, _KIND, _NUM, _DEN, _QUANTITY, _COST, _RUNS,
 _CALLS) = (_COLUMN[name] for name in (
    "period", "provider", "model", "price_source", "price_entry", "price_effective_from", "ingest_token", "service",
    "kind", "rate_num", "rate_den", "quantity", "cost", "runs", "calls"))  # fmt: skip


def charge_of(row: tuple[Any, ...], granularity: str) -> Charge:
    """One row of ``queries.charges`` as a Charge."""
    period = int(row[_PERIOD])
    den = int(row[_DEN])
    return Charge(
        period_start_s=period,
        period_end_s=period + PERIOD_S[granularity],
        provider=row[_PROVIDER],
        model=row[_MODEL],
        price_source=row[_SOURCE],
        price_entry=row[_ENTRY],
        price_effective_from=row[_FROM],
        tags=tuple(row[i] for i in _TAG_INDEXES),
        kind=LEDGER_KINDS[int(row[_KIND]) - 1],
        rate=Fraction(int(row[_NUM]), den) if den else Fraction(int(row[_NUM])),
        quantity=int(row[_QUANTITY]),
        cost_femto=int(row[_COST]),
        runs=int(row[_RUNS]),
        calls=int(row[_CALLS]),
        ingest_token=row[_TOKEN],
        service=row[_SERVICE],
    )


def day_charges(store: Store, request: ExportRequest, start_ns: int, end_ns: int) -> list[tuple[Any, ...]]:
    """The ledger query of one day (or part of a day) of run starts (none when no run is in force)."""
    span_end = store.scalar(*queries.last_run_end(store.database, start_ns, end_ns))
    if not queries.has_runs(span_end):
        return []
    mapped = request.account_of is not None
    grain: queries.Granularity = "hour" if request.granularity == "hour" else "day"
    query = queries.charges(store.database, start_ns, end_ns, grain, span_end, owner_fields=mapped)
    return [tuple(row) for row in store.rows(*query)]


def day_rows(
    store: Store, request: ExportRequest, start_ns: int, end_ns: int, raw: list[tuple[Any, ...]] | None = None
) -> list[Row]:
    """Every row of one day (or part of a day) of run starts (``raw``: its charges, if already read)."""
    granularity = request.granularity
    if raw is None:
        raw = day_charges(store, request, start_ns, end_ns)
    found = [charge_of(row, granularity) for row in raw]
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


def batches(store: Store, request: ExportRequest, totals: ExportTotals | None = None) -> Iterator[list[Row]]:
    """The export's rows, one UTC day per batch (days on which no run started are skipped).

    The next day's ledger query runs on a second thread while this day's rows are built and
    written (the store works while Python formats): at most two days are in memory.
    """
    busy = {int(row[0]) for row in store.rows(*queries.run_days(store.database, request.start_ns, request.end_ns))}
    busy |= request.allocation.days(request.start_ns // NS, -(-request.end_ns // NS))
    days = [(a, b) for a, b in day_windows(request.start_ns, request.end_ns) if a // (DAY_S * NS) * DAY_S in busy]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="otelspend-export") as pool:
        pending = pool.submit(day_charges, store, request, *days[0]) if days else None
        for index, (start, end) in enumerate(days):
            assert pending is not None
            raw = pending.result()
            pending = pool.submit(day_charges, store, request, *days[index + 1]) if index + 1 < len(days) else None
            rows = day_rows(store, request, start, end, raw)
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
