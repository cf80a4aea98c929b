"""Every endpoint against the running server loaded with the test ledger (real HTTP)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from otelspend.api.vocabulary import DIMENSIONS, METRICS
from tests.api.conftest import Loaded, client_with

HOUR = 3600 * 10**9


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def _ns(text: str) -> int:
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = int(dt.datetime.fromisoformat(base).replace(tzinfo=dt.UTC).timestamp())
    return seconds * 10**9 + int((frac or "0").ljust(9, "0"))


def _everything(loaded: Loaded) -> dict[str, str]:
    return {"from": _iso(loaded.ledger.first_ns - HOUR), "to": _iso(loaded.now_ns + HOUR)}


def _get(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- rollups -----------------------------------------------------------------------------------


def test_rollups_default_window_is_the_last_24_hours(loaded: Loaded, api: httpx.Client) -> None:
    body = _get(api, "/v1/rollups")
    assert body["group_by"] == [] and body["metrics"] == ["cost_usd", "runs", "calls"]
    start, end = _ns(body["from"]), _ns(body["to"])
    assert end - start == 24 * HOUR
    expected = sum(1 for run in loaded.ledger.runs if start <= run.start < end)
    assert expected > 0
    assert [row["runs"] for row in body["rows"]] == [expected]


def test_rollups_order_limit_and_comma_lists(loaded: Loaded, api: httpx.Client) -> None:
    window = _everything(loaded)
    by_runs = _get(api, "/v1/rollups", group_by="workflow_type", metrics="runs", order_by="runs", order="asc", **window)
    runs = [row["runs"] for row in by_runs["rows"]]
    assert runs == sorted(runs) and len(runs) == 3
    limited = _get(api, "/v1/rollups", group_by="workflow_type", metrics="runs", order_by="runs", limit=2, **window)
    assert [row["runs"] for row in limited["rows"]] == sorted(runs, reverse=True)[:2]
    by_name = _get(api, "/v1/rollups", group_by="workflow_type", order_by="workflow_type", order="asc", **window)
    names = [row["workflow_type"] for row in by_name["rows"]]
    assert names == sorted(names)
    # The ordering metric is computed even when not asked for.
    extra = _get(api, "/v1/rollups", group_by="tenant", metrics="runs", order_by="cost_usd", **window)
    assert extra["metrics"] == ["runs", "cost_usd"]
    costs = [Decimal(row["cost_usd"]) for row in extra["rows"]]
    assert costs == sorted(costs, reverse=True)
    commas = api.get("/v1/rollups", params={"group_by": "tenant,model", "metrics": "cost_usd,runs", **window}).json()
    repeated = api.get(
        "/v1/rollups",
        params=[
            ("group_by", "tenant"),
            ("group_by", "model"),
            ("metrics", "cost_usd"),
            ("metrics", "runs"),
            *window.items(),
        ],
    ).json()
    assert commas["rows"] == repeated["rows"] and commas["group_by"] == ["tenant", "model"]


def test_money_is_an_exact_decimal_string(loaded: Loaded, api: httpx.Client) -> None:
    body = _get(api, "/v1/rollups", metrics="cost_usd,cost_per_success_usd,runs", **_everything(loaded))
    row = body["rows"][0]
    for name in ("cost_usd", "cost_per_success_usd"):
        assert isinstance(row[name], str)
        whole, _, decimals = row[name].partition(".")
        assert whole.isdigit() and len(decimals) == 15
    stored = loaded.server.scalar("SELECT sum(cost_usd) FROM {db}.spans FINAL WHERE call_role = 'call'")
    assert Decimal(row["cost_usd"]) == stored


def test_vocabulary_lists_every_name_and_matches_the_openapi(api: httpx.Client) -> None:
    body = _get(api, "/v1/vocabulary")
    assert [d["name"] for d in body["dimensions"]] == list(DIMENSIONS)
    assert [m["name"] for m in body["metrics"]] == list(METRICS)
    assert all(item["description"] for item in body["dimensions"] + body["metrics"])
    openapi = _get(api, "/openapi.json")
    params = {p["name"]: p for p in openapi["paths"]["/v1/rollups"]["get"]["parameters"]}
    assert params["group_by"]["schema"]["items"]["enum"] == list(DIMENSIONS)
    assert params["metrics"]["schema"]["items"]["enum"] == list(METRICS)
    for name in DIMENSIONS:
        assert f"`{name}`" in params["group_by"]["description"]
        assert f"filter.{name}" in params
    for name in METRICS:
        assert f"`{name}`" in params["metrics"]["description"]


# -- timeseries --------------------------------------------------------------------------------


def test_timeseries_points_add_up_to_the_rollup(loaded: Loaded, api: httpx.Client) -> None:
    start = loaded.ledger.first_ns + 90 * 60 * 10**9 + 7
    end = loaded.now_ns - 2 * HOUR
    window = {"from": _iso(start), "to": _iso(end)}
    series = _get(api, "/v1/timeseries", metrics="runs,cost_usd,calls", **window)
    assert series["bucket"] == "hour" and len(series["series"]) == 1
    points = series["series"][0]["points"]
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert {p["t"] for p in points} <= set(series["buckets"])
    buckets = [_ns(b) for b in series["buckets"]]
    assert buckets == list(range(start // HOUR * HOUR, end, HOUR))
    total = _get(api, "/v1/rollups", metrics="runs,cost_usd,calls", **window)["rows"][0]
    assert sum(p["runs"] for p in points) == total["runs"]
    assert sum(p["calls"] for p in points) == total["calls"]
    assert sum(Decimal(p["cost_usd"]) for p in points) == Decimal(total["cost_usd"])
    # Each point is the rollup of its bucket (clipped to the window).
    for point in points[:3] + points[-2:]:
        t = _ns(point["t"])
        one = _get(
            api, "/v1/rollups", metrics="runs,cost_usd", **{"from": _iso(max(t, start)), "to": _iso(min(t + HOUR, end))}
        )
        assert (one["rows"][0]["runs"], one["rows"][0]["cost_usd"]) == (point["runs"], point["cost_usd"])


def test_timeseries_top_series_by_order_metric(loaded: Loaded, api: httpx.Client) -> None:
    window = _everything(loaded)
    top = _get(api, "/v1/rollups", group_by="model", metrics="cost_usd,calls", limit=2, **window)["rows"]
    series = _get(api, "/v1/timeseries", bucket="day", group_by="model", metrics="cost_usd,calls", limit=2, **window)
    assert [s["model"] for s in series["series"]] == [row["model"] for row in top]
    for s, row in zip(series["series"], top, strict=True):
        assert sum(Decimal(p["cost_usd"]) for p in s["points"]) == Decimal(row["cost_usd"])
        assert sum(p["calls"] for p in s["points"]) == row["calls"]
    assert all(b.endswith("T00:00:00Z") for b in series["buckets"])


# -- runs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order_by", ["cost_usd", "duration_ms", "retries", "calls", "start_time"])
def test_runs_sorted_and_paginated(loaded: Loaded, api: httpx.Client, order_by: str) -> None:
    window = _everything(loaded)
    everything = _get(api, "/v1/runs", order_by=order_by, limit=1000, **window)
    assert len(everything["runs"]) == len(loaded.ledger.runs) and everything["next_offset"] is None
    values = [_key(order_by, r[order_by]) for r in everything["runs"]]
    assert values == sorted(values, reverse=True)
    pages, offset = [], 0
    while offset is not None:
        page = _get(api, "/v1/runs", order_by=order_by, limit=7, offset=offset, **window)
        pages.extend(page["runs"])
        offset = page["next_offset"]
    assert [r["run_id"] for r in pages] == [r["run_id"] for r in everything["runs"]]
    ascending = _get(api, "/v1/runs", order_by=order_by, order="asc", limit=3, **window)["runs"]
    assert _key(order_by, ascending[0][order_by]) == min(v for v in values if v is not None)


def _key(order_by: str, value: Any) -> Any:
    if order_by == "cost_usd":
        return Decimal(value or 0)  # unpriced runs (null) sort last, like 0 here
    if order_by == "start_time":
        return _ns(value)
    return value


def test_runs_filters(loaded: Loaded, api: httpx.Client) -> None:
    window = _everything(loaded)
    acme = _get(api, "/v1/runs", **{"filter.tenant": "acme", "limit": 1000}, **window)["runs"]
    assert acme and all(r["tenant"] == "acme" for r in acme)
    expected = loaded.server.scalar(
        "SELECT count() FROM {db}.spans FINAL WHERE parent_span_id = '' AND tenant = 'acme'"
    )
    assert len(acme) == expected
    # A call dimension keeps runs with at least one matching call.
    with_tool = _get(api, "/v1/runs", **{"filter.tool": "search", "limit": 1000}, **window)["runs"]
    assert with_tool and all("search" in r["tools"] for r in with_tool)
    want = loaded.server.scalar(
        "SELECT uniqExact(trace_id) FROM {db}.spans FINAL WHERE span_class = 'tool' AND tool_name = 'search'"
    )
    assert len(with_tool) == want


def test_run_detail_has_the_span_tree_with_costs(loaded: Loaded, api: httpx.Client) -> None:
    run = loaded.ledger.runs[24]  # a call seen by two spans (one call, one view), two agents
    body = _get(api, f"/v1/runs/{run.run_id}")
    record = body["run"]
    assert record["run_id"] == run.run_id and record["workflow_id"] == run.workflow_id
    assert len(body["spans"]) == 1, "one root"
    nodes = _flatten(body["spans"])
    assert len(nodes) == loaded.server.scalar(
        "SELECT count() FROM {db}.spans FINAL WHERE trace_id = {t:String}", t=run.run_id
    )
    root = body["spans"][0]
    assert root["name"] == "workflow" and root["parent_span_id"] == ""
    assert root["subtree_cost_usd"] == record["cost_usd"]
    calls = [n for n in nodes if n["call_role"] == "call"]
    assert sum(Decimal(n["cost_usd"]) for n in calls if n["cost_usd"]) == Decimal(record["cost_usd"])
    views = [n for n in nodes if n["call_role"] == "view"]
    assert len(views) == 2  # the first call of each agent is seen twice
    for view in views:
        assert view["cost_usd"] is not None  # priced and shown, not counted
        assert [child["call_role"] for child in view["children"]] == ["call"]
    for node in nodes:
        for child in node["children"]:
            assert child["parent_span_id"] == node["span_id"]
    assert sum(row["calls"] for row in body["breakdown"]) == record["calls"]
    assert sum(Decimal(row["cost_usd"]) for row in body["breakdown"]) == Decimal(record["cost_usd"])
    assert "attributes" not in root
    with_attributes = _get(api, f"/v1/runs/{run.run_id.upper()}", attributes="true")
    assert all(isinstance(n["attributes"], dict) for n in _flatten(with_attributes["spans"]))


def test_run_detail_outcome_history(loaded: Loaded, api: httpx.Client) -> None:
    body = _get(api, f"/v1/runs/{loaded.run_id(22)}")
    assert [o["outcome"] for o in body["outcomes"]] == ["accepted", "edited"]
    assert body["run"]["outcome"] == "edited" and body["run"]["outcome_source"] == "api"
    shared = _get(api, f"/v1/runs/{loaded.run_id(10)}")
    assert [(o["workflow_id"], o["outcome"]) for o in shared["outcomes"]] == [("wf-shared", "accepted")]


def test_run_detail_unknown_and_malformed(api: httpx.Client) -> None:
    assert api.get(f"/v1/runs/{'0' * 32}").status_code == 404
    response = api.get("/v1/runs/not-a-trace-id")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "run_id"]


def _flatten(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    stack = list(nodes)
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node["children"])
    return out


# -- outliers ----------------------------------------------------------------------------------


def test_outliers_sections(loaded: Loaded, api: httpx.Client) -> None:
    window = _everything(loaded)
    body = _get(api, "/v1/outliers", limit=5, min_runs=1, min_calls=1, **window)
    rollup = _get(
        api, "/v1/rollups", group_by="workflow_type", metrics="cost_usd,runs,cost_per_success_usd", limit=5, **window
    )
    assert body["costliest_workflows"] == rollup["rows"]
    runs = _get(api, "/v1/runs", limit=5, **window)["runs"]
    assert body["costliest_runs"] == runs
    rates = body["highest_retry_rates"]
    assert rates and all(r["agent"] for r in rates)
    assert [r["retry_rate"] for r in rates] == sorted((r["retry_rate"] for r in rates), reverse=True)
    agents = _get(api, "/v1/rollups", group_by="agent", metrics="cost_usd,calls,runs", **window)["rows"]
    assert body["costliest_agents"] == [a for a in agents if a["agent"] and a["calls"] >= 1][:5]
    prompts = body["lowest_acceptance_prompts"]
    assert prompts and [p["acceptance_rate"] for p in prompts] == sorted(p["acceptance_rate"] for p in prompts)
    unsuccessful = body["costliest_unsuccessful_calls"]
    assert unsuccessful
    costs = [Decimal(c["cost_usd"]) for c in unsuccessful]
    assert costs == sorted(costs, reverse=True)
    for call in unsuccessful:
        assert call["reasons"]
        stored = loaded.server.dicts(
            "SELECT call_role, status_code, cost_usd FROM {db}.spans FINAL WHERE trace_id = {t:String} "
            "AND span_id = {s:String}",
            t=call["run_id"],
            s=call["span_id"],
        )[0]
        assert stored["call_role"] == "call" and Decimal(call["cost_usd"]) == stored["cost_usd"]
        assert ("call_failed" in call["reasons"]) == (stored["status_code"] == "ERROR")
    # Exhaustive: no costlier qualifying call was left out.
    qualifying = loaded.server.rows(
        "SELECT max(s.cost_usd) FROM {db}.spans AS s FINAL INNER JOIN "
        "(SELECT trace_id, status_code AS root_status FROM {db}.spans FINAL WHERE parent_span_id = '') AS r "
        "ON r.trace_id = s.trace_id WHERE s.call_role = 'call' AND (s.status_code = 'ERROR' OR r.root_status = 'ERROR')"
    )[0][0]
    assert costs[0] >= qualifying


def test_outliers_cost_jumps_agree_with_rollups(loaded: Loaded, api: httpx.Client) -> None:
    window = _everything(loaded)
    body = _get(
        api, "/v1/outliers", bucket="hour", baseline_buckets=6, jump_factor=1.0, min_runs=1, limit=100, **window
    )
    jumps = body["cost_jumps"]
    assert jumps, "with jump_factor 1 some bucket is at or above its baseline"
    assert [j["ratio"] for j in jumps] == sorted((j["ratio"] for j in jumps), reverse=True)
    for jump in jumps[:4]:
        t = _ns(jump["bucket"])
        where = {
            "filter.workflow_type": jump["workflow_type"],
            "metrics": "cost_usd,successful_runs,cost_per_success_usd",
        }
        now = _get(api, "/v1/rollups", **where, **{"from": _iso(t), "to": _iso(t + HOUR)})["rows"][0]
        before = _get(api, "/v1/rollups", **where, **{"from": _iso(t - 6 * HOUR), "to": _iso(t)})["rows"][0]
        assert jump["cost_per_success_usd"] == now["cost_per_success_usd"]
        assert jump["baseline_cost_per_success_usd"] == before["cost_per_success_usd"]
        assert jump["ratio"] >= 1.0


# -- unpriced, rate cards ----------------------------------------------------------------------


def test_unpriced_lists_models_with_token_volume(loaded: Loaded, api: httpx.Client) -> None:
    body = _get(api, "/v1/unpriced", **_everything(loaded))
    rows = {(r["provider"], r["model"], r["reason"]): r for r in body["unpriced"]}
    acme = rows[("acme", "acme-llm-1", "unknown_provider")]
    want = loaded.server.dicts(
        "SELECT count() AS calls, sum(input_tokens) AS input, uniqExact(trace_id) AS runs FROM {db}.spans FINAL "
        "WHERE call_role = 'call' AND model = 'acme-llm-1'"
    )[0]
    assert (acme["calls"], acme["input_tokens"], acme["runs"]) == (want["calls"], want["input"], want["runs"])
    total = _get(api, "/v1/rollups", metrics="unpriced_calls", **_everything(loaded))["rows"][0]["unpriced_calls"]
    assert sum(r["calls"] for r in body["unpriced"]) == total
    assert all(r["reason"] != "no_usage" for r in body["unpriced"])  # a failed call without usage was not billed


def test_rate_cards_default_and_quote(api: httpx.Client) -> None:
    body = _get(api, "/v1/rate-cards", provider="openai", model="gpt-4o-mini")
    assert body["default"]["package"] == "genai-prices" and body["user_card"] is None
    quote = body["quote"]
    assert quote["priced"] and quote["entry"] == "openai/gpt-4o-mini"
    assert quote["rates_usd_per_mtok"]["input_mtok"] == "0.15"
    unknown = _get(api, "/v1/rate-cards", provider="acme", model="acme-llm-1")["quote"]
    assert unknown["priced"] is False and unknown["unpriced_reason"] == "unknown_provider"


def test_rate_cards_user_card(loaded: Loaded, tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(
        "entries:\n"
        "  - id: internal-llm\n    provider: acme\n    model: acme-llm-*\n"
        "    effective_from: 2024-01-01\n    prices: {input: 1.5, output: 6}\n"
        "  - id: openai-discount\n    provider: openai\n    model: '*'\n    discount_pct: 10\n"
    )
    base = loaded.server.app.settings
    client = client_with(loaded, pipeline=False)
    client.app.state.context.settings = base.model_copy(update={"rate_card": card})
    body = client.get("/v1/rate-cards", params={"provider": "acme", "model": "acme-llm-1"}).json()
    assert [e["id"] for e in body["user_card"]["entries"]] == ["internal-llm", "openai-discount"]
    assert body["user_card"]["entries"][0]["prices_usd_per_mtok"] == {"input": "1.5", "output": "6"}
    assert body["user_card"]["entries"][1]["kind"] == "adjustment"
    assert body["quote"]["priced"] and body["quote"]["entry"] == "internal-llm"
    assert body["quote"]["example_cost_usd"]["1k_input_1k_output"] == "0.007500000000000"


# -- outcomes, admin, health -------------------------------------------------------------------


def test_outcome_requests_are_validated(loaded: Loaded, api: httpx.Client) -> None:
    url = f"/v1/runs/{loaded.run_id(5)}/outcome"
    assert api.post(url, json={"outcome": "loved"}).status_code == 422
    assert api.post(url, json={"outcome": "accepted", "extra": 1}).status_code == 422
    assert api.post(url, json={"outcome": "accepted", "recorded_at": "1900-01-01T00:00:00Z"}).status_code == 422
    assert api.post("/v1/runs/xyz/outcome", json={"outcome": "accepted"}).status_code == 422
    read_only = client_with(loaded, pipeline=False)
    response = read_only.post(url, json={"outcome": "accepted"})
    assert response.status_code == 503 and "pipeline" in response.json()["detail"]


def test_rollup_rebuild_restores_the_figures(loaded: Loaded, api: httpx.Client) -> None:
    window = _everything(loaded)
    params = {"group_by": "tenant,model", "metrics": ",".join(METRICS), "limit": 10000, **window}
    before = _get(api, "/v1/rollups", **params)["rows"]
    # Lose some rollup hours and their days' daily rows (what a crash mid-write could leave),
    # then rebuild: the window widens to whole UTC days.
    hour = (loaded.ledger.runs[10].start // HOUR) * HOUR // 10**9
    first_day, end_day = hour - hour % 86400, -(-(hour + 6 * 3600) // 86400) * 86400
    for table, column, start, end in (
        ("rollup_calls_hourly", "hour", hour, hour + 6 * 3600),
        ("rollup_calls_daily", "day", first_day, end_day),
    ):
        loaded.server.store.command(
            f"ALTER TABLE {loaded.server.db}.{table} DELETE WHERE {column} >= toDateTime({start}) "
            f"AND {column} < toDateTime({end}) SETTINGS mutations_sync = 2"
        )
    assert _get(api, "/v1/rollups", **params)["rows"] != before
    response = api.post(
        "/v1/admin/rollups/rebuild",
        json={"from": _iso(hour * 10**9 + 5000), "to": _iso((hour + 5 * 3600) * 10**9 + 1000)},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["hours"] == (end_day - first_day) // 3600
    assert answer["from"] == _iso(first_day * 10**9).replace(".000000000", "")
    assert _get(api, "/v1/rollups", **params)["rows"] == before
    bad = api.post("/v1/admin/rollups/rebuild", json={"from": window["to"], "to": window["from"]})
    assert bad.status_code == 422


def test_health_readiness_and_metrics(api: httpx.Client) -> None:
    assert _get(api, "/healthz") == {"status": "ok"}
    ready = _get(api, "/readyz")
    assert ready["status"] == "ready" and ready["checks"]["store"] == "ok"
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and "otelspend_spans_written_total" in metrics.text
