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
import io
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
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


_NEEDS_QUOTES = frozenset(',"\r\n')


def _text(value: Any) -> str:
    """A CSV field (RFC 4180): quoted only when it holds a comma, a quote or a line break."""
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if not _NEEDS_QUOTES.isdisjoint(text) else text


def _datetime_text(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


_CSV_TEXT: dict[ExportType, Callable[[Any], str]] = {
    "decimal": render_decimal, "datetime": _datetime_text, "string": _text, "json": _text, "integer": str,
}  # fmt: skip
_CACHED_TEXTS = 65_536
"""Distinct values remembered per type (then it starts over): bounds memory."""


class _Texts(dict[Any, str]):
    """The CSV text of the values of the columns of one type, rendered once per distinct value
    (null: an empty field). Equal values of one type render alike (``Decimal('1.50')`` and
    ``Decimal('1.5')`` are both ``1.5``), so they may share a key."""

    def __init__(self, render: Callable[[Any], str]) -> None:
        super().__init__({None: ""})
        self.render = render

    def __missing__(self, value: Any) -> str:
        if len(self) >= _CACHED_TEXTS:
            self.clear()
            self[None] = ""
        text = self[value] = self.render(value)
        return text


_ALL = operator.itemgetter(*NAMES)


def _values(row: Row) -> tuple[Any, ...]:
    """The row's values in column order (a column the row lacks is null)."""
    try:
        return _ALL(row)  # type: ignore[no-any-return]
    except KeyError:
        return tuple(map(row.get, NAMES))


def csv_chunks(batches: Iterable[Sequence[Row]]) -> Iterator[bytes]:
    """CSV (RFC 4180: CRLF line ends, header first) of every row, one chunk per batch.

    Most columns repeat a few values (provider, period, account) and the cost columns one
    another, so each distinct value is rendered once per type and looked up after that."""
    yield (",".join(NAMES) + "\r\n").encode()
    by_kind = {kind: _Texts(render) for kind, render in _CSV_TEXT.items()}
    texts = [by_kind[kind] for _, kind in COLUMNS]
    text_of = dict.__getitem__  # (a column's texts, a value) -> its text: rendered on a miss
    for batch in batches:
        if batch:
            lines = [",".join(map(text_of, texts, _values(row))) for row in batch]
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
        values = zip(*map(_values, pending), strict=True)
        columns = [_column(list(column), kind) for column, (_, kind) in zip(values, COLUMNS, strict=True)]
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
