"""The README's SQL section, run as written against a live server: its SQL through both
clients (equal to the store and to the REST API), and its clickhouse-connect, Node and curl
examples (only the address and the database name are the test server's)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.sqlhttp.conftest import PASSWORD, Loaded
from tests.sqlhttp.node_client import NODE_DIR, node_client_ready, run_node

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Query the tables with SQL", 1)[1].split("\n## ", 1)[0]
ENDPOINT = SECTION.split("### While otelspend runs: the SQL endpoint", 1)[1]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _readme_queries() -> list[str]:
    (block,) = _blocks(SECTION.split("### While otelspend runs", 1)[0], "sql")
    return [q.strip() for q in block.split(";") if q.strip()]


def _local(loaded: Loaded, text: str) -> str:
    """The README's address and database, made the test server's."""
    host, port = loaded.host_port
    text = text.replace("127.0.0.1:8123", f"{host}:{port}")
    text = text.replace('host="127.0.0.1", port=8123', f'host="{host}", port={port}')
    return text.replace("otelspend.", f"{loaded.server.db}.")


def test_the_section_has_the_examples():
    assert len(_readme_queries()) == 3
    assert [len(_blocks(ENDPOINT, lang)) for lang in ("python", "js", "sh")] == [1, 1, 2]


@pytest.mark.parametrize("index", range(3), ids=["calls-of-the-last-day", "costliest-runs", "cost-per-success"])
def test_readme_sql_through_both_clients(loaded, cc, index):
    sql = _local(loaded, _readme_queries()[index])
    direct = loaded.server.store.rows(sql)
    assert direct
    assert cc.query(sql).result_rows == direct
    settings = {"output_format_json_quote_decimals": 1, "output_format_json_quote_64bit_integers": 1}
    query = {"query": sql, "format": "JSONCompactEachRow", "clickhouse_settings": settings}
    (result,) = run_node(loaded.server.sql_url, "otelspend", PASSWORD, [query])["results"]
    assert [[_plain(v) for v in row] for row in direct] == [[_plain(v) for v in row] for row in result["rows"]]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:26]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+", value):
        return (value + "000000")[:26]
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return Decimal(value)
    return value


def test_readme_runs_and_cost_per_success_equal_the_rest_api(loaded, cc):
    queries = [_local(loaded, q) for q in _readme_queries()]
    now = dt.datetime.now(dt.UTC)
    stamp = "%Y-%m-%dT%H:00:00Z"
    window = {
        "from": (now - dt.timedelta(days=30)).strftime(stamp),
        "to": (now + dt.timedelta(hours=2)).strftime(stamp),
    }
    runs = cc.query(queries[1]).result_rows
    rest_runs = loaded.rest("/v1/runs", order_by="cost_usd", limit=20, **window)["runs"]
    assert [(r[0], r[-1]) for r in runs] == [(r["run_id"], Decimal(r["cost_usd"])) for r in rest_runs]
    by_workflow = {w: (cost, ok) for w, cost, ok, _ in cc.query(queries[2]).result_rows}
    week = {"from": (now - dt.timedelta(days=7)).strftime(stamp), "to": window["to"]}
    rest = loaded.rest("/v1/rollups", group_by="workflow_type", metrics="cost_usd,successful_runs", **week)["rows"]
    assert by_workflow == {r["workflow_type"]: (Decimal(r["cost_usd"]), r["successful_runs"]) for r in rest}


def test_readme_clickhouse_connect_example(loaded, capsys):
    (code,) = _blocks(ENDPOINT, "python")
    os.environ["OTELSPEND_SQL_PASSWORD"] = PASSWORD
    try:
        namespace: dict[str, Any] = {}
        exec(compile(_local(loaded, code), "README.md", "exec"), namespace)  # the README's code, as written
    finally:
        del os.environ["OTELSPEND_SQL_PASSWORD"]
    printed = capsys.readouterr().out.splitlines()
    workflows = loaded.server.rows("SELECT DISTINCT workflow_type FROM {db}.runs FINAL")
    assert len(printed) == len(workflows)
    assert (
        list(namespace["runs"].columns) == ["run_id", "tenant", "status", "cost_usd"] and len(namespace["runs"]) == 20
    )
    calls = namespace["calls"].to_pydict()
    counted = loaded.server.scalar("SELECT count() FROM {db}.spans FINAL WHERE call_role = 'call'")
    assert sum(calls["calls"]) == counted


def test_readme_node_example(loaded):
    node_client_ready()
    (code,) = _blocks(ENDPOINT, "js")
    env = {**os.environ, "OTELSPEND_SQL_PASSWORD": PASSWORD}
    result = subprocess.run(
        ["node", "--input-type=module", "-e", _local(loaded, code)],
        capture_output=True, text=True, cwd=NODE_DIR, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    expected = loaded.server.rows(
        "SELECT tenant, model, sum(cost_usd) AS cost FROM {db}.rollup_calls_hourly WHERE model != '' "
        "GROUP BY tenant, model ORDER BY cost DESC LIMIT 10"
    )
    assert [(r["tenant"], r["model"], Decimal(r["cost"])) for r in rows] == [tuple(row) for row in expected]


def test_readme_curl_example(loaded):
    script = _local(loaded, _blocks(ENDPOINT, "sh")[0])
    env = {**os.environ, "OTELSPEND_SQL_PASSWORD": PASSWORD}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Ok.\n")
    assert "workflow_type" in out and "cost" in out  # the PrettyCompactMonoBlock table
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    costliest = loaded.server.rows("SELECT run_id FROM {db}.runs FINAL ORDER BY cost_usd DESC LIMIT 3")
    assert [line["run_id"] for line in lines] == [row[0] for row in costliest]
    assert out.rstrip().splitlines()[-1].startswith("Code: 164. DB::Exception: Cannot execute query in readonly mode")
