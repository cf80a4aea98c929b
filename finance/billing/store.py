"""The billing store: runs the billing queries (``otelspend.clickhouse.queries.billing``) and
hands back plain rows. The I/O edge the importers, the reconciliation of stored days and the
API share; no SQL is written here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import billing as q

RUN_CHUNK = 20_000
"""Run ids per attribution query."""


def insert_lines(store: Store, columns: Mapping[str, Sequence[Any]]) -> None:
    """Insert a batch of lines (one list per ``LINE_COLUMNS`` name); invisible until the import
    is recorded."""
    store.insert_arrow(q.table(store.database, q.LINES), q.arrow_table(q.LINE_SCHEMA, columns))


def delete_import(store: Store, import_id: str) -> None:
    """Remove an import's lines (an import that failed before it was recorded)."""
    store.command(*q.delete_import(store.database, import_id))


def record_import(store: Store, row: Mapping[str, Any]) -> None:
    """The switch: from now on the import's lines are part of the bill."""
    store.insert_rows(q.table(store.database, q.IMPORTS), [[row[c] for c in q.IMPORT_COLUMNS]], q.IMPORT_COLUMNS)


def replaced_lines(store: Store, import_id: str, seq: int, start_s: int, end_s: int) -> int:
    """Lines of earlier recorded imports this import restates (0 at once when none is earlier)."""
    if not store.scalar(*q.earlier_lines(store.database, seq, start_s, end_s)):
        return 0
    return int(store.scalar(*q.replaced_lines(store.database, import_id, seq, start_s, end_s)) or 0)


def list_imports(store: Store, limit: int) -> list[dict[str, Any]]:
    """The recorded imports, latest first."""
    return store.dicts(*q.list_imports(store.database, limit))


def current_lines(store: Store, start_s: int, end_s: int) -> list[dict[str, Any]]:
    """The bill in force for lines starting in ``[start_s, end_s)``."""
    return store.dicts(*q.current_lines(store.database, start_s, end_s))


def billed_days(store: Store, import_id: str) -> list[dt.date]:
    """The UTC days an import has lines on."""
    return [row[0] for row in store.rows(*q.billed_days(store.database, import_id))]


def ledger_usage(
    store: Store, start_ns: int, end_ns: int, providers: Sequence[str], *, with_team: bool
) -> list[dict[str, Any]]:
    """The ledger side: calls per hour, provider, model, owner and run, with tokens and cost components."""
    return store.dicts(*q.ledger_usage(store.database, start_ns, end_ns, providers, with_team=with_team))


def run_attribution(store: Store, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """run_id -> start time (ns) and attribution, for runs in force."""
    ids = list(dict.fromkeys(run_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), RUN_CHUNK):
        for row in store.dicts(*q.run_attribution(store.database, ids[start : start + RUN_CHUNK])):
            found[row.pop("run_id")] = row
    return found


def save_reconciliation(
    store: Store,
    day: dt.date,
    version: int,
    cells: pa.Table,
    other: pa.Table,
    trueup: pa.Table | None,
    settings_json: str,
) -> None:
    """Write a day's cells, other charges and true-up shares, then switch the day to them
    (``reconciliation_days`` is written last), then drop the superseded versions."""
    db = store.database
    store.insert_arrow(q.table(db, q.CELLS), cells)
    store.insert_arrow(q.table(db, q.OTHER), other)
    if trueup is not None:
        store.insert_arrow(q.table(db, q.TRUEUP), trueup)
    row = [day, version, dt.datetime.now(dt.UTC), cells.num_rows, int(trueup is not None), settings_json]
    store.insert_rows(q.table(db, q.DAYS), [row], q.DAY_COLUMNS)
    for name in q.DAY_TABLES:
        store.command(*q.delete_superseded(db, name, day, version))


def stored_other_charges(store: Store, first_day: dt.date, end_day: dt.date) -> list[dict[str, Any]]:
    """Stored other charges of the days ``[first_day, end_day)``."""
    return store.dicts(*q.stored_other_charges(store.database, first_day, end_day))


def reconciled_days(store: Store, first_day: dt.date, end_day: dt.date) -> list[dict[str, Any]]:
    """The days of ``[first_day, end_day)`` with a stored reconciliation."""
    return store.dicts(*q.reconciled_days(store.database, first_day, end_day))


def trueup_for_runs(store: Store, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Current true-up shares of some runs."""
    return store.dicts(*q.trueup_for_runs(store.database, run_ids))


def reconciliation_groups(
    store: Store,
    start_s: int,
    end_s: int,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[str]],
    limit: int,
) -> list[dict[str, Any]]:
    """Stored cells of the window summed per group (the window's total first, flagged ``a_total``)."""
    return store.dicts(*q.reconciliation_groups(store.database, start_s, end_s, group_by, filters, limit))


def cell_runs(
    store: Store, day: dt.date, provider: str, model_key: str, account: str, limit: int
) -> list[dict[str, Any]]:
    """The true-up shares of one cell's runs, largest first."""
    return store.dicts(*q.cell_runs(store.database, day, provider, model_key, account, limit))
