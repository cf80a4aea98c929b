"""Rows -> Arrow tables for columnar inserts.

Arrow arrays are built from Python lists in C, and chDB ingests Arrow natively with the
GIL released, so a 20k-row insert costs the pipeline thread a few microseconds per row.
Money arrives as integer femto-USD and leaves as ``decimal128(38, 15)`` without a Python
Decimal per value: int64 -> decimal128(38, 0) is an exact cast, and viewing the same bits
as scale 15 divides by 10^15 for free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from otelspend.record import Column

_DECIMAL_0 = pa.decimal128(38, 0)
_DECIMAL_15 = pa.decimal128(38, 15)
_TIMESTAMP = pa.timestamp("ns", tz="UTC")


def _usd(values: Sequence[int | None]) -> pa.Array:
    try:
        ints = pa.array(values, pa.int64())
    except (OverflowError, pa.ArrowInvalid):
        # Above 9223 USD in one value: rare enough for the slow exact path.
        from decimal import Decimal

        scale = Decimal(10) ** -15
        return pa.array([None if v is None else Decimal(v) * scale for v in values], _DECIMAL_15)
    return ints.cast(_DECIMAL_0).view(_DECIMAL_15)


def _usd_not_null(values: Sequence[int | None]) -> pa.Array:
    return _usd([0 if v is None else v for v in values])


def _map(values: Sequence[tuple[list[str], list[str]] | None]) -> pa.Array:
    offsets = [0]
    keys: list[str] = []
    items: list[str] = []
    for value in values:
        if value is not None:
            keys.extend(value[0])
            items.extend(value[1])
        offsets.append(len(keys))
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()), pa.array(keys, pa.string()), pa.array(items, pa.string())
    )


_BUILDERS: dict[str, Callable[[Sequence[Any]], pa.Array]] = {
    "str": lambda v: pa.array(v, pa.string()),
    "i8": lambda v: pa.array(v, pa.int8()),
    "u8": lambda v: pa.array(v, pa.uint8()),
    "u32": lambda v: pa.array(v, pa.uint32()),
    "u64": lambda v: pa.array(v, pa.uint64()),
    "u64?": lambda v: pa.array(v, pa.uint64()),
    "f64?": lambda v: pa.array(v, pa.float64()),
    "ts": lambda v: pa.array(v, pa.int64()).view(_TIMESTAMP),
    "usd": _usd_not_null,
    "usd?": _usd,
    "map": _map,
    "arr": lambda v: pa.array(v, pa.list_(pa.string())),
    "arr_u32": lambda v: pa.array(v, pa.list_(pa.uint32())),
}


def table_from_columns(columns: Sequence[Column], data: Sequence[Sequence[Any]]) -> pa.Table:
    """An Arrow table from column-major values, each column built by its kind (exact decimals for money)."""
    arrays = [_BUILDERS[column.kind](values) for column, values in zip(columns, data, strict=True)]
    return pa.Table.from_arrays(arrays, names=[column.name for column in columns])


def table_from_rows(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Transpose rows (one list per record, in column order) once, then build the table."""
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return table_from_columns(columns, data)


def rows_from_table(columns: Sequence[Column], records: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Records read back from ClickHouse (dicts) -> rows in column order, money as femto-USD."""
    from decimal import Decimal

    scale = Decimal(10) ** 15
    out = []
    for record in records:
        row = []
        for column in columns:
            value = record.get(column.name)
            if column.kind in ("usd", "usd?") and value is not None:
                value = int(Decimal(value) * scale)
            elif column.kind == "ts" and value is not None and not isinstance(value, int):
                value = _datetime_ns(value)
            elif column.kind == "map" and value is not None and isinstance(value, dict):
                value = (list(value.keys()), list(value.values()))
            row.append(value)
        out.append(row)
    return out


def _datetime_ns(value: Any) -> int:
    import calendar

    seconds = calendar.timegm(value.utctimetuple())
    microseconds: int = value.microsecond
    return seconds * 1_000_000_000 + microseconds * 1000
