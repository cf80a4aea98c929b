"""The dashboard's HTTP side without a browser: an empty ledger (every page says so, no
$0 invented), auth off, bad parameters, unknown runs, the static files and the OpenAPI."""

from __future__ import annotations

import uuid
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

PAGES = ["/", "/workflows", "/tenants", "/agents", "/outliers", "/unpriced", "/runs"]


@pytest.fixture(scope="module")
def client(chdb_path: Path) -> Iterator[TestClient]:
    """A read-only app over an empty, migrated database of its own, no API tokens."""
    store = Store(f"chdb://{chdb_path}", f"t_{uuid.uuid4().hex[:12]}")
    migrate(store)
    context = ApiContext(settings=load_settings(environ={}), store=store, metrics=Metrics())
    try:
        with TestClient(create_app(context)) as test_client:
            yield test_client
    finally:
        store.close()


@pytest.mark.parametrize("path", PAGES)
def test_empty_ledger_pages_say_there_is_nothing(client: TestClient, path: str):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert 'class="empty"' in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "Sign out" not in html  # no auth configured: nothing to sign out of
    if path == "/":
        assert 'id="kpi-spend" value="0.000000000000000"' in html and 'id="kpi-runs" value="0"' in html
        assert '<span class="none" id="kpi-cost-per-success"' in html  # no successful run: no ratio


def test_without_tokens_the_sign_in_page_sends_you_on(client: TestClient):
    response = client.get("/login?next=/agents", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/agents")


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        pytest.param("/?range=1y", 400, "range: unknown range", id="range"),
        pytest.param("/runs?order_by=price", 400, "order_by: unknown order", id="order-by"),
        pytest.param("/runs?order=up", 400, "order: unknown order", id="order"),
        pytest.param("/runs?offset=-5", 400, "offset", id="offset"),
        pytest.param("/runs?offset=100000000", 400, "offset", id="offset-range"),
        pytest.param("/runs?filter.colour=red", 400, "unknown dimension", id="filter"),
        pytest.param("/runs/0123456789abcdef0123456789abcdef", 404, "No run", id="unknown-run"),
        pytest.param("/runs/not-a-run-id", 404, "No run", id="bad-run-id"),
    ],
)
def test_bad_parameters_are_pages_that_say_what_is_wrong(client: TestClient, path: str, status: int, says: str):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert says in response.text


def test_static_files_are_a_fixed_list(client: TestClient):
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/favicon.svg").headers["content-type"] == "image/svg+xml"
    for name in ("missing.css", "..%2Fmain.py", "%2E%2E%2Froutes%2Fdashboard.py"):
        assert client.get(f"/static/{name}").status_code == 404, name


def test_dashboard_pages_stay_out_of_the_openapi(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/rollups" in paths
    assert not {"/", "/workflows", "/runs", "/runs/{run_id}", "/login", "/logout", "/static/{name}"} & set(paths)


def test_sign_in_cookie_is_http_only_lax_and_secure_over_https(client: TestClient):
    settings = load_settings({"api": {"tokens": ["a-long-enough-token"]}}, environ={})
    store = client.app.state.context.store
    app = create_app(ApiContext(settings=settings, store=store, metrics=Metrics()))
    with TestClient(app, base_url="https://dashboard.example") as secure:
        assert secure.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
        refused = secure.post("/login", data={"token": "", "next": "/"}, follow_redirects=False)
        assert refused.status_code == 401 and "set-cookie" not in refused.headers
        form = {"token": "a-long-enough-token", "next": "/agents"}
        response = secure.post("/login", data=form, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/agents")
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("otelspend_token=a-long-enough-token;")
        assert all(flag in cookie for flag in ("httponly", "samesite=lax", "secure", "path=/"))
