"""Every Grafana panel's SQL through the SQL endpoint with two real clients
(clickhouse-connect and @clickhouse/client): both return what the store returns for the
same SQL, and the figures equal the REST API's."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.ecosystem.grafana_macros import TimeRange, expand
from tests.ecosystem.test_grafana_dashboards import _all_panels
from tests.sqlhttp.conftest import PASSWORD, Loaded
from tests.sqlhttp.node_client import run_node

PANELS = _all_panels()


def _window(loaded: Loaded) -> TimeRange:
    first_s = min(p.root.start_ns for p in loaded.plans) // 10**9
    return TimeRange(first_s - 3600, loaded.now_ns // 10**9 + 3600, 3600)


def _rfc3339(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sql(loaded: Loaded, panel: dict[str, Any]) -> str:
    return expand(panel["targets"][0]["rawSql"], _window(loaded), {"database": loaded.server.db})


@pytest.fixture(scope="module")
def through_node(loaded: Loaded) -> dict[str, list[dict[str, Any]]]:
    """Every panel through the Node client in one process (JSONEachRow, gzip responses)."""
    queries = [{"query": _sql(loaded, panel), "format": "JSONEachRow"} for _, panel in PANELS]
    answer = run_node(loaded.server.sql_url, "otelspend", PASSWORD, queries, compression=True)
    out = {}
    for (_, panel), result in zip(PANELS, answer["results"], strict=True):
        assert "error" not in result, (panel["title"], result)
        out[panel["title"]] = result["rows"]
    return out


def _plain(value: Any) -> Any:
    """A value as JSON carries it (what the Node client sees)."""
    if isinstance(value, dt.datetime):
        # DateTime64(9) has nanoseconds in JSON, microseconds in Python: compare the prefix.
        return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}


def _canonical(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: [(k, repr(_plain(v))) for k, v in sorted(r.items())])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str) and len(b) >= 19 and b[4] == "-" and b[10] == " ":
        return a.startswith(b)
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize(("dashboard", "panel"), PANELS, ids=lambda v: v if isinstance(v, str) else v["title"])
def test_panel_through_both_clients_equals_the_store(loaded, cc, through_node, dashboard, panel):
    sql = _sql(loaded, panel)
    direct = loaded.server.store.dicts(sql)
    assert direct, f"{panel['title']}: no rows on demo data"
    result = cc.query(sql)
    via_cc = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    # Rows tied on the ORDER BY key may come in any order: compare in a canonical order.
    assert _canonical(via_cc) == _canonical(direct)
    via_node = through_node[panel["title"]]
    assert len(via_node) == len(direct)
    for mine, theirs in zip(_canonical(via_node), _canonical([_plain_row(r) for r in direct]), strict=True):
        assert set(mine) == set(theirs)
        for key, value in theirs.items():
            assert _same(mine[key], value), (panel["title"], key, mine[key], value)


# -- the same figures from the REST API --------------------------------------------------------


def _rollup(loaded: Loaded, group_by: list[str], metrics: list[str]) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"metrics": ",".join(metrics), "limit": 10000, **_rest_window(loaded)}
    if group_by:
        params["group_by"] = ",".join(group_by)
    return loaded.rest("/v1/rollups", **params)["rows"]


def _rest_window(loaded: Loaded) -> dict[str, str]:
    window = _window(loaded)
    return {"from": _rfc3339(window.from_s), "to": _rfc3339(window.to_s)}


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _check_rows(panel_rows, rest_rows, keys: dict[str, str], values: dict[str, str]) -> None:
    """Each panel row equals the REST row of the same key on every mapped column."""
    rest = {tuple(r[k] for k in keys.values()): r for r in rest_rows}
    for row in panel_rows:
        key = tuple(row[k] for k in keys)
        assert key in rest, (key, sorted(rest)[:5])
        for column, metric in values.items():
            mine, theirs = _num(row[column]), _num(rest[key][metric])
            if theirs is None or mine is None or (isinstance(mine, float) and math.isnan(mine)):
                assert theirs is None and (mine is None or math.isnan(mine)), (key, column, mine, theirs)
            else:
                assert math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9), (key, column, mine, theirs)


def _totals(rows, key: str, value: str) -> dict[Any, float]:
    out: dict[Any, float] = Counter()
    for row in rows:
        out[row[key]] += float(row[value])
    return dict(out)


Keep = Callable[[dict[str, Any]], bool]


def _rest_totals(rows, key: str, metric: str, keep: Keep = lambda r: True) -> dict[Any, float]:
    return {r[key]: float(r[metric]) for r in rows if keep(r)}


def _close_maps(a: dict[Any, float], b: dict[Any, float]) -> None:
    assert set(a) == set(b), (sorted(a), sorted(b))
    for k in a:
        assert math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9), (k, a[k], b[k])


def _scalar(metric: str, column: str):
    def check(loaded, rows):
        (total,) = _rollup(loaded, [], [metric])
        assert math.isclose(float(rows[0][column]), float(total[metric]), rel_tol=1e-9)

    return check


def _grouped(group_by: list[str], keys: dict[str, str], values: dict[str, str]):
    def check(loaded, rows):
        _check_rows(rows, _rollup(loaded, group_by, sorted(set(values.values()))), keys, values)
        assert rows

    return check


def _over_time(dimension: str, column: str, metric: str, keep: Keep = lambda r: True):
    def check(loaded, rows):
        rest = _rollup(loaded, [dimension], [metric, "calls", "runs"])
        mine = {k: v for k, v in _totals(rows, dimension, column).items() if v}
        theirs = {k: v for k, v in _rest_totals(rest, dimension, metric, keep).items() if v}
        _close_maps(mine, theirs)

    return check


def _agent_spend(loaded, rows):
    rest = _rollup(loaded, ["agent", "model"], ["cost_usd", "calls"])
    spend, calls = Counter(), Counter()
    for r in rest:
        if r["agent"] and r["model"]:
            spend[r["agent"]] += float(r["cost_usd"])
            calls[r["agent"]] += r["calls"]
    assert {r["agent"] for r in rows} == {a for a, n in calls.items() if n}
    for row in rows:
        assert math.isclose(row["spend_usd"], spend[row["agent"]], rel_tol=1e-9)
        assert row["call_count"] == calls[row["agent"]]


def _most_expensive_runs(loaded, rows):
    rest = loaded.rest("/v1/runs", order_by="cost_usd", limit=20, **_rest_window(loaded))["runs"]
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in rest]
    assert all(
        math.isclose(a["cost_usd"], float(b["cost_usd"]), rel_tol=1e-12) for a, b in zip(rows, rest, strict=True)
    )


def _unpriced(loaded) -> list[dict[str, Any]]:
    return loaded.rest("/v1/unpriced", **_rest_window(loaded))["unpriced"]


def _unpriced_count(column: str):
    def check(loaded, rows):
        assert sum(r[column] for r in rows) == sum(r["calls"] for r in _unpriced(loaded)) > 0

    return check


def _unpriced_by_model(loaded, rows):
    rest = {(r["provider"], r["model"], r["reason"]): r for r in _unpriced(loaded)}
    assert {(r["provider"], r["model"], r["reason"]) for r in rows} == set(rest)
    for row in rows:
        theirs = rest[(row["provider"], row["model"], row["reason"])]
        assert (row["call_count"], row["input_tokens"], row["output_tokens"]) == (
            theirs["calls"], theirs["input_tokens"], theirs["output_tokens"]
        )  # fmt: skip


def _spend_by_rate_card(loaded, rows):
    (total,) = _rollup(loaded, [], ["cost_usd", "calls", "unpriced_calls"])
    assert math.isclose(sum(r["spend_usd"] for r in rows), float(total["cost_usd"]), rel_tol=1e-9)


def _priced_share(loaded, rows):
    """The REST API has no count of billable calls (its ``calls`` include failed calls that
    reported no usage); the share must still be priced / billable with the REST's unpriced count."""
    (total,) = _rollup(loaded, [], ["calls", "unpriced_calls"])
    share, unpriced = rows[0]["priced_share"], total["unpriced_calls"]
    billable = round(unpriced / (1 - share))
    assert unpriced < billable <= total["calls"]
    assert math.isclose(share, (billable - unpriced) / billable, rel_tol=1e-12)


def _ledger_vs_bill(loaded, rows):
    """Calculated per provider equals the REST spend per provider; the billed columns equal
    GET /v1/reconciliation's (the demo imports no bill: all empty, and so is the API)."""
    rest = _rollup(loaded, ["provider"], ["cost_usd"])
    mine = {k: v for k, v in _totals(rows, "provider", "calculated_usd").items() if v}
    _close_maps(
        mine, {k: v for k, v in _rest_totals(rest, "provider", "cost_usd", lambda r: r["provider"]).items() if v}
    )
    billed = loaded.rest("/v1/reconciliation", group_by="day,provider", **_rest_window(loaded))["rows"]
    assert {(r["day"], r["provider"]): r["billed_usd"] for r in rows if r["billed_usd"] is not None} == {
        (r["day"], r["provider"]): float(r["billed_usd"]) for r in billed
    }
    assert all((r["billed_usd"] is None) == (r["confidence"] == "") for r in rows)


RUN_VALUES = {"run_count": "runs", "spend_usd": "cost_usd"}
PER_SUCCESS = {**RUN_VALUES, "cost_per_success_usd": "cost_per_success_usd"}


def _alerts_by_type(loaded, rows):
    rest = loaded.rest("/v1/alerts", status="firing", limit=1000, **_rest_window(loaded))["alerts"]
    assert rows and len(rest) < 1000  # the loaded runs include retry loops: alerts to compare
    _close_maps(_totals(rows, "type", "alert_count"), dict(Counter(alert["type"] for alert in rest)))


REST_CHECKS: dict[str, Callable[[Loaded, list[dict[str, Any]]], None]] = {
    "Spend": _scalar("cost_usd", "spend_usd"),
    "Runs": _scalar("runs", "run_count"),
    "Success rate": _scalar("success_rate", "success_rate"),
    "Cost per successful run": _scalar("cost_per_success_usd", "cost_per_success_usd"),
    "Unpriced calls": _unpriced_count("unpriced_calls"),
    "Spend by model": _over_time("model", "spend_usd", "cost_usd", lambda r: r["model"] != ""),
    "Spend by provider": _over_time("provider", "spend_usd", "cost_usd", lambda r: r["provider"] != ""),
    "Top workflows by cost": _grouped(["workflow_type"], {"workflow": "workflow_type"}, {"spend_usd": "cost_usd"}),
    "Cost per successful completion by workflow": _grouped(
        ["workflow_type"],
        {"workflow": "workflow_type"},
        {
            **RUN_VALUES,
            "successful": "successful_runs",
            "accepted": "accepted_runs",
            "success_rate": "success_rate",
            "cost_per_success_usd": "cost_per_success_usd",
            "cost_per_accepted_usd": "cost_per_accepted_usd",
        },
    ),
    "Most expensive runs": _most_expensive_runs,
    "Spend by tenant": _grouped(["tenant"], {"tenant": "tenant"}, PER_SUCCESS),
    "Spend by feature": _grouped(["feature"], {"feature": "feature"}, PER_SUCCESS),
    "Spend by tenant over time": _over_time("tenant", "spend_usd", "cost_usd"),
    "Spend by feature over time": _over_time("feature", "spend_usd", "cost_usd"),
    "Tenant × feature": _grouped(["tenant", "feature"], {"tenant": "tenant", "feature": "feature"}, RUN_VALUES),
    "Tenant × model": _grouped(
        ["tenant", "model", "provider"],
        {"tenant": "tenant", "model": "model", "provider": "provider"},
        {**RUN_VALUES, "call_count": "calls"},
    ),
    "Top customers": _grouped(["customer", "tenant"], {"customer": "customer", "tenant": "tenant"}, RUN_VALUES),
    "Retry rate by agent": _grouped(
        ["agent"],
        {"agent": "agent"},
        {**RUN_VALUES, "call_count": "calls", "retry_count": "retries", "retry_rate": "retry_rate"},
    ),
    "Retries by agent": _over_time("agent", "retry_count", "retries", lambda r: r["agent"] != "" and r["calls"] != 0),
    "Agent calls, failures and spend": _agent_spend,
    "Tools: volume, failures, latency": _grouped(
        ["tool"],
        {"tool": "tool"},
        {
            "run_count": "runs",
            "tool_call_count": "tool_calls",
            "failure_rate": "tool_failure_rate",
            "avg_latency_ms": "latency_avg_ms",
            "p95_latency_ms": "latency_p95_ms",
        },
    ),
    "Retry loops by workflow": _grouped(
        ["workflow_type"],
        {"workflow": "workflow_type"},
        {"run_count": "runs", "retry_count": "retries", "call_count": "calls", "retry_rate": "retry_rate"},
    ),
    "Calls priced": _priced_share,
    "Unpriced calls by model": _unpriced_by_model,
    "Unpriced calls over time": _unpriced_count("unpriced_calls"),
    "Calls by rate card": _spend_by_rate_card,
    "Ledger vs bill by provider per day": _ledger_vs_bill,
    "Cost to serve by tenant": _grouped(
        ["tenant"],
        {"tenant": "tenant"},
        {m: m for m in ("direct_cost_usd", "allocated_cost_usd", "loaded_cost_usd", "revenue_usd", "margin_usd")},
    ),
    "Alerts by type": _alerts_by_type,
}


@pytest.mark.parametrize(("dashboard", "panel"), PANELS, ids=lambda v: v if isinstance(v, str) else v["title"])
def test_panel_figures_equal_the_rest_api(loaded, through_node, dashboard, panel):
    REST_CHECKS[panel["title"]](loaded, through_node[panel["title"]])
