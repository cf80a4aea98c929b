"""The HTTP interface as ClickHouse serves it: methods, parameters, formats, headers,
compression, sessions, errors and limits, over a live server (plain HTTP with httpx)."""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
import threading
import zlib

import httpx
import lz4.frame
import pyarrow.parquet as pq
import pytest

from tests.conftest import wait_for
from tests.sqlhttp.conftest import CREDENTIALS, PASSWORD

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

ERROR_BODY = re.compile(r"^Code: (\d+)\. DB::Exception: .+\. \(([A-Z_]+)\) \(version [0-9.]+\)\n$", re.S)


def assert_error(response: httpx.Response, status: int, code: int, name: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["x-clickhouse-exception-code"] == str(code)
    match = ERROR_BODY.match(response.text)
    assert match is not None and match.groups() == (str(code), name), response.text
    for fragment in fragments:
        assert fragment in response.text


@pytest.mark.parametrize("path", ["/ping", "/", "/replicas_status"])
def test_health_paths_answer_ok(loaded, path):
    response = httpx.get(loaded.server.sql_url + path)
    assert (response.status_code, response.text) == (200, "Ok.\n")
    assert httpx.head(loaded.server.sql_url + path).status_code == 200


def test_unknown_path_is_404(loaded):
    response = httpx.get(loaded.server.sql_url + "/play")
    assert response.status_code == 404 and "There is no handle /play" in response.text


def test_post_and_get_with_clickhouse_headers(loaded):
    response = loaded.post("SELECT count() FROM runs FINAL", params={"query_id": "q-1"})
    assert response.status_code == 200
    runs = loaded.server.scalar("SELECT count() FROM {db}.runs FINAL")
    assert response.text == f"{runs}\n"
    headers = response.headers
    assert headers["x-clickhouse-query-id"] == "q-1"
    assert headers["x-clickhouse-format"] == "TabSeparated"
    assert headers["x-clickhouse-timezone"] == "Etc/UTC"
    assert headers["x-clickhouse-server-display-name"] == "test-node"
    assert headers["content-type"] == "text/tab-separated-values; charset=UTF-8"
    summary = json.loads(headers["x-clickhouse-summary"])
    assert set(summary) >= {"read_rows", "read_bytes", "written_rows", "written_bytes", "result_rows", "elapsed_ns"}
    assert summary["result_rows"] == "1" and all(isinstance(v, str) for v in summary.values())
    got = loaded.get({"query": "SELECT count() FROM runs FINAL", "default_format": "JSONEachRow"})
    assert got.json() == {"count()": runs} and got.headers["x-clickhouse-format"] == "JSONEachRow"
    assert re.fullmatch(r"[0-9a-f-]{36}", got.headers["x-clickhouse-query-id"])


def test_query_parameter_and_body_make_one_query(loaded):
    response = loaded.post("FROM numbers(3)", params={"query": "SELECT sum(number)"})
    assert response.text == "3\n"


def test_database_parameter_header_and_default(loaded):
    assert loaded.post("SELECT currentDatabase()").text == f"{loaded.server.db}\n"
    assert loaded.post("SELECT currentDatabase()", params={"database": "system"}).text == "system\n"
    assert loaded.post("SELECT currentDatabase()", headers={"X-ClickHouse-Database": "system"}).text == "system\n"
    assert_error(loaded.post("SELECT 1", params={"database": "nowhere"}), 404, 81, "UNKNOWN_DATABASE")


QUERY = "SELECT toUInt8(number) AS n, toString(number) AS s, toDecimal64(number, 3) / 4 AS d FROM numbers(3)"


def _tsv(body: bytes, skip: int = 0) -> list[int]:
    return [int(line.split(b"\t")[0]) for line in body.splitlines()[skip:]]


def _csv(body: bytes) -> list[int]:
    return [int(line.split(b",")[0]) for line in body.splitlines()[1:]]


@pytest.mark.parametrize(
    ("fmt", "content_type", "decode"),
    [
        pytest.param("JSON", "application/json", lambda b: [r["n"] for r in json.loads(b)["data"]], id="json"),
        pytest.param(
            "JSONEachRow", "application/json", lambda b: [json.loads(x)["n"] for x in b.splitlines()], id="ndjson"
        ),
        pytest.param("TabSeparated", "text/tab-separated-values", _tsv, id="tsv"),
        pytest.param("TabSeparatedWithNames", "text/tab-separated-values", lambda b: _tsv(b, 1), id="tsv-with-names"),
        pytest.param("CSVWithNames", "text/csv", _csv, id="csv-with-names"),
        pytest.param(
            "Parquet", "application/octet-stream", lambda b: pq.read_table(io.BytesIO(b))["n"].to_pylist(), id="parquet"
        ),
    ],
)
def test_formats(loaded, fmt, content_type, decode):
    by_clause = loaded.post(f"{QUERY} FORMAT {fmt}")
    by_default = loaded.post(QUERY, params={"default_format": fmt})
    for response in (by_clause, by_default):
        assert response.status_code == 200, response.text
        assert response.headers["x-clickhouse-format"] == fmt
        assert response.headers["content-type"].startswith(content_type)
        assert decode(response.content) == [0, 1, 2]


def test_native_is_the_engines_native_format(loaded):
    response = loaded.post("SELECT number FROM numbers(2) FORMAT Native")
    # columns, rows, name, type, two UInt64 values (little endian)
    assert response.content == b"\x01\x02\x06number\x06UInt64" + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")


def test_the_grafana_plugins_handshake(loaded):
    """grafana-clickhouse-datasource's Go client over HTTP: ``default_format=Native`` on every
    request, ``SELECT timeZone()`` first, its query timeout as ``max_execution_time`` (above
    the ceiling: lowered, not refused), unused parameters ignored."""
    params = {"default_format": "Native", "max_execution_time": "60", "param_unused": "x"}
    response = loaded.post("SELECT timeZone()", params=params)
    assert response.status_code == 200, response.text
    assert response.content == b"\x01\x01\ntimeZone()\x06String\x07Etc/UTC"
    assert loaded.post("SELECT 1", params=params).content == b"\x01\x01\x011\x05UInt8\x01"


def test_query_parameters_in_the_url_and_in_a_multipart_body(loaded):
    response = loaded.get(
        {"query": "SELECT {s:String}, {a:Array(String)}", "param_s": "O\\'Reilly", "param_a": "['x','y']"}
    )
    assert response.text == "O\\'Reilly\t['x','y']\n"
    big = ",".join(f"'{i:05d}'" for i in range(1000))  # over the 4 KiB both clients keep in a URL
    files = {"query": (None, "SELECT length({v:Array(String)})"), "param_v": (None, f"[{big}]")}
    response = httpx.post(loaded.server.sql_url + "/", files=files, auth=CREDENTIALS)
    assert response.text == "1000\n", response.text
    upload = {"query": (None, "SELECT 1"), "t": ("t.csv", b"1\n", "text/csv")}
    assert_error(httpx.post(loaded.server.sql_url + "/", files=upload, auth=CREDENTIALS), 501, 48, "NOT_IMPLEMENTED")


DECODERS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "zstd": zstd.decompress,
    "lz4": lz4.frame.decompress,
}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        pytest.param("gzip", "gzip", id="gzip"),
        pytest.param("deflate", "deflate", id="deflate"),
        pytest.param("zstd", "zstd", id="zstd"),
        pytest.param("lz4", "lz4", id="lz4"),
        pytest.param("lz4,zstd,gzip,deflate", "zstd", id="clickhouse-connect-list-server-preference"),
        pytest.param("gzip;q=0, deflate", "deflate", id="refused-by-q0"),
    ],
)
def test_response_compression(loaded, accept, chosen):
    sql = "SELECT number FROM numbers(1000) FORMAT CSV"
    plain = loaded.post(sql).content
    with httpx.Client(auth=CREDENTIALS, timeout=60) as client:
        request = client.build_request(
            "POST", loaded.server.sql_url + "/", content=sql, params={"enable_http_compression": "1"},
            headers={"Accept-Encoding": accept},
        )  # fmt: skip
        response = client.send(request, stream=True)
        raw = response.read() if response.headers.get("content-encoding") is None else b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == chosen
    assert DECODERS[chosen](raw) == plain


def test_no_compression_without_accept_encoding_or_when_disabled(loaded):
    with httpx.Client(auth=CREDENTIALS) as client:
        off = client.post(loaded.server.sql_url + "/", content="SELECT 1", params={"enable_http_compression": "0"})
    assert "content-encoding" not in off.headers and off.text == "1\n"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "lz4"])
def test_compressed_request_bodies(loaded, encoding):
    encode = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstd.compress, "lz4": lz4.frame.compress}
    response = loaded.post(encode[encoding](b"SELECT 40 + 2"), headers={"Content-Encoding": encoding})
    assert response.text == "42\n"


def test_native_block_compression_is_refused_clearly(loaded):
    assert_error(loaded.post("SELECT 1", params={"compress": "1"}), 501, 48, "NOT_IMPLEMENTED", "HTTP compression")


def test_sessions_keep_set_and_use(loaded):
    session = {"session_id": "s-1"}
    assert loaded.post("SET date_time_output_format = 'iso'", params=session).status_code == 200
    assert loaded.post("SELECT toDateTime(0, 'UTC')", params=session).text == "1970-01-01T00:00:00Z\n"
    assert loaded.post("SELECT toDateTime(0, 'UTC')").text == "1970-01-01 00:00:00\n"  # another session
    assert loaded.post("USE system", params=session).status_code == 200
    assert loaded.post("SELECT currentDatabase()", params=session).text == "system\n"
    assert loaded.post("SET param_x = 7", params=session).status_code == 200
    assert loaded.post("SELECT {x:UInt8} * 6", params=session).text == "42\n"
    missing = loaded.post("SELECT 1", params={"session_id": "never-seen", "session_check": "1"})
    assert_error(missing, 500, 372, "SESSION_NOT_FOUND")
    assert_error(
        loaded.post("SELECT 1", params={"session_id": "s-2", "session_timeout": "99999"}),
        500,
        374,
        "INVALID_SESSION_TIMEOUT",
    )


def test_unknown_settings_are_unknown_as_in_clickhouse(loaded):
    assert_error(loaded.post("SET no_such_setting = 1"), 404, 115, "UNKNOWN_SETTING")
    assert_error(loaded.post("SELECT 1", params={"output_format_no_such_thing": "1"}), 404, 115, "UNKNOWN_SETTING")
    assert_error(loaded.post("SELECT 1 SETTINGS nope = 1"), 404, 115, "UNKNOWN_SETTING")


def test_echoed_values_cannot_inject_headers(loaded):
    response = loaded.post("SELECT 1", params={"query_id": "a\r\nX-Evil: 1"})
    assert response.status_code == 200 and response.headers["x-clickhouse-query-id"] == "a??X-Evil: 1"
    assert "x-evil" not in response.headers


def test_session_timezone_is_reported(loaded):
    response = loaded.post("SELECT 1", params={"session_timezone": "Europe/Paris"})
    assert response.headers["x-clickhouse-timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    ("sql", "status", "code", "name"),
    [
        pytest.param("SELEC 1", 400, 62, "SYNTAX_ERROR", id="syntax"),
        pytest.param("SELECT * FROM no_such_table", 404, 60, "UNKNOWN_TABLE", id="unknown-table"),
        pytest.param("SELECT no_such_function(1)", 404, 46, "UNKNOWN_FUNCTION", id="unknown-function"),
        pytest.param("SELECT 1 FORMAT NoSuchFormat", 404, 73, "UNKNOWN_FORMAT", id="unknown-format"),
        pytest.param("SELECT 1; SELECT 2", 400, 62, "SYNTAX_ERROR", id="multi-statement"),
        pytest.param("", 400, 62, "SYNTAX_ERROR", id="empty"),
    ],
)
def test_errors_are_clickhouse_shaped(loaded, sql, status, code, name):
    assert_error(loaded.post(sql), status, code, name)


def test_limits_cut_queries_with_an_error(loaded):
    assert_error(
        loaded.post("SELECT * FROM numbers(100)", params={"max_result_rows": "10"}), 500, 396, "TOO_MANY_ROWS_OR_BYTES"
    )
    assert_error(
        loaded.post("SELECT * FROM numbers(1000000) SETTINGS max_result_bytes = 10000"),
        500,
        396,
        "TOO_MANY_ROWS_OR_BYTES",
    )
    heavy = "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 3"
    assert_error(loaded.post(heavy, params={"max_execution_time": "0.5"}), 408, 159, "TIMEOUT_EXCEEDED")
    assert_error(
        loaded.post("SELECT groupArray(number) FROM numbers(20000000) SETTINGS max_memory_usage = 20000000"),
        500, 241, "MEMORY_LIMIT_EXCEEDED",
    )  # fmt: skip


def test_the_configured_ceilings_apply_without_any_client_setting(server_with):
    server = server_with(max_result_rows=5, max_execution_seconds=0.5)
    url = server.sql_url + "/"
    assert_error(httpx.post(url, content="SELECT * FROM numbers(6)"), 500, 396, "TOO_MANY_ROWS_OR_BYTES")
    heavy = "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 3"
    assert_error(httpx.post(url, content=heavy, params={"max_execution_time": "600"}), 408, 159, "TIMEOUT_EXCEEDED")
    assert httpx.post(url, content="SELECT * FROM numbers(5)").status_code == 200


def test_request_size_is_bounded(server_with):
    server = server_with(max_request_bytes=2048)
    big = "SELECT 1 -- " + "x" * 4096
    assert_error(httpx.post(server.sql_url + "/", content=big), 413, 229, "QUERY_IS_TOO_LARGE")
    bomb = gzip.compress(b"SELECT 1 -- " + b"x" * 100_000)
    response = httpx.post(server.sql_url + "/", content=bomb, headers={"Content-Encoding": "gzip"})
    assert_error(response, 413, 229, "QUERY_IS_TOO_LARGE", "decompressed")


def test_queries_beyond_the_queue_are_refused(server_with):
    server = server_with(max_concurrent_queries=1, max_queued_queries=0)
    url = server.sql_url + "/"
    slow = "SELECT sleepEachRow(0.5) FROM numbers(4) FORMAT Null"
    results: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: results.append(httpx.post(url, content=slow, timeout=30)))
    worker.start()
    running = (
        "SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow(0.5)%' AND query NOT LIKE '%processes%'"
    )
    wait_for(lambda: server.scalar(running), 10, "the slow query to hold the only slot")
    busy = httpx.post(url, content="SELECT 1")
    worker.join()
    assert results[0].status_code == 200, results[0].text
    assert_error(busy, 500, 202, "TOO_MANY_SIMULTANEOUS_QUERIES")
    assert httpx.post(url, content="SELECT 1").text == "1\n"  # the slot is free again


def test_queries_are_counted(loaded):
    before = loaded.server.app.metrics.value("otelspend_sql_queries_total", outcome="refused")
    loaded.post("DROP TABLE runs")
    assert loaded.server.app.metrics.value("otelspend_sql_queries_total", outcome="refused") == before + 1
    assert "otelspend_sql_query_seconds_count" in httpx.get(loaded.server.api_url + "/metrics").text


def test_password_is_never_echoed(loaded):
    response = loaded.post("SELECT 1", auth=("otelspend", PASSWORD + "x"))
    assert PASSWORD not in response.text and PASSWORD not in str(response.headers)
