"""What every importer shares: the importer shape, cheap sniffing, streamed readers, times.

An importer (beangulp's shape) is a small object with a ``format`` name, ``identify(head)``
(cheap: the first 64 KiB of the file, its name, and for tables the column names; used by
``--format auto``) and ``extract(source)``, a generator of ``BillingLine`` in file order that
holds at most one page or one batch of rows in memory. A record that cannot be read raises
``RecordError``; ``extract`` wraps it into ``BillingImportError`` naming the file and record.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import gzip
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol, cast

from otelspend.finance.billing.lines import BillingImportError, BillingLine, Identities, RecordError

HEAD_BYTES = 64 * 1024
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ROW_BATCH = 8192
"""Rows per Parquet batch: bounds memory whatever the file size."""
CSV_BLOCK_BYTES = 512 * 1024
"""Bytes per CSV block parsed by Arrow. Measured on a 1M-line FOCUS file: 4 MiB blocks held
~230 MiB resident (blocks read ahead, each a batch of Python values), 1 MiB ~70 MiB,
256 KiB ~30 MiB, at the same CPU cost."""


@dataclass(frozen=True)
class Head:
    """What ``identify`` may look at: name, the start of the text, and table column names."""

    name: str
    kind: str
    """json, csv, parquet or unknown."""
    text: str = ""
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A file to extract from: its path, the name to show in errors, and an account label."""

    path: Path
    name: str
    account: str = ""
    """Billing account the file belongs to, when the file does not say (``--account``)."""


@dataclass
class Counters:
    """What an extraction read besides lines: records skipped (not AI usage) by reason."""

    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        """Count one record skipped for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


class Importer(Protocol):
    """One export format, in beangulp's shape: cheap ``identify``, streaming ``extract``."""

    format: str
    description: str

    def identify(self, head: Head) -> bool:
        """Whether the file's head looks like this format (cheap: header or first record only)."""

    def extract(self, source: Source, counters: Counters) -> Iterator[BillingLine]:
        """The file's billing lines, one at a time (bounded memory); raises BillingImportError on bad input."""


def sniff(path: Path, name: str | None = None) -> Head:
    """Read just enough of a file to recognise it."""
    shown = name or path.name
    with path.open("rb") as raw:
        start = raw.read(HEAD_BYTES)
    if start.startswith(PARQUET_MAGIC):
        import pyarrow.parquet as pq

        try:
            columns = tuple(pq.ParquetFile(path).schema_arrow.names)
        except Exception:  # pyarrow raises several types for a damaged footer
            return Head(shown, "unknown")
        return Head(shown, "parquet", columns=columns)
    if start.startswith(GZIP_MAGIC):
        with gzip.open(path, "rb") as unzipped:
            start = unzipped.read(HEAD_BYTES)
    text = start.decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return Head(shown, "json", text=text)
    first_line = text.split("\n", 1)[0]
    if "," in first_line:
        columns = tuple(next(csv.reader([first_line])))
        return Head(shown, "csv", text=text, columns=tuple(c.strip() for c in columns))
    return Head(shown, "unknown", text=text)


def open_text(path: Path) -> IO[str]:
    """A text stream over a plain or gzip-compressed file (CUR and FOCUS exports are often .gz)."""
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


# -- JSON pages --------------------------------------------------------------------------------


def json_pages(source: Source) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based page number, page) from a file holding one admin-API page, a JSON array of
    pages, or JSON Lines with one page per line (what ``otelspend billing pull`` writes).
    Numbers are read as ``Decimal``/``int``, never ``float``."""
    with open_text(source.path) as stream:
        first = stream.read(1)
        while first and first.isspace():
            first = stream.read(1)
        rest = stream.read()
    text = first + rest
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise BillingImportError(source.name, f"line {exc.lineno}", expected=f"valid JSON ({exc.msg})") from None
        yield from _json_lines(source, text)
        return
    pages = document if isinstance(document, list) else [document]
    for number, page in enumerate(pages, 1):
        yield number, _page(source, number, page)


def _json_lines(source: Source, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        number += 1
        try:
            page = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise BillingImportError(
                source.name, f"line {line_number}", expected=f"one JSON page per line ({exc.msg})"
            ) from None
        yield number, _page(source, number, page)


def _page(source: Source, number: int, page: Any) -> dict[str, Any]:
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise BillingImportError(
            source.name,
            f"page {number}",
            "data",
            page.get("data") if isinstance(page, dict) else page,
            'a list of time buckets (an admin API page: {"data": [...], "has_more": ..., "next_page": ...})',
        )
    return page


def bucket_results(bucket: dict[str, Any]) -> list[Any]:
    """The results of a bucket: documented examples name the array ``results``, some
    renderings of OpenAI's spec ``result``; both are read."""
    results = bucket.get("results")
    if results is None:
        results = bucket.get("result")
    if results is None:
        return []
    if not isinstance(results, list):
        raise RecordError("results", results, "a list of results")
    return results


# -- tables (CSV, Parquet) -----------------------------------------------------------------------


class Table:
    """Rows of a CSV or Parquet file, streamed: ``header`` then ``rows()`` as lists of values
    in header order (CSV: strings; Parquet: Python values, doubles as exact-repr Decimals)."""

    def __init__(self, source: Source, wanted: Sequence[str]) -> None:
        self.source = source
        self.wanted = list(wanted)
        with source.path.open("rb") as raw:
            self.parquet = raw.read(4) == PARQUET_MAGIC
        self.header: list[str] = self._header()
        self.index = {name: i for i, name in enumerate(self.header)}

    def _header(self) -> list[str]:
        """The columns read: the wanted ones and custom ``x_`` columns, in file order."""
        if self.parquet:
            import pyarrow.parquet as pq

            self.file_header = list(pq.ParquetFile(self.source.path).schema_arrow.names)
        else:
            with open_text(self.source.path) as stream:
                first = next(csv.reader(stream), None)
            if first is None:
                raise BillingImportError(self.source.name, "line 1", expected="a header row of column names")
            self.file_header = [name.strip() for name in first]
        return [name for name in dict.fromkeys(self.file_header) if name in self.wanted or name.startswith("x_")]

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(1-based data row number, values): strings trimmed, nulls as they are."""
        batches = self._parquet_batches() if self.parquet else self._csv_batches()
        number = 0
        for batch in batches:
            columns = [_python(_trimmed(batch.column(i)).to_pylist()) for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                number += 1
                yield number, list(values)

    def _parquet_batches(self) -> Iterator[Any]:
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(self.source.path).iter_batches(batch_size=ROW_BATCH, columns=self.header)

    def _csv_batches(self) -> Iterator[Any]:
        """CSV parsed by Arrow in C, block by block, every value read as a string."""
        import pyarrow as pa
        import pyarrow.csv as pv

        names = [f"{i}:{name}" for i, name in enumerate(self.file_header)]  # unique even if the header is not
        wanted = {name: f"{self.file_header.index(name)}:{name}" for name in self.header}
        read = pv.ReadOptions(column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES)
        convert = pv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            include_columns=[wanted[name] for name in self.header],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        parse = pv.ParseOptions(newlines_in_values=True)
        with _binary(self.source.path) as stream:
            try:
                yield from pv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            except pa.ArrowInvalid as exc:
                if "columns" in str(exc):
                    self._short_row()
                raise

    def _short_row(self) -> None:
        """Arrow says a row has the wrong number of columns but not which: find it."""
        width = len(self.file_header)
        with open_text(self.source.path) as stream:
            reader = csv.reader(stream)
            next(reader, None)
            for number, row in enumerate(reader, 1):
                if len(row) != width and any(cell.strip() for cell in row):
                    raise BillingImportError(
                        self.source.name,
                        f"row {number} (line {reader.line_num})",
                        expected=f"{width} columns as in the header, found {len(row)}",
                    )


def _binary(path: Path) -> IO[bytes]:
    """A byte stream over a plain or gzip-compressed file."""
    with path.open("rb") as raw:
        magic = raw.read(2)
    return cast(IO[bytes], gzip.open(path, "rb")) if magic == GZIP_MAGIC else path.open("rb")


def _trimmed(column: Any) -> Any:
    """Whitespace around strings removed (in C); other types untouched."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return pc.utf8_trim_whitespace(column)
    return column


def _python(values: list[Any]) -> list[Any]:
    """Parquet doubles as the decimal they were written as (shortest repr), never binary floats."""
    if values and any(isinstance(v, float) for v in values[:64]):
        return [Decimal(repr(v)) if isinstance(v, float) else v for v in values]
    return values


# -- times ------------------------------------------------------------------------------------


def parse_time(field: str, value: Any) -> int:
    """Unix seconds (UTC) from an int, a datetime, or an ISO 8601 / RFC 3339 string."""
    if isinstance(value, bool):
        raise RecordError(field, value, "a time (RFC 3339 or unix seconds)")
    if isinstance(value, int):
        if not 946_684_800 <= value < 7_258_118_400:
            raise RecordError(field, value, "unix seconds between 2000 and 2200")
        return value
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int(aware.timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp())
    if isinstance(value, str):
        return _parse_time_text(field, value.strip())
    raise RecordError(field, value, "a time (RFC 3339 or unix seconds)")


@functools.lru_cache(maxsize=4096)
def _parse_time_text(field: str, text: str) -> int:
    # Bills repeat few distinct timestamps (hours, days): parsing is cached.
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        raise RecordError(field, text, "an RFC 3339 / ISO 8601 time such as 2025-06-01T00:00:00Z") from None
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    seconds = aware.timestamp()
    if not 946_684_800 <= seconds < 7_258_118_400:
        raise RecordError(field, text, "a time between 2000 and 2200")
    if seconds != int(seconds):
        raise RecordError(field, text, "a whole second (bills are bucketed by hour or day)")
    return int(seconds)


def check_period(start: int, end: int, field: str = "end_time") -> None:
    """Refuse a period that ends before it starts."""
    if end <= start:
        raise RecordError(field, end, f"after the period start ({start})")
    if end - start > 32 * 86_400:
        raise RecordError(field, end, "a period of at most a month after its start")


def text(value: Any) -> str:
    """A string cell ('' for null)."""
    if value is None:
        return ""
    return str(value).strip()


def located(source: Source, record: str, error: RecordError) -> BillingImportError:
    """A record's error placed in its file (file, record, field, value, expectation)."""
    return BillingImportError(source.name, record, error.field, error.value, error.expected)


def admin_results(source: Source, start_key: str, end_key: str) -> Iterator[tuple[str, int, int, list[Any]]]:
    """(record label, bucket start, bucket end, results) for every bucket of every page of an
    OpenAI or Anthropic admin-API export. The record label names page, bucket and time."""
    for page_number, page in json_pages(source):
        for bucket_number, bucket in enumerate(page["data"], 1):
            where = f"page {page_number}, bucket {bucket_number}"
            if not isinstance(bucket, dict):
                raise BillingImportError(source.name, where, "bucket", bucket, "an object with times and results")
            try:
                start = parse_time(start_key, bucket.get(start_key))
                end = parse_time(end_key, bucket.get(end_key))
                check_period(start, end, end_key)
                results = bucket_results(bucket)
            except RecordError as error:
                raise located(source, where, error) from None
            label = f"{where} ({dt.datetime.fromtimestamp(start, dt.UTC):%Y-%m-%dT%H:%M:%SZ})"
            yield label, start, end, results


LineBuilder = Callable[[Source, Any, int, int, str], BillingLine | list[BillingLine]]


def admin_lines(source: Source, start_key: str, end_key: str, build: LineBuilder) -> Iterator[BillingLine]:
    """Every billing line ``build`` makes of each result of an admin-API export, identities
    assigned in file order; a result's ``RecordError`` is located at its page, bucket and result."""
    identities = Identities()
    for where, start, end, results in admin_results(source, start_key, end_key):
        for number, result in enumerate(results, 1):
            record = f"{where}, result {number}"
            try:
                built = build(source, result, start, end, record)
            except RecordError as error:
                raise located(source, record, error) from None
            for line in built if isinstance(built, list) else (built,):
                yield identities.assign(line)
