"""clickhouse-connect and @clickhouse/client as their users call them: the handshake, every
transfer path each offers (Native, Arrow, pandas, raw formats, streaming; JSON formats,
parameters, compression), and writes through their insert APIs refused."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from tests.sqlhttp.conftest import PASSWORD
from tests.sqlhttp.node_client import run_node

TYPED = (
    "SELECT run_id, start_time, workflow_type, tenant, status, cost_usd, llm_calls, retry_loop "
    "FROM runs FINAL ORDER BY run_id LIMIT 50"
)


def test_clickhouse_connect_handshake(loaded, cc):
    engine = loaded.server.app._sql.info
    assert cc.server_version == engine.version
    assert str(cc.server_tz) in ("UTC", "Etc/UTC")
    assert cc.protocol_version == 0  # the engine's Native output carries no block info
    assert cc.compression == "lz4,zstd,gzip,deflate"  # what it asks for; the endpoint answers zstd


@pytest.mark.parametrize("compress", [True, False, "gzip", "lz4"])
def test_native_results_equal_the_store_with_any_compression(loaded, compress):
    client = loaded.client(compress=compress)
    try:
        result = client.query(TYPED)
        assert result.result_rows == loaded.server.store.rows(
            TYPED.replace("FROM runs", f"FROM {loaded.server.db}.runs")
        )
        priced = [row[5] for row in result.result_rows if row[5] is not None]  # unpriced runs are NULL
        assert priced and all(isinstance(cost, Decimal) for cost in priced)
    finally:
        client.close()


def test_arrow_pandas_and_streaming(loaded, cc):
    direct = loaded.server.store.rows(TYPED.replace("FROM runs", f"FROM {loaded.server.db}.runs"))
    table = cc.query_arrow(TYPED)
    assert table.column("run_id").to_pylist() == [row[0] for row in direct]
    assert table.column("cost_usd").to_pylist() == [row[5] for row in direct]  # Decimal128(38, 15), NULLs kept
    frame = cc.query_df(TYPED)
    assert list(frame["run_id"]) == [row[0] for row in direct] and list(frame["llm_calls"]) == [
        row[6] for row in direct
    ]
    streamed = []
    with cc.query_row_block_stream(TYPED) as stream:
        for block in stream:
            streamed.extend(block)
    assert streamed == direct


def test_server_side_parameters_and_settings_in_sql(loaded, cc):
    tenant = loaded.server.scalar("SELECT any(tenant) FROM {db}.runs FINAL")
    counted = cc.query("SELECT count() FROM runs FINAL WHERE tenant = {t:String}", parameters={"t": tenant}).result_rows
    assert counted == [
        (loaded.server.scalar("SELECT count() FROM {db}.runs FINAL WHERE tenant = {t:String}", t=tenant),)
    ]
    rows = cc.query("SELECT number FROM numbers(3) SETTINGS max_result_rows = 3").result_rows
    assert rows == [(0,), (1,), (2,)]
    with pytest.raises(ProgrammingError, match="readonly"):  # clickhouse-connect's own check (README)
        cc.query("SELECT 1", settings={"max_result_rows": 10})


@pytest.mark.parametrize(
    ("fmt", "parse"),
    [
        pytest.param("CSVWithNames", lambda b: list(csv.reader(io.StringIO(b.decode())))[1:], id="csv"),
        pytest.param("JSONEachRow", lambda b: [list(json.loads(x).values()) for x in b.splitlines()], id="ndjson"),
    ],
)
def test_raw_query_formats(cc, fmt, parse):
    body = cc.raw_query("SELECT number, toString(number * 2) FROM numbers(3)", fmt=fmt)
    assert [[str(v) for v in row] for row in parse(body)] == [["0", "0"], ["1", "2"], ["2", "4"]]


def test_inserts_through_the_client_apis_are_refused(loaded, cc):
    before = loaded.server.scalar("SELECT count() FROM {db}.outcomes")
    with pytest.raises(DatabaseError) as caught:
        cc.insert("outcomes", [["r", "accepted"]], column_names=["run_id", "outcome"])
    assert caught.value.code == 164
    answer = run_node(
        loaded.server.sql_url, "otelspend", PASSWORD,
        [{"query": "INSERT INTO outcomes (run_id, outcome) VALUES ('r', 'accepted')", "method": "exec"}],
    )  # fmt: skip
    assert answer["results"][0]["error"]["type"] == "READONLY"
    assert loaded.server.scalar("SELECT count() FROM {db}.outcomes") == before


@pytest.mark.parametrize("compression", [True, False], ids=["gzip", "plain"])
def test_node_client_formats_and_parameters(loaded, compression):
    tenant = loaded.server.scalar("SELECT any(tenant) FROM {db}.runs FINAL")
    quoted = {"output_format_json_quote_decimals": 1}
    queries = [
        {"query": "SELECT count() AS n FROM runs FINAL WHERE tenant = {t:String}", "query_params": {"t": tenant}},
        {"query": "SELECT sum(cost_usd) AS cost FROM runs FINAL", "format": "JSON", "clickhouse_settings": quoted},
        {"query": "SELECT number AS n FROM numbers(2)", "format": "CSVWithNames"},
        {"query": "SELECT number AS n FROM numbers(2)", "format": "JSONCompactEachRowWithNamesAndTypes"},
        {"query": "SELECT 1 AS one FORMAT TabSeparatedWithNames", "method": "exec"},
    ]
    answer = run_node(loaded.server.sql_url, "otelspend", PASSWORD, queries, compression=compression, ping=True)
    assert answer["ping"] == {"success": True}
    counted, total, as_csv, compact, raw = answer["results"]
    assert counted["rows"] == [
        {"n": loaded.server.scalar("SELECT count() FROM {db}.runs FINAL WHERE tenant = {t:String}", t=tenant)}
    ]
    assert Decimal(total["rows"]["data"][0]["cost"]) == loaded.server.scalar(
        "SELECT sum(cost_usd) FROM {db}.runs FINAL"
    )
    assert total["rows"]["meta"] == [{"name": "cost", "type": "Nullable(Decimal(38, 15))"}]
    assert as_csv["rows"] == '"n"\n0\n1\n'
    assert compact["rows"] == [["n"], ["UInt64"], [0], [1]]
    assert raw["text"] == "one\n1\n"
    headers = counted["headers"]
    assert headers["x-clickhouse-format"] == "JSONEachRow" and headers["x-clickhouse-query-id"] == counted["query_id"]
    assert (headers.get("content-encoding") == "gzip") is compression
