"""Read-only by construction, through the two real clients: every forbidden statement,
table function and protected setting is refused with a ClickHouse error, limits cut queries,
credentials are checked as ClickHouse checks them, and nothing stored changes."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.sqlhttp.conftest import PASSWORD
from tests.sqlhttp.node_client import run_node
from tests.sqlhttp.test_endpoint import assert_error

HEAVY = "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 3"
OUTFILE = Path(tempfile.gettempdir()) / f"otelspend-sql-{uuid.uuid4().hex}.tsv"
FORBIDDEN_STATEMENTS = [
    pytest.param("INSERT INTO outcomes (run_id, outcome) VALUES ('x', 'accepted')", 164, id="insert"),
    pytest.param("ALTER TABLE runs DELETE WHERE 1", 164, id="alter"),
    pytest.param("DROP TABLE runs", 164, id="drop"),
    pytest.param("DROP DATABASE system", 164, id="drop-database"),
    pytest.param("CREATE TABLE evil (a UInt8) ENGINE = Memory", 164, id="create"),
    pytest.param("CREATE TEMPORARY TABLE evil (a UInt8)", 164, id="create-temporary"),
    pytest.param("SYSTEM DROP MARK CACHE", 164, id="system"),
    pytest.param("SYSTEM SHUTDOWN", 164, id="system-shutdown"),
    pytest.param("KILL QUERY WHERE 1 SYNC", 164, id="kill"),
    pytest.param("OPTIMIZE TABLE spans FINAL", 164, id="optimize"),
    pytest.param("TRUNCATE TABLE spans", 164, id="truncate"),
    pytest.param("RENAME TABLE runs TO runs2", 164, id="rename"),
    pytest.param("DETACH TABLE runs", 164, id="detach"),
    pytest.param("DELETE FROM runs WHERE 1", 164, id="delete"),
    pytest.param("GRANT ALL ON *.* TO default", 164, id="grant"),
    pytest.param("SET readonly = 0", 164, id="set-readonly"),
    pytest.param("SET max_result_rows = 0", 164, id="set-unlimited-rows"),
    pytest.param("SET max_execution_time = 100000", 164, id="set-longer-time"),
    pytest.param("SET max_memory_usage = 0", 164, id="set-unlimited-memory"),
    pytest.param("SET allow_ddl = 1", 164, id="set-allow-ddl"),
    pytest.param("SET result_overflow_mode = 'break'", 164, id="set-silent-truncation"),
    pytest.param("SELECT count() FROM runs SETTINGS max_result_rows = 0", 164, id="settings-clause-unlimited"),
    pytest.param("SELECT count() FROM runs SETTINGS readonly = 0", 164, id="settings-clause-readonly"),
    pytest.param(f"SELECT 1 INTO OUTFILE '{OUTFILE}'", 358, id="into-outfile"),
]
TABLE_FUNCTIONS = [
    "file('/etc/passwd', 'LineAsString')", "url('http://127.0.0.1:9/', 'LineAsString')", "s3('http://127.0.0.1:9/x.csv')",
    "remote('127.0.0.1', system.one)", "remoteSecure('127.0.0.1', system.one)", "cluster('default', system.one)",
    "mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", "postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "executable('id', 'TSV', 'a String')", "hdfs('hdfs://127.0.0.1:9/x', 'TSV', 'a String')", "jdbc('x', 'y')",
    "odbc('x', 'y')", "azureBlobStorage('http://127.0.0.1:9', 'c', 'b')", "input('a String')",
    "sqlite('/etc/passwd', 't')", "python(df)", "filesystem('/')", "icebergLocal('/etc')",
]  # fmt: skip
OUTSIDE_CALLS = [pytest.param(f"SELECT * FROM {f}", id=f.split("(")[0]) for f in TABLE_FUNCTIONS] + [
    pytest.param("SELECT file('/etc/passwd')", id="file-scalar"),
    pytest.param(
        "SELECT * FROM runs WHERE run_id IN (SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString'))",
        id="url-in-subquery",
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def stored(loaded) -> dict[str, int]:
    return _stored(loaded)


def _stored(loaded) -> dict[str, int]:
    return {
        table: loaded.server.scalar(f"SELECT count() FROM {{db}}.{table}")
        for table in ("spans", "runs", "run_calls", "outcomes", "rollup_runs_hourly")
    }


@pytest.mark.parametrize(("sql", "code"), FORBIDDEN_STATEMENTS)
def test_forbidden_statements_are_refused_through_clickhouse_connect(cc, sql, code):
    with pytest.raises(DatabaseError) as caught:
        cc.command(sql)
    assert caught.value.code == code
    assert "readonly" in str(caught.value) or "INTO OUTFILE is not allowed" in str(caught.value)


@pytest.mark.parametrize("sql", OUTSIDE_CALLS)
def test_functions_reaching_outside_are_refused_through_clickhouse_connect(cc, sql):
    with pytest.raises(DatabaseError) as caught:
        cc.query(sql)
    assert caught.value.code == 164 and "readonly mode" in str(caught.value)


def test_everything_forbidden_is_refused_through_the_node_client(loaded, stored):
    statements = [p.values[0] for p in FORBIDDEN_STATEMENTS]
    calls = [p.values[0] for p in OUTSIDE_CALLS]
    queries = [{"query": sql, "method": "command"} for sql in statements]
    queries += [{"query": sql, "format": "JSONEachRow"} for sql in calls]
    answer = run_node(loaded.server.sql_url, "otelspend", PASSWORD, queries)
    expected = [p.values[1] for p in FORBIDDEN_STATEMENTS] + [164] * len(calls)
    for query, result, code in zip(queries, answer["results"], expected, strict=True):
        assert "error" in result, (query, result)
        assert result["error"]["code"] == str(code), (query, result)
        assert result["error"]["type"] in ("READONLY", "INTO_OUTFILE_NOT_ALLOWED"), (query, result)
    assert _stored(loaded) == stored


def test_nothing_stored_changed(loaded, stored):
    assert _stored(loaded) == stored
    assert not OUTFILE.exists()


def test_limits_cut_queries_through_both_clients(loaded, cc):
    over = "SELECT number FROM numbers(2000000)"  # the default ceiling is 1,000,000 result rows
    with pytest.raises(DatabaseError) as caught:
        cc.query(over)
    assert caught.value.code == 396
    with pytest.raises(DatabaseError) as caught:
        cc.query(f"{HEAVY} SETTINGS max_execution_time = 0.5")
    assert caught.value.code == 159
    queries = [
        {"query": "SELECT number FROM numbers(100)", "clickhouse_settings": {"max_result_rows": 10}},
        {"query": over},
    ]
    answer = run_node(loaded.server.sql_url, "otelspend", PASSWORD, queries)
    assert [r["error"]["type"] for r in answer["results"]] == ["TOO_MANY_ROWS_OR_BYTES"] * 2


# -- credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        pytest.param("otelspend", "wrong-password", 516, id="wrong-password"),
        pytest.param("admin", PASSWORD, 516, id="unknown-user"),
        pytest.param("default", "", 194, id="missing-credentials"),
        pytest.param("default", PASSWORD, 194, id="default-user"),
    ],
)
def test_credentials_through_both_clients(loaded, username, password, code):
    host, port = loaded.host_port
    with pytest.raises(DatabaseError) as caught:
        clickhouse_connect.get_client(host=host, port=port, username=username, password=password)
    assert caught.value.code == code
    answer = run_node(loaded.server.sql_url, username, password, [{"query": "SELECT 1"}], ping=True)
    (result,) = answer["results"]
    assert result["error"]["code"] == str(code)
    assert result["error"]["type"] == ("AUTHENTICATION_FAILED" if code == 516 else "REQUIRED_PASSWORD")
    assert answer["ping"]["success"] is True  # /ping needs no credentials, as in ClickHouse


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        pytest.param({}, 401, 194, id="no-credentials-401"),
        pytest.param({"auth": ("otelspend", "wrong-password")}, 403, 516, id="basic-wrong-403"),
        pytest.param({"headers": {"X-ClickHouse-User": "otelspend", "X-ClickHouse-Key": "no"}}, 403, 516, id="x-wrong"),
        pytest.param({"params": {"user": "otelspend", "password": "nope"}}, 403, 516, id="url-wrong"),
        pytest.param({"headers": {"Authorization": "Bearer abc"}}, 403, 516, id="bearer-not-supported"),
        pytest.param(
            {"auth": ("otelspend", PASSWORD), "headers": {"X-ClickHouse-User": "otelspend", "X-ClickHouse-Key": "k"}},
            403, 516, id="two-schemes-at-once",
        ),
    ],
)  # fmt: skip
def test_failed_logins_answer_as_clickhouse(loaded, kwargs, status, code):
    response = httpx.post(loaded.server.sql_url + "/", content="SELECT 1", **kwargs)
    assert_error(response, status, code, "REQUIRED_PASSWORD" if code == 194 else "AUTHENTICATION_FAILED")
    assert (response.headers.get("www-authenticate") is not None) == (status == 401)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"auth": ("otelspend", PASSWORD)}, id="basic"),
        pytest.param({"headers": {"X-ClickHouse-User": "otelspend", "X-ClickHouse-Key": PASSWORD}}, id="x-clickhouse"),
        pytest.param({"params": {"user": "otelspend", "password": PASSWORD}}, id="url-parameters"),
    ],
)
def test_every_clickhouse_way_to_send_credentials(loaded, kwargs):
    assert httpx.post(loaded.server.sql_url + "/", content="SELECT 1", **kwargs).text == "1\n"


def test_without_a_password_loopback_needs_no_credentials(server_with):
    server = server_with()  # sql.password unset: only loopback addresses validate
    url = server.sql_url + "/"
    assert httpx.post(url, content="SELECT 1").text == "1\n"
    assert httpx.post(url, content="SELECT 1", auth=("default", "")).text == "1\n"
    assert httpx.post(url, content="SELECT 1", auth=("otelspend", "")).text == "1\n"
    assert_error(httpx.post(url, content="SELECT 1", auth=("otelspend", "guess")), 403, 516, "AUTHENTICATION_FAILED")
    host, port = server.addresses.sql.rsplit(":", 1)
    client = clickhouse_connect.get_client(host=host, port=int(port))
    assert client.query("SELECT 1").result_rows == [(1,)]
    assert run_node(server.sql_url, "default", "", [{"query": "SELECT 1 AS x"}])["results"][0]["rows"] == [{"x": 1}]
    with pytest.raises(DatabaseError) as caught:
        client.command("DROP TABLE runs")
    assert caught.value.code == 164
