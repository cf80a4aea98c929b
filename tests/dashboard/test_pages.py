"""The dashboard in headless Chromium against a server loaded by ``otelspend demo``: every
page loads with data, without console errors or requests leaving the server, and shows
the same figures as the REST API; the overview's screenshot is left for the README."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests import canary
from tests.dashboard.conftest import (
    COOKIE,
    DEMO_RUNS,
    REPO,
    TOKEN,
    VIEW_WORKFLOW,
    Loaded,
    Tab,
    Watch,
    new_context,
)

SCREENSHOT = REPO / "tests" / "artifacts" / "dashboard-overview.png"
README_IMAGE = REPO / "docs" / "img" / "dashboard-overview.png"
PAGES = ["/", "/workflows", "/tenants", "/agents", "/outliers", "/unpriced", "/cost-to-serve", "/runs"]


def window_of(page: Page) -> dict[str, str]:
    """The ``[from, to)`` the page says it covers."""
    return {
        "from": page.get_attribute("#window-from", "datetime") or "",
        "to": page.get_attribute("#window-to", "datetime") or "",
    }


def rollup(api: httpx.Client, window: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/rollups", params={**window, "limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def money_cells(page: Page, table: str, column: int) -> dict[str, str]:
    """``data-key`` -> the exact money value in a column (``unpriced`` where the page says so)."""
    values: dict[str, str] = {}
    for row in page.locator(f"{table} tbody tr").all():
        cell = row.locator("td, th").nth(column)
        data = cell.locator("data.usd")
        values[row.get_attribute("data-key") or ""] = (
            data.first.get_attribute("value") or "" if data.count() else cell.inner_text().strip()
        )
    return values


def expected_money(row: dict[str, Any], metric: str = "cost_usd") -> str:
    """What the page must show for an API row: the exact value, or ``unpriced`` where nothing was priced."""
    if row.get("unpriced_calls") and Decimal(row[metric]) == 0:
        return "unpriced"
    return row[metric]


# -- access ------------------------------------------------------------------------------------


def test_pages_need_the_api_token_and_the_sign_in_form_sets_it(browser: Browser, loaded: Loaded):
    context = new_context(browser, loaded, signed_in=False)
    page = context.new_page()
    try:
        for path in PAGES:
            page.goto(path)
            assert urlparse(page.url).path == "/login", path
        page.goto("/workflows?range=24h")
        assert parse_qs(urlparse(page.url).query)["next"] == ["/workflows?range=24h"]

        page.fill("#token", canary.WRONG_TOKEN)
        with page.expect_navigation():
            page.click("form[action='/login'] button")
        assert page.locator("#login-error").is_visible()
        canary.check_text(page.content(), "sign-in page after a refused token")
        assert not [c for c in context.cookies() if c["name"] == COOKIE]

        watch = Watch(loaded.url)
        watch.attach(page)
        page.fill("#token", TOKEN)
        with page.expect_navigation():
            page.click("form[action='/login'] button")
        assert urlparse(page.url).path == "/workflows" and "range=24h" in page.url
        assert page.locator("h1").inner_text() == "Workflows"
        watch.assert_clean()
        (cookie,) = [c for c in context.cookies() if c["name"] == COOKIE]
        assert cookie["httpOnly"] and cookie["value"] == TOKEN
        # The same protection as the API: the cookie opens the API too, and nothing else does.
        assert page.request.get("/v1/rollups").status == 200
        assert httpx.get(f"{loaded.url}/v1/rollups").status_code == 401

        with page.expect_navigation():
            page.click("form.signout button")
        assert urlparse(page.url).path == "/login"
        assert not [c for c in context.cookies() if c["name"] == COOKIE]
        page.goto("/")
        assert urlparse(page.url).path == "/login"
    finally:
        context.close()


def test_sign_in_never_redirects_off_site_and_pages_accept_a_bearer_header(loaded: Loaded):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = httpx.post(f"{loaded.url}/login", data={"token": TOKEN, "next": target})
        assert response.status_code == 303 and response.headers["location"] == "/", target
    page = httpx.get(f"{loaded.url}/tenants", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and "Tenants &amp; features" in page.text
    assert (
        httpx.get(f"{loaded.url}/tenants", headers={"Authorization": f"Bearer {canary.WRONG_TOKEN}"}).status_code == 303
    )


# -- every page ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/?range=24h", "/workflows?range=30d"])
def test_page_loads_with_data_no_errors_no_script_nothing_from_elsewhere(tab: Tab, path: str):
    response = tab.open(path)
    html = response.text()
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html, "an absolute URL in the page"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    page = tab.page
    assert page.locator("h1").count() == 1
    assert page.locator("table.data tbody tr").count() > 0, "a table with rows"
    assert page.locator(".empty").count() == 0, [e.inner_text() for e in page.locator(".empty").all()]
    for chart in page.locator("svg.chart").all():
        assert chart.get_attribute("role") == "img" and chart.locator("title").count() > 0
    if path.split("?")[0] in ("/", "/workflows", "/tenants", "/agents"):
        assert page.locator("svg.chart").count() >= 2
    for table in page.locator("table.data").all():
        assert table.locator("thead th[scope=col]").count() > 0, "column headers"


def test_stylesheet_and_icon_are_local_files_without_external_references(tab: Tab):
    tab.open("/")
    for path in ("/static/dashboard.css", "/static/favicon.svg"):
        response = tab.page.request.get(path)
        assert response.status == 200
        text = response.text().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace, not a fetch
        assert "http://" not in text and "https://" not in text and "@import" not in text, path


# -- figures equal the API's ------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_overview_equals_the_api_and_leaves_a_screenshot(tab: Tab, loaded: Loaded):
    tab.open("/")
    page = tab.page
    window = window_of(page)
    start = dt.datetime.fromisoformat(window["from"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(window["to"].replace("Z", "+00:00"))
    assert end - start == dt.timedelta(days=7) and end.minute == end.second == 0

    with loaded.api() as api:
        metrics = "cost_usd,runs,success_rate,cost_per_success_usd,unpriced_calls,calls"
        (total,) = rollup(api, window, metrics=metrics)
        workflows = rollup(api, window, group_by="workflow_type", metrics="cost_usd,unpriced_calls")
    assert total["runs"] == DEMO_RUNS + 1  # the demo's runs and the view trace, all in the default week
    assert page.get_attribute("#kpi-spend", "value") == total["cost_usd"]
    assert Decimal(total["cost_usd"]) > 0
    assert page.locator("#kpi-spend").inner_text() == _usd_text(total["cost_usd"])
    assert page.get_attribute("#kpi-runs", "value") == str(total["runs"])
    assert float(page.get_attribute("#kpi-success-rate", "value") or "nan") == pytest.approx(total["success_rate"])
    assert page.get_attribute("#kpi-cost-per-success", "value") == total["cost_per_success_usd"]
    assert page.get_attribute("#kpi-unpriced", "value") == str(total["unpriced_calls"]) != "0"

    # The trend sums to the total, bucket by bucket from the same query layer.
    trend = [Decimal(v) for v in page.locator("#trend-table tbody tr td:nth-child(2) data").evaluate_all(
        "cells => cells.map(c => c.getAttribute('value'))"
    )]  # fmt: skip
    assert sum(trend) == Decimal(total["cost_usd"])
    buckets = page.locator("#chart-spend rect.hover").count()
    assert buckets in (7 * 24, 7 * 24 + 1)  # whole hours of the week (one more when it starts mid-hour)

    # Top workflows: the API's ranking, linked to the runs of each workflow.
    bars = page.locator("#chart-top-workflows a")
    assert bars.count() == min(8, len(workflows))
    labels = [bar.locator("title").text_content().split(": ")[0] for bar in bars.all()]
    assert labels == [row["workflow_type"] for row in workflows[: bars.count()]]
    assert "filter.workflow_type=" in (bars.first.get_attribute("href") or "")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    width, height = _png_size(SCREENSHOT.read_bytes())
    assert width == 1280 and height >= 900
    if os.environ.get("OTELSPEND_UPDATE_SCREENSHOT"):  # make screenshot: refresh the README's image
        shutil.copyfile(SCREENSHOT, README_IMAGE)


def _usd_text(value: str) -> str:
    from otelspend.api.display import usd

    return usd(value)


@pytest.mark.parametrize(
    ("path", "table", "dimension", "column", "metrics"),
    [
        pytest.param("/workflows", "#workflows-table", "workflow_type", 1, "cost_usd,unpriced_calls", id="workflows"),
        pytest.param("/tenants", "#tenants-table", "tenant", 1, "cost_usd,unpriced_calls", id="tenants"),
        pytest.param("/tenants", "#features-table", "feature", 1, "cost_usd,unpriced_calls", id="features"),
        pytest.param("/agents", "#agents-table", "agent", 1, "cost_usd,unpriced_calls", id="agents"),
    ],
)
def test_tables_show_the_api_figures(tab: Tab, loaded: Loaded, path, table, dimension, column, metrics):
    tab.open(path)
    window = window_of(tab.page)
    with loaded.api() as api:
        rows = [r for r in rollup(api, window, group_by=dimension, metrics=metrics) if r[dimension]]
    shown = money_cells(tab.page, table, column)
    assert shown == {row[dimension]: expected_money(row) for row in rows}
    assert len(shown) >= 2


def test_tools_and_models_tables_equal_the_api(tab: Tab, loaded: Loaded):
    tab.open("/agents")
    window = window_of(tab.page)
    with loaded.api() as api:
        tools = rollup(api, window, group_by="tool", metrics="tool_calls", order_by="tool_calls")
        models = rollup(api, window, group_by="provider,model", metrics="cost_usd,unpriced_calls")
    shown_tools = {
        row.get_attribute("data-key"): int(row.locator("td data").first.get_attribute("value") or -1)
        for row in tab.page.locator("#tools-table tbody tr").all()
    }
    assert shown_tools == {r["tool"]: r["tool_calls"] for r in tools if r["tool"]}
    shown_models = money_cells(tab.page, "#models-table", 2)
    assert shown_models == {f"{r['provider']}/{r['model']}": expected_money(r) for r in models if r["model"]}
    assert "unpriced" in shown_models.values()  # the self-hosted model, never $0


def test_unpriced_page_lists_the_self_hosted_model_as_the_api_does(tab: Tab, loaded: Loaded):
    tab.open("/unpriced")
    window = window_of(tab.page)
    with loaded.api() as api:
        rows = api.get("/v1/unpriced", params=window).json()["unpriced"]
    assert rows and rows[0]["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    for row in rows:
        shown = tab.page.locator(f'#unpriced-table tr[data-key="{row["provider"]}/{row["model"]}/{row["reason"]}"]')
        assert shown.locator("td:nth-child(4) data").get_attribute("value") == str(row["calls"])
    assert tab.page.locator("#unpriced-table tbody tr").count() == len(rows)
    with tab.page.expect_navigation():
        tab.page.locator("#unpriced-table tbody tr").first.locator("a.mono").click()
    assert urlparse(tab.page.url).path == f"/runs/{rows[0]['sample_run_id']}"
    assert "unpriced" in tab.page.locator("#span-tree").inner_text()


def test_outliers_page_shows_the_api_sections(tab: Tab, loaded: Loaded):
    tab.open("/outliers")
    window = window_of(tab.page)
    with loaded.api() as api:
        found = api.get("/v1/outliers", params=window).json()

    def keys(table: str) -> list[str]:
        return [row.get_attribute("data-key") or "" for row in tab.page.locator(f"{table} tbody tr").all()]

    assert keys("#costliest-runs") == [r["run_id"] for r in found["costliest_runs"]]
    assert keys("#costliest-workflows") == [r["workflow_type"] for r in found["costliest_workflows"]]
    assert keys("#costliest-agents") == [r["agent"] for r in found["costliest_agents"]]
    assert keys("#costliest-unsuccessful-calls") == [
        f"{r['run_id']}/{r['span_id']}" for r in found["costliest_unsuccessful_calls"]
    ]
    for section, table in (("cost_jumps", "#cost-jumps"), ("highest_retry_rates", "#highest-retry-rates"),
                           ("lowest_acceptance_prompts", "#lowest-acceptance-prompts")):  # fmt: skip
        assert tab.page.locator(f"{table} tbody tr").count() == len(found[section]), section
    assert found["costliest_runs"] and found["costliest_unsuccessful_calls"]


# -- runs ---------------------------------------------------------------------------------------


def _flatten(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        out.append(node)
        out.extend(_flatten(node["children"]))
    return out


def test_runs_list_links_to_the_run_page_with_every_span(tab: Tab, loaded: Loaded):
    tab.open("/runs")
    window = window_of(tab.page)
    with loaded.api() as api:
        listed = api.get("/v1/runs", params={**window, "limit": 50}).json()["runs"]
        shown = [r.get_attribute("data-key") for r in tab.page.locator("#runs-table tbody tr").all()]
        assert shown == [r["run_id"] for r in listed]
        assert tab.page.locator("a[rel=next]").count() == 1  # more than one page of runs

        tab.watch.reset()
        with tab.page.expect_navigation():
            tab.page.locator("#runs-table tbody tr a").first.click()
        run_id = listed[0]["run_id"]
        assert urlparse(tab.page.url).path == f"/runs/{run_id}"
        tab.watch.assert_clean()
        detail = api.get(f"/v1/runs/{run_id}").json()

    spans = _flatten(detail["spans"])
    rows = tab.page.locator("#span-tree tbody tr")
    assert [r.get_attribute("data-span-id") for r in rows.all()] == [s["span_id"] for s in spans]
    assert len(spans) == detail["run"]["spans"] > 3
    assert tab.page.get_attribute("#run-cost", "value") == detail["run"]["cost_usd"]
    calls = [s for s in spans if s["call_role"] == "call" and s["cost_usd"] is not None]
    for span in calls:
        cost = tab.page.locator(f"#span-{span['span_id']} td.cost data").get_attribute("value")
        assert cost == span["cost_usd"]
    assert sum(Decimal(s["cost_usd"]) for s in calls) == Decimal(detail["run"]["cost_usd"])
    # Indentation follows the tree: children one level deeper than their parent.
    depth = {s["span_id"]: 0 for s in detail["spans"]}
    for span in spans:
        for child in span["children"]:
            depth[child["span_id"]] = depth[span["span_id"]] + 1
    for span in spans:
        indent = tab.page.locator(f"#span-{span['span_id']} th").get_attribute("class") or ""
        assert f"d{depth[span['span_id']]}" in indent.split()
    text = tab.page.locator("#run-attribution").inner_text()
    for key in ("workflow_type", "tenant", "customer", "feature"):
        assert detail["run"][key] in text


def test_run_page_greys_a_view_and_counts_the_call_once(tab: Tab, loaded: Loaded):
    tab.open(f"/runs/{loaded.view_run_id}")
    with loaded.api() as api:
        detail = api.get(f"/v1/runs/{loaded.view_run_id}").json()
    assert detail["run"]["workflow_type"] == VIEW_WORKFLOW
    roles = {s["span_id"]: s["call_role"] for s in _flatten(detail["spans"])}
    assert sorted(roles.values()) == ["call", "other", "view"]
    (view,) = [sid for sid, role in roles.items() if role == "view"]
    (call,) = [sid for sid, role in roles.items() if role == "call"]
    row = tab.page.locator(f"#span-{view}")
    assert "uncounted" in (row.get_attribute("class") or "")
    assert "not counted" in row.inner_text()
    assert "uncounted" not in (tab.page.locator(f"#span-{call}").get_attribute("class") or "")
    assert tab.page.get_attribute("#run-cost", "value") == detail["run"]["cost_usd"]
    assert tab.page.locator(f"#span-{call} td.cost data").get_attribute("value") == detail["run"]["cost_usd"]
    assert tab.page.get_attribute("#run-calls", "value") == "1"


def test_runs_filter_from_a_chart_bar_and_sort(tab: Tab, loaded: Loaded):
    tab.open("/workflows")
    tab.watch.reset()
    with tab.page.expect_navigation():
        tab.page.locator("#chart-workflow-cost a").first.click()
    tab.watch.assert_clean()
    query = parse_qs(urlparse(tab.page.url).query)
    (workflow,) = query["filter.workflow_type"]
    assert query["range"] == ["7d"]
    assert tab.page.locator("#active-filters").inner_text().count(workflow) == 1
    window = window_of(tab.page)
    with loaded.api() as api:
        expected = api.get(
            "/v1/runs", params={**window, "filter.workflow_type": workflow, "order_by": "duration_ms", "limit": 50}
        ).json()["runs"]
    with tab.page.expect_navigation():
        tab.page.locator("nav.orders a", has_text="duration").click()
    assert parse_qs(urlparse(tab.page.url).query)["filter.workflow_type"] == [workflow]
    shown = [r.get_attribute("data-key") for r in tab.page.locator("#runs-table tbody tr").all()]
    assert shown == [r["run_id"] for r in expected] and shown


def test_range_selector_moves_the_window_and_the_figures(tab: Tab, loaded: Loaded):
    tab.open("/")
    week = window_of(tab.page)
    for key, days in (("24h", 1), ("30d", 30)):
        tab.watch.reset()
        with tab.page.expect_navigation():
            tab.page.locator(f"nav.ranges a[data-range='{key}']").click()
        tab.watch.assert_clean()
        assert parse_qs(urlparse(tab.page.url).query)["range"] == [key]
        window = window_of(tab.page)
        start = dt.datetime.fromisoformat(window["from"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(window["to"].replace("Z", "+00:00"))
        week_end = dt.datetime.fromisoformat(week["to"].replace("Z", "+00:00"))
        assert end - start == dt.timedelta(days=days)
        assert end - week_end in (dt.timedelta(0), dt.timedelta(hours=1))  # the same hour, unless it just turned
        with loaded.api() as api:
            (total,) = rollup(api, window, metrics="cost_usd,runs")
        assert tab.page.get_attribute("#kpi-spend", "value") == total["cost_usd"]
        assert tab.page.get_attribute("#kpi-runs", "value") == str(total["runs"])
        # The navigation keeps the range.
        assert all(f"range={key}" in (a.get_attribute("href") or "") for a in tab.page.locator("header nav a").all())


def test_outcomes_posted_over_the_api_show_on_their_run(tab: Tab, loaded: Loaded):
    assert len(loaded.reviewed) == 5
    tab.open(f"/runs/{loaded.reviewed[0]}")
    assert "escalated" in tab.page.locator("#run-outcome").inner_text()
    history = tab.page.locator("#outcome-history tbody tr")
    assert history.count() == 1 and "too expensive" in history.inner_text()
