"""Importing a billing export into the store: the I/O edge around the importers.

``import_file`` streams the importer's lines into ``billing_lines`` in batches (memory stays
bounded whatever the file size), then records the import: only then do its lines count. A
file refused half-way (``BillingImportError``) or failing for any other reason has its rows
deleted and is never recorded, so nothing of it is seen: all or nothing per file.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import operator
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.client import Store
from otelspend.finance.billing import store as billing_store
from otelspend.finance.billing.importers import Counters, Source, choose
from otelspend.finance.billing.lines import BillingImportError, BillingLine, Charge

UNREADABLE: tuple[type[BaseException], ...] = (
    UnicodeDecodeError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    csv.Error,
    pa.ArrowException,
)
"""What a damaged or mislabelled file raises while it is read (not UTF-8, a truncated gzip, a
broken Parquet footer): refused like any bad record, never a server error."""
BATCH_LINES = 20_000
"""Lines per insert: about 10 MB of Arrow buffers, whatever the file size."""
PURGE_EVERY = 5
"""Batches between asking the embedded engine to return freed pages (as the pipeline does):
a million-line import otherwise holds ~50 MiB more of them."""


@dataclass
class ImportResult:
    """What an import stored. Money as exact decimals (USD)."""

    import_id: str
    format: str
    file_name: str
    lines: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    replaced: int = 0
    period_start: int | None = None
    period_end: int | None = None
    usage_usd: Decimal = Decimal(0)
    other_usd: Decimal = Decimal(0)
    days: list[dt.date] = field(default_factory=list)
    reconciled: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The import as JSON fields (money as decimal strings)."""
        return {
            "import_id": self.import_id,
            "format": self.format,
            "file": self.file_name,
            "lines": self.lines,
            "skipped": self.skipped,
            "replaced": self.replaced,
            "from": _rfc3339(self.period_start),
            "to": _rfc3339(self.period_end),
            "usage_usd": _usd(self.usage_usd),
            "other_charges_usd": _usd(self.other_usd),
            "days": [day.isoformat() for day in self.days],
            "reconciled": self.reconciled,
        }


def _usd(value: Decimal) -> str:
    return f"{value.quantize(Decimal('1e-15')):f}"


def _rfc3339(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_FIELDS = (
    "identity", "format", "provider", "account_id", "project_id", "workspace_id", "api_key_id", "model_billed",
    "model", "kind", "charge", "period_start", "period_end", "quantity", "unit", "amount", "currency",
    "list_amount", "service_tier", "description", "record",
)  # fmt: skip
_PICK = operator.attrgetter(*_FIELDS)


class _Columns:
    """Lines kept as tuples as they stream by, transposed into insert columns per batch."""

    def __init__(self, import_id: str, seq: int) -> None:
        self.import_id = import_id
        self.seq = seq
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, line: BillingLine) -> None:
        self.rows.append(_PICK(line))

    @property
    def data(self) -> dict[str, list[Any]]:
        columns = (
            dict(zip(_FIELDS, (list(c) for c in zip(*self.rows, strict=True)), strict=True))
            if self.rows
            else {name: [] for name in _FIELDS}
        )
        columns["import_id"] = [self.import_id] * len(self.rows)
        columns["import_seq"] = [self.seq] * len(self.rows)
        return columns

    def flush(self, store: Store) -> None:
        if self.rows:
            billing_store.insert_lines(store, self.data)
            self.rows = []


def import_file(
    store: Store,
    path: Path,
    *,
    name: str | None = None,
    format: str = "auto",
    account: str = "",
    source: str = "file",
    note: str = "",
    after: Callable[[list[dt.date]], Iterable[dict[str, Any]]] | None = None,
) -> ImportResult:
    """Import one file, all or nothing. ``after(days)`` runs once it is recorded (reconciliation
    of the days it touched) and its answers are kept in the result."""
    shown = name or path.name
    importer = choose(path, shown, format)
    seq = time.time_ns()
    result = ImportResult(import_id=uuid.uuid4().hex, format=importer.format, file_name=shown)
    counters = Counters()
    columns = _Columns(result.import_id, seq)
    batches = 0
    try:
        try:
            for line in importer.extract(Source(path, shown, account), counters):
                columns.add(line)
                _tally(result, line)
                if len(columns) >= BATCH_LINES:
                    columns.flush(store)
                    batches += 1
                    if batches % PURGE_EVERY == 0:
                        store.release_memory()
            columns.flush(store)
        except UNREADABLE as exc:
            raise BillingImportError(
                shown, "", expected=f"a readable {importer.format} file ({type(exc).__name__}: {exc})"
            ) from None
    except BaseException:
        _forget(store, result.import_id)
        raise
    result.skipped = dict(counters.skipped)
    if result.lines:
        result.replaced = billing_store.replaced_lines(
            store, result.import_id, seq, result.period_start or 0, (result.period_end or 0) + 1
        )
        result.days = billing_store.billed_days(store, result.import_id)
    billing_store.record_import(
        store,
        {
            "import_id": result.import_id,
            "seq": seq,
            "format": importer.format,
            "source": source,
            "file_name": shown,
            "file_sha256": file_sha256(path),
            "account_id": account,
            "lines": result.lines,
            "skipped": sum(result.skipped.values()),
            "replaced": result.replaced,
            "period_start": dt.datetime.fromtimestamp(result.period_start or 0, dt.UTC),
            "period_end": dt.datetime.fromtimestamp(result.period_end or 0, dt.UTC),
            "billed_usd": result.usage_usd + result.other_usd,
            "imported_at": dt.datetime.now(dt.UTC),
            "note": note,
        },
    )
    if after is not None and result.days:
        result.reconciled = list(after(result.days))
    return result


def _tally(result: ImportResult, line: BillingLine) -> None:
    result.lines += 1
    if result.period_start is None or line.period_start < result.period_start:
        result.period_start = line.period_start
    if result.period_end is None or line.period_end > result.period_end:
        result.period_end = line.period_end
    if line.amount is not None:
        if line.charge is Charge.USAGE:
            result.usage_usd += line.amount
        else:
            result.other_usd += line.amount


def _forget(store: Store, import_id: str) -> None:
    """Best effort: the rows of an unrecorded import are invisible anyway, and the original
    error is what the caller must see."""
    with contextlib.suppress(Exception):
        billing_store.delete_import(store, import_id)


def list_imports(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The recorded imports, latest first, as JSON fields."""
    rows = billing_store.list_imports(store, limit)
    for row in rows:
        row["billed_usd"] = _usd(Decimal(row["billed_usd"]))
        for key in ("period_start", "period_end", "imported_at"):
            value = row[key]
            row[key] = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
        row.pop("seq", None)
    return rows
