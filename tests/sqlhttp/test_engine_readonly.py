"""What chDB's own ``readonly = 1`` does and does not stop, measured on the real engine.

The endpoint's read-only guarantee rests on it (``otelspend.clickhouse.readonly``): these
tests pin the engine's behaviour the policy was designed around, including the three things
chDB still runs in readonly mode (KILL QUERY, the scalar file(), INTO OUTFILE), which is why
the policy refuses them. If a chDB upgrade changes any of it, a test here says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelspend.api.sqlhttp import errors
from otelspend.api.sqlhttp.errors import ClickHouseError
from otelspend.clickhouse.client import INGEST_PRIORITY, Store
from otelspend.clickhouse.migrate import migrate
from otelspend.clickhouse.readonly import ReadOnlyQueries, ReadOnlyQueryError

LIMITS = [("max_result_rows", "5"), ("result_overflow_mode", "throw")]


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[Store]:
    """One migrated database for the module (migrating one per test dominates its time)."""
    s = Store(f"chdb://{chdb_path}", f"t_ro_{uuid.uuid4().hex[:10]}")
    migrate(s)
    yield s
    s.close()


@pytest.fixture(scope="module")
def queries(store: Store) -> ReadOnlyQueries:
    assert store.path is not None
    queries = ReadOnlyQueries(store.path)
    queries.info()
    return queries


def run(queries: ReadOnlyQueries, store: Store, sql: str, settings=(), fmt: str = "TabSeparated") -> bytes:
    return queries.run(sql, database=store.database, settings=list(settings), params={}, fmt=fmt).body


def engine_error(queries: ReadOnlyQueries, store: Store, sql: str, settings=()) -> ClickHouseError:
    with pytest.raises(ReadOnlyQueryError) as caught:
        run(queries, store, sql, settings)
    return ClickHouseError.from_engine(str(caught.value))


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("INSERT INTO outcomes (run_id, outcome) VALUES ('r', 'accepted')", id="insert"),
        pytest.param("CREATE TABLE x (a UInt8) ENGINE = Memory", id="create"),
        pytest.param("DROP TABLE outcomes", id="drop"),
        pytest.param("ALTER TABLE outcomes DELETE WHERE 1", id="alter"),
        pytest.param("TRUNCATE TABLE outcomes", id="truncate"),
        pytest.param("OPTIMIZE TABLE outcomes", id="optimize"),
        pytest.param("SYSTEM FLUSH LOGS", id="system"),
        pytest.param("SELECT * FROM file('/etc/hostname', 'LineAsString')", id="file-table-function"),
        pytest.param("SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", id="url"),
        pytest.param("SELECT * FROM s3('http://127.0.0.1:9/x.csv')", id="s3"),
        pytest.param("SELECT * FROM remote('127.0.0.1', system.one)", id="remote"),
        pytest.param("SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", id="mysql"),
        pytest.param("SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", id="postgresql"),
        pytest.param("SELECT * FROM executable('true', 'TSV', 'a String')", id="executable"),
        pytest.param("SET max_result_rows = 0", id="set-a-limit"),
        pytest.param("SELECT 1 SETTINGS max_result_rows = 0", id="settings-clause-lifting-a-limit"),
        pytest.param("SELECT 1 SETTINGS readonly = 0", id="settings-clause-readonly"),
    ],
)
def test_the_engine_refuses_in_readonly_mode(queries, store, sql):
    error = engine_error(queries, store, sql, LIMITS)
    assert (error.code, error.name) == (164, "READONLY"), error.message


def test_a_readonly_session_leaves_the_store_writable(queries, store):
    engine_error(queries, store, "INSERT INTO outcomes (run_id, outcome) VALUES ('r1', 'accepted')")
    store.command(f"INSERT INTO {store.database}.outcomes (run_id, outcome) VALUES ('r2', 'accepted')")
    assert run(queries, store, "SELECT run_id FROM outcomes WHERE run_id IN ('r1', 'r2')") == b"r2\n"


def test_settings_in_force_may_be_repeated_in_a_settings_clause(queries, store):
    assert run(queries, store, "SELECT 1 SETTINGS max_result_rows = 5", LIMITS) == b"1\n"


@pytest.mark.parametrize(
    ("sql", "settings", "name"),
    [
        pytest.param("SELECT * FROM numbers(10)", LIMITS, "TOO_MANY_ROWS_OR_BYTES", id="result-rows"),
        pytest.param(
            "SELECT * FROM numbers(100000)", [("max_result_bytes", "4096"), ("result_overflow_mode", "throw")],
            "TOO_MANY_ROWS_OR_BYTES", id="result-bytes",
        ),
        pytest.param(
            "SELECT count() FROM numbers(10000000000) WHERE sipHash64(number) % 7 = 3", [("max_execution_time", "0.5")],
            "TIMEOUT_EXCEEDED", id="execution-time",
        ),
        pytest.param(
            "SELECT groupArray(number) FROM numbers(10000000)", [("max_memory_usage", "20000000")],
            "MEMORY_LIMIT_EXCEEDED", id="memory",
        ),
    ],
)  # fmt: skip
def test_limits_cut_the_query_with_an_error(queries, store, sql, settings, name):
    assert engine_error(queries, store, sql, settings).name == name


def test_chdb_still_runs_three_things_in_readonly_mode(queries, store, tmp_path):
    """Why the policy refuses KILL, file() and INTO OUTFILE itself."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for SQL clients")
    assert run(queries, store, f"SELECT file('{secret}')") == b"not for SQL clients\n"
    target = tmp_path / "out.tsv"
    run(queries, store, f"SELECT 42 INTO OUTFILE '{target}'")
    assert target.read_text() == "42\n"
    run(queries, store, "KILL QUERY WHERE query_id = 'none' SYNC")  # allowed, as every chDB query runs as one user


def test_hardening_turns_off_what_chdb_turns_on(queries, store):
    names = ("allow_introspection_functions", "implicit_select", "priority", "os_thread_priority")
    settings = "SELECT " + ", ".join(f"getSetting('{name}')" for name in names)
    assert run(queries, store, settings) == b"false\tfalse\t2\t19\n"
    # The store's own queries come first: the engine pauses priority 2 while priority 1 runs.
    assert store.scalar("SELECT getSetting('priority')") == INGEST_PRIORITY == 1
    assert engine_error(queries, store, "1 + 1").name == "SYNTAX_ERROR"


def test_error_codes_are_clickhouses(store):
    """The codes the endpoint raises itself carry the engine's own numbers for their names."""
    mine = [value for value in vars(errors).values() if isinstance(value, tuple) and len(value) == 2]
    listed = ", ".join(str(code) for code, _ in mine)
    rows = store.rows(f"SELECT number, errorCodeToName(number) FROM numbers(2000) WHERE number IN ({listed})")
    assert {code: name for code, name in rows} == dict(mine)
