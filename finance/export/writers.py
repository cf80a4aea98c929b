"""Streaming writers: FOCUS rows to CSV or Parquet bytes, in chunks, with bounded memory.

Both take an iterable of row batches and yield ``bytes`` as they go: the HTTP response, the CLI
and the scheduled export drain the same generator into a socket or a file. Memory is one batch
of rows plus one Parquet row group at most.

Formats: date-times as ``YYYY-MM-DDTHH:mm:ssZ`` (FOCUS DateTimeFormat) in CSV and UTC
``timestamp[s]`` in Parquet; decimals as plain decimal text in CSV (no exponent, no sign on
positives: NumericFormat) and ``decimal128(38, 18)`` in Parquet; null as an empty CSV field and
a Parquet null; JSON columns as JSON text.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from otelspend.finance.export.columns import COLUMNS, NAMES, ExportType
from otelspend.finance.export.units import MAX_DECIMALS, render_decimal

Format = Literal["csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
ROW_GROUP_ROWS = 50_000
"""Parquet rows per row group (and the most rows a Parquet writer holds)."""

Row = dict[str, Any]


@functools.lru_cache(maxsize=4096)
def _datetime_text(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


_NEEDS_QUOTES = frozenset(',"\r\n')


@functools.lru_cache(maxsize=65_536)
def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _text(value: Any) -> str:
    """A CSV field (RFC 4180): quoted only when it holds a comma, a quote or a line break."""
    if value is None:
        return ""
    text = str(value)
    return _quoted(text) if not _NEEDS_QUOTES.isdisjoint(text) else text


@functools.lru_cache(maxsize=65_536)
def _decimal_cached(value: Decimal) -> str:
    return render_decimal(value)


def _decimal_text(value: Any) -> str:
    return "" if value is None else _decimal_cached(value)


def _moment_text(value: Any) -> str:
    return "" if value is None else _datetime_text(value)


def _integer_text(value: Any) -> str:
    return "" if value is None else str(value)


_CSV_TEXT = {
    "decimal": _decimal_text, "datetime": _moment_text, "string": _text, "json": _text, "integer": _integer_text,
}  # fmt: skip


def csv_chunks(batches: Iterable[Sequence[Row]]) -> Iterator[bytes]:
    """CSV (RFC 4180: CRLF line ends, header first) of every row, one chunk per batch."""
    yield (",".join(NAMES) + "\r\n").encode()
    columns = [(name, _CSV_TEXT[kind]) for name, kind in COLUMNS]
    for batch in batches:
        if batch:
            lines = [",".join([text(row.get(name)) for name, text in columns]) for row in batch]
            yield ("\r\n".join(lines) + "\r\n").encode()


_ARROW: dict[ExportType, pa.DataType] = {
    "decimal": pa.decimal128(38, MAX_DECIMALS),
    "datetime": pa.timestamp("s", tz="UTC"),
    "string": pa.string(),
    "json": pa.string(),
    "integer": pa.int64(),
}
SCHEMA = pa.schema([pa.field(name, _ARROW[kind]) for name, kind in COLUMNS])


class _Sink(io.RawIOBase):
    """A write-only file that hands what was written to the generator draining it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _column(values: list[Any], kind: ExportType) -> pa.Array:
    if kind == "datetime":
        values = [None if v is None else v.astimezone(dt.UTC) for v in values]
    return pa.array(values, type=_ARROW[kind])


def parquet_chunks(batches: Iterable[Sequence[Row]], row_group_rows: int = ROW_GROUP_ROWS) -> Iterator[bytes]:
    """A Parquet file of every row, written one row group at a time."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, SCHEMA, compression="zstd")
    pending: list[Row] = []

    def flush() -> None:
        columns = [_column([row.get(name) for row in pending], kind) for name, kind in COLUMNS]
        writer.write_table(pa.Table.from_arrays(columns, schema=SCHEMA), row_group_size=row_group_rows)
        pending.clear()

    try:
        for batch in batches:
            pending.extend(batch)
            while len(pending) >= row_group_rows:
                rest = pending[row_group_rows:]
                del pending[row_group_rows:]
                flush()
                pending.extend(rest)
                yield sink.drain()
        if pending:
            flush()
    finally:
        writer.close()
    yield sink.drain()


def chunks(batches: Iterable[Sequence[Row]], fmt: Format) -> Iterator[bytes]:
    """The file of ``fmt`` for the rows, as byte chunks."""
    return csv_chunks(batches) if fmt == "csv" else parquet_chunks(batches)
