"""Quarantine: what the store refused for good, kept where an operator can inspect it.

A permanent error (``pipeline/errors.py``) on a span insert does not cost the batch: the
batch is split in halves until the rows ClickHouse refuses on their own are found
(``insert_isolating``, a bounded number of inserts), the rest is stored, and the refused
rows are written here before the write-ahead log is checkpointed past them; runs leave the
refused spans out. Runs whose computation or emission fails for good are listed here too,
each on its own (an emission the store refuses is retried in halves to find them); their
spans stay stored, and a later span of the run or a re-price computes them again.

Layout under ``<data_dir>/quarantine/`` (one pair of files per event, never rewritten):

* ``<UTC time>-spans-<n>.arrow``: the refused span rows, an Arrow IPC file with the
  columns of the ``spans`` table (``pyarrow.ipc.open_file``, or ClickHouse's
  ``file('…', Arrow)`` table function), and ``…-spans-<n>.json``: reason, ClickHouse
  error code, row count, the write-ahead-log sequence range of the batch;
* ``<UTC time>-runs-<n>.json``: run ids and the reason.

Files are fsynced before the caller moves on: a span row leaves the write-ahead log only
once it is either in ClickHouse or in a quarantine file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from otelspend.pipeline.errors import ErrorKind, classify, describe

log = logging.getLogger("otelspend")

ISOLATE_MAX_INSERTS = 64
"""Inserts one refused batch may cost while its bad rows are looked for; past it the
slices still refused are quarantined whole (a schema-wide refusal costs 64 inserts, not
one per row)."""


@dataclass(frozen=True)
class Refused:
    """Rows the store refused with a permanent error."""

    rows: pa.Table
    error: BaseException


def insert_isolating(
    insert: Callable[[pa.Table], None],
    table: pa.Table,
    budget: int = ISOLATE_MAX_INSERTS,
    on_refusal: Callable[[BaseException], None] | None = None,
) -> list[Refused]:
    """Insert ``table``; on a permanent error, bisect to store every row the store takes.

    Returns the slices refused for good (``on_refusal`` hears of every permanent error). A
    retryable error propagates: the caller retries the whole table, and rows stored by an
    earlier attempt collapse with their copies (``spans`` is a ReplacingMergeTree read with
    FINAL).
    """
    pending: list[pa.Table] = [table]
    refused: list[Refused] = []
    attempts = 0
    while pending:
        part = pending.pop()
        try:
            attempts += 1
            insert(part)
            continue
        except Exception as exc:
            if classify(exc) is not ErrorKind.PERMANENT:
                raise
            if on_refusal is not None:
                on_refusal(exc)
            if part.num_rows <= 1 or attempts + 2 > budget:
                refused.append(Refused(part, exc))
                continue
        half = part.num_rows // 2
        pending += [part.slice(half), part.slice(0, half)]  # the first half is tried first
    return refused


class Quarantine:
    """Writes refused spans and runs under one directory (owned by the store writer thread)."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self._counter = itertools.count(1)

    def spans(self, refused: Sequence[Refused], *, first_seq: int, last_seq: int) -> Path:
        """Keep refused span rows and why; returns the Arrow file. Raises OSError if it cannot."""
        table = pa.concat_tables([r.rows for r in refused]) if len(refused) > 1 else refused[0].rows
        stem = self._stem("spans")
        data = self.directory / f"{stem}.arrow"
        with pa.OSFile(str(data), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self._sync(data)
        reasons = sorted({describe(r.error) for r in refused})
        self._write_json(
            self.directory / f"{stem}.json",
            {
                "kind": "spans",
                "rows": table.num_rows,
                "file": data.name,
                "reasons": reasons,
                "clickhouse_codes": sorted({c for r in refused if (c := getattr(r.error, "code", None)) is not None}),
                "wal_seq": [first_seq, last_seq],
            },
        )
        log.error(
            "quarantined %d span row(s) the store refused for good (%s) in %s",
            table.num_rows,
            "; ".join(reasons)[:300],
            data,
        )
        return data

    def runs(self, run_ids: Sequence[str], reason: str) -> Path:
        """Record runs that could not be computed or written for good; returns the JSON file."""
        path = self.directory / f"{self._stem('runs')}.json"
        self._write_json(path, {"kind": "runs", "runs": len(run_ids), "run_ids": list(run_ids), "reason": reason})
        log.error("quarantined %d run(s) that could not be emitted (%s) in %s", len(run_ids), reason[:300], path)
        return path

    def entries(self) -> list[dict[str, Any]]:
        """Every quarantine record, oldest first (for tests and operators)."""
        if not self.directory.exists():
            return []
        return [json.loads(path.read_text()) for path in sorted(self.directory.glob("*.json"))]

    def _stem(self, kind: str) -> str:
        """``20261205T033704_123456Z-spans-1``: sorts by time, unique in this process."""
        self.directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S_%fZ")
        return f"{now}-{kind}-{next(self._counter)}"

    def _write_json(self, path: Path, record: dict[str, Any]) -> None:
        record = {"written_at": dt.datetime.now(dt.UTC).isoformat(), **record}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        self._sync(tmp)
        os.replace(tmp, path)
        self._sync(self.directory)

    def _sync(self, path: Path) -> None:
        if not self.fsync:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
