"""Read-only queries on the embedded engine, for the SQL endpoint.

Each query gets a chDB session of its own on the engine the store already runs (chDB allows
one engine per process and any number of connection handles to it). The session is set up
in order: the database (``USE``), the settings the caller vetted, a few hardening settings,
and last ``readonly = 1``. From then on the engine itself refuses writes, DDL, SYSTEM, the
table functions that reach outside, and any change of setting (``SET`` or a ``SETTINGS``
clause asking for a value other than the one already in force), so the limits set before
cannot be lifted from the SQL. The handle is closed after the query: a session in readonly
mode cannot be reset, and opening one costs about a millisecond (measured on chDB 4.4).

Not through clickhouse-connect: its chDB backend applies per-call settings with a
SET-then-restore dance, and nothing can be restored once ``readonly = 1`` is set.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chdb

from otelspend.clickhouse.queries import engine as engine_queries

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORMAT = re.compile(r"^[A-Za-z0-9_]+$")

HARDENING = (
    ("allow_introspection_functions", "0"),
    ("implicit_select", "0"),
    ("priority", "2"),
    ("os_thread_priority", "19"),
)
"""chDB turns the first two on by default (a server does not): no introspection of the
process' memory and code, and no statement without a verb (``1 + 1`` as a SELECT). Ingest
first: the engine pauses a query of priority 2 while one of the store's (priority 1,
``clickhouse.client.INGEST_PRIORITY``) runs, and runs its threads at nice 19 when the process
may set that (``os_thread_priority``: ClickHouse applies it only with CAP_SYS_NICE, e.g. root,
resets it after the query, and otherwise skips it; measured on chDB 4.4)."""


class ReadOnlyQueryError(Exception):
    """The engine refused or failed the query; ``str()`` is its message (``Code: N. DB::Exception: ...``)."""


@dataclass(frozen=True)
class EngineInfo:
    """What the engine reports about itself: version, time zone, table functions, settings."""

    version: str
    timezone: str
    table_functions: frozenset[str]
    http_compression_by_default: bool
    settings: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    """One query's answer: the formatted body and what the engine read and returned, and how long it took."""

    body: bytes
    read_rows: int
    read_bytes: int
    result_rows: int
    result_bytes: int
    elapsed_ns: int


class ReadOnlyQueries:
    """Runs one read-only query per call on the embedded engine at ``path``."""

    def __init__(self, path: Path) -> None:
        # chDB compares engine paths literally; the store opened it through clickhouse-connect,
        # which resolves the path the same way (realpath).
        self.connection_string = os.path.realpath(path)
        self._hardening: tuple[tuple[str, str], ...] = ()
        self._lock = threading.Lock()

    def info(self) -> EngineInfo:
        """What the endpoint answers about the engine (version, time zone, table functions)."""
        Path(self.connection_string).mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            version, timezone = _rows(conn, engine_queries.VERSION_AND_TIMEZONE)[0]
            functions = [row[0] for row in _rows(conn, engine_queries.TABLE_FUNCTIONS)]
            defaults = dict(_rows(conn, engine_queries.SETTINGS))
        finally:
            conn.close()
        with self._lock:
            self._hardening = tuple((k, v) for k, v in HARDENING if k in defaults)
        compression = defaults.get("enable_http_compression", "0") not in ("", "0")
        return EngineInfo(version, timezone, frozenset(functions), compression, frozenset(defaults))

    def run(
        self,
        sql: str,
        *,
        database: str,
        settings: Sequence[tuple[str, str]],
        params: Mapping[str, str],
        fmt: str,
    ) -> Outcome:
        """Run ``sql`` in a fresh readonly session; raises ReadOnlyQueryError with the engine's message."""
        if not _FORMAT.match(fmt):
            raise ReadOnlyQueryError(f"Code: 73. DB::Exception: Unknown format {fmt}. (UNKNOWN_FORMAT)")
        conn = self._connect()
        try:
            conn.query(f"USE {quote_identifier(database)}", "TabSeparated")
            for name, value in (*settings, *self._hardening, ("readonly", "1")):
                if not _NAME.match(name):
                    raise ReadOnlyQueryError(f"Code: 115. DB::Exception: Unknown setting {name!r}. (UNKNOWN_SETTING)")
                conn.query(f"SET {name} = {quote_string(value)}", "TabSeparated")
            result = conn.query(sql, fmt, params=dict(params))
            return Outcome(
                body=result.bytes(),
                read_rows=result.storage_rows_read(),
                read_bytes=result.storage_bytes_read(),
                result_rows=result.rows_read(),
                result_bytes=result.bytes_read(),
                elapsed_ns=int(result.elapsed() * 1e9),
            )
        except ReadOnlyQueryError:
            raise
        except Exception as exc:  # chDB raises RuntimeError subclasses carrying the engine's message
            raise ReadOnlyQueryError(str(exc)) from None
        finally:
            conn.close()

    def _connect(self) -> Any:
        try:
            return chdb.connect(self.connection_string)  # type: ignore[no-untyped-call]  # chdb leaves connect unannotated
        except Exception as exc:
            raise ReadOnlyQueryError(
                f"Code: 1002. DB::Exception: cannot open the embedded store: {exc}. (UNKNOWN_EXCEPTION)"
            ) from None


def quote_identifier(name: str) -> str:
    """``name`` as a backquoted ClickHouse identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    """``value`` as a single-quoted ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rows(conn: Any, sql: str) -> list[list[str]]:
    text = conn.query(sql, "TabSeparated").bytes().decode()
    return [line.split("\t") for line in text.splitlines()]
