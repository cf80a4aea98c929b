"""Write run rows straight into a store (the allocator reads runs, not spans)."""

from __future__ import annotations

from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.runstore import RunStore
from otelspend.record import RUN_COLUMNS

_EMPTY: dict[str, Any] = {
    "str": "",
    "u8": 0,
    "i8": 1,
    "u32": 0,
    "u64": 0,
    "ts": 0,
    "usd?": None,
    "f64?": None,
    "arr": [],
}


def run_row(run_id: str, start_ns: int, **values: Any) -> list[Any]:
    """A ``runs`` row (RUN_COLUMNS order): defaults, then ``values`` (``version`` 1, ``sign`` +1)."""
    record = {column.name: _EMPTY[column.kind] for column in RUN_COLUMNS}
    record.update(run_id=run_id, version=1, sign=1, start_time=start_ns, end_time=start_ns + 10**9, written_at=start_ns)
    record.update(values)
    return [record[column.name] for column in RUN_COLUMNS]


def insert_runs(store: Store, rows: list[list[Any]]) -> None:
    RunStore(store).insert_runs(rows)


def reemit(store: Store, old: list[Any], **changes: Any) -> list[Any]:
    """Cancel ``old`` (sign -1, same version) and write it again with ``changes`` (version + 1)."""
    names = [column.name for column in RUN_COLUMNS]
    cancel = list(old)
    cancel[names.index("sign")] = -1
    new = list(old)
    new[names.index("version")] = old[names.index("version")] + 1
    for name, value in changes.items():
        new[names.index(name)] = value
    insert_runs(store, [cancel, new])
    return new
