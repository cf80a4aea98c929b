"""The "Alerts" and "Budgets" pages in headless Chromium, on the demo-loaded server: clean pages,
the same figures as ``GET /v1/alerts`` and ``GET /v1/budgets``; and without a browser, the
empty and read-only cases."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otelspend.api.deps import ApiContext
from otelspend.api.main import create_app
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.migrate import migrate
from otelspend.metrics import Metrics
from otelspend.settings import load_settings
from tests.dashboard.conftest import Loaded, Tab
from tests.dashboard.test_pages import window_of


def test_the_alerts_page_lists_the_alerts_of_its_period_with_their_deliveries(tab: Tab, loaded: Loaded):
    tab.open("/alerts?range=7d")
    page = tab.page
    window = window_of(page)
    with loaded.api() as api:
        events = api.get("/v1/alerts", params={**window, "limit": 1000}).json()["alerts"]
    firing = [e for e in events if e["status"] == "firing"]
    assert firing, "the demo's retry loops raised alerts"
    assert {e["type"] for e in firing} == {"run.retry_loop"}
    rows = page.locator("#alerts-table tbody tr")
    assert rows.count() == len(events)
    assert [row.get_attribute("data-key") for row in rows.all()] == [e["id"] for e in events]
    assert page.get_attribute("#alerts-firing", "value") == str(len(firing))
    by_type = {
        row.get_attribute("data-key"): int(row.locator("td data").get_attribute("value") or 0)
        for row in page.locator("#alert-types tbody tr").all()
    }
    assert by_type == dict(Counter(e["type"] for e in firing))
    first = page.locator(f"#alerts-table tbody tr[data-key='{firing[0]['id']}']")
    assert first.get_attribute("id") == firing[0]["incident_id"]  # the alert's dashboard link lands on it
    assert first.locator("a[href^='/runs/']").get_attribute("href") == f"/runs/{firing[0]['details']['run_id']}"
    # The suite's canary webhook (tests/canary.py) listens nowhere: the page shows it retrying.
    badge = first.locator(".delivery-retrying").first
    assert badge.inner_text().startswith("default: ") and "Connection" in (badge.get_attribute("title") or "x")
    assert page.locator(".empty").count() == 0 and "<script" not in page.content()


@pytest.fixture(scope="module")
def budgets(loaded: Loaded) -> Iterator[list[str]]:
    with loaded.api() as api:
        created = []
        for body in (
            {"id": "demo-acme-tiny", "filter": {"tenant": "acme"}, "period": "month", "amount_usd": "0.01"},
            {"id": "demo-all-week", "period": "week", "timezone": "Europe/Paris", "amount_usd": "5000"},
            {"id": "demo-tokens", "period": "month", "amount_tokens": 10_000_000, "thresholds": [0.25, 1]},
        ):
            response = api.post("/v1/budgets", json=body)
            assert response.status_code in (201, 409), response.text
            created.append(body["id"])
        yield created


def test_the_budgets_page_shows_spent_amount_and_forecast_as_the_api_does(tab: Tab, loaded: Loaded, budgets):
    tab.open("/budgets")
    page = tab.page
    with loaded.api() as api:
        expected = {b["id"]: b for b in api.get("/v1/budgets").json()["budgets"]}
    assert set(budgets) <= set(expected)
    rows = page.locator("#budgets-table tbody tr")
    assert rows.count() == len(expected)
    for row in rows.all():
        budget = expected[row.get_attribute("data-key") or ""]
        values = [cell.get_attribute("value") for cell in row.locator("td data").all()][:4]
        assert values == [budget[k] for k in ("spent", "amount", "forecast", "remaining")]
        assert row.locator(f".budget-{budget['status']}").count() == 1
        bar = row.locator("svg.budget-bar")
        assert bar.get_attribute("role") == "img" and bar.locator("line.threshold").count() == len(budget["thresholds"])
    assert expected["demo-acme-tiny"]["status"] == "exceeded"  # the demo's acme spent more than a cent
    assert page.locator(".empty").count() == 0


@pytest.fixture(scope="module")
def read_only(chdb_path: Path) -> Iterator[TestClient]:
    store = Store(f"chdb://{chdb_path}", f"t_{uuid.uuid4().hex[:12]}")
    migrate(store)
    context = ApiContext(settings=load_settings(environ={}), store=store, metrics=Metrics())
    try:
        with TestClient(create_app(context)) as client:
            yield client
    finally:
        store.close()


def test_without_alerts_or_controls_the_pages_say_so(read_only: TestClient):
    alerts = read_only.get("/alerts")
    assert alerts.status_code == 200 and "No alert in this period." in alerts.text
    budgets = read_only.get("/budgets")
    assert budgets.status_code == 200 and "need the running server" in budgets.text
    assert read_only.get("/v1/budgets").status_code == 503
    assert read_only.get("/v1/controls/check").status_code == 503
    assert read_only.get("/v1/alerts").json()["alerts"] == []
    assert read_only.get("/v1/alerts/evt_" + "0" * 32).status_code == 404
    assert read_only.get("/v1/alerts", params={"type": "nope"}).status_code == 422


def test_the_alerts_page_renders_every_kind_of_event(read_only: TestClient):
    """Budget, anomaly, policy and resolve events (written to the history as the controls write
    them) render; money shows as dollars, other measures with their unit."""
    import time

    from otelspend.controls.events import (
        BUDGET_THRESHOLD,
        POLICY_VIOLATION,
        TENANT_ANOMALY,
        WORKFLOW_SPIKE,
        Detection,
        Measure,
        event_payload,
        new_id,
        resolved_payload,
        usd,
    )
    from otelspend.controls.store import DeliveryState, alert_row, insert_history

    now = time.time_ns()
    detections = [
        Detection(BUDGET_THRESHOLD, "b", "critical", "Budget acme-daily reached 100 % of 25.000000000000000 USD",
                  {"tenant": "acme"}, usd(25 * 10**15), usd(25 * 10**15), details={"budget_id": "acme-daily"},
                  auto_resolve=False),
        Detection(TENANT_ANOMALY, "t", "warning", "Tenant acme: cost in the last hour 9.00 USD", {"tenant": "acme"},
                  usd(9 * 10**15), expected=usd(2 * 10**15), auto_resolve=False),
        Detection(WORKFLOW_SPIKE, "w", "warning", "Workflow research: cost per successful run up",
                  {"workflow_type": "research"}, Measure("0.500000000000000", "USD per successful run"),
                  expected=Measure("0.100000000000000", "USD per successful run"), auto_resolve=False),
        Detection(POLICY_VIOLATION, "p", "warning", "Model outside policy", {"model": "gpt-4o"},
                  Measure("gpt-4o", "model"), Measure("gpt-4o-mini*", "models"), details={"run_id": "a" * 32}),
    ]  # fmt: skip
    events = [
        event_payload(d, event_id=new_id("evt"), incident_id=new_id("inc"), now_ns=now, node="n", base_url="http://x")
        for d in detections
    ]
    events.append(resolved_payload(events[1], event_id=new_id("evt"), now_ns=now + 10**9, resolution="back in range"))
    store = read_only.app.state.context.store
    states = [DeliveryState(events[0]["id"], "ops", "retrying", 3, 503, "HTTP 503: busy", now + 10**10, None, now)]
    insert_history(store, [alert_row(e, now, now) for e in events], states)
    page = read_only.get("/alerts?range=24h")
    assert page.status_code == 200
    html = page.text
    assert all(f'data-key="{e["id"]}"' in html for e in events)
    assert "$25.00" in html and "$9.00" in html and "$0.50 per successful run" in html and "gpt-4o model" in html
    assert "ops: retrying (3 attempts)" in html and "back in range" in html
    assert "<script" not in html and "http://" not in html
