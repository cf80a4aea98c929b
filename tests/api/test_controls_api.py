"""The decision endpoint's fast path keeps the API's contract: bearer token or the dashboard
cookie, only the declared parameters, bounded values; the OpenAPI documents the controls."""

from __future__ import annotations

import httpx
import pytest

TOKEN = "controls-api-token-0123"


@pytest.fixture(scope="module")
def secured(chdb_path, tmp_path_factory):
    import uuid

    from otelspend.app import OtelSpend
    from tests.conftest import Running, make_settings

    settings = make_settings(
        chdb_path, tmp_path_factory.mktemp("controls-api"), f"t_{uuid.uuid4().hex[:12]}", api={"tokens": [TOKEN]}
    )
    app = OtelSpend(settings)
    app.start()
    try:
        yield Running(app)
    finally:
        app.stop()


@pytest.mark.parametrize(
    ("headers", "cookies", "status"),
    [
        pytest.param({}, {}, 401, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong-token-0000"}, {}, 401, id="wrong-token"),
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, {}, 200, id="bearer"),
        pytest.param({"Authorization": f"bearer {TOKEN}"}, {}, 200, id="scheme-case"),
        pytest.param({}, {"otelspend_token": TOKEN}, 200, id="dashboard-cookie"),
    ],
)
def test_the_check_needs_the_api_token(secured, headers, cookies, status):
    response = httpx.get(f"{secured.api_url}/v1/controls/check", params={"tenant": "acme"}, headers=headers,
                         cookies=cookies)  # fmt: skip
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"action": "allow", "reasons": []}
    else:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"tenat": "acme"}, "tenat: unknown query parameter (allowed: customer, environment", id="typo"),
        pytest.param({"model": "m" * 300}, "model: longer than 256 characters", id="too-long"),
    ],
)
def test_the_check_refuses_what_it_does_not_declare(secured, params, message):
    response = httpx.get(f"{secured.api_url}/v1/controls/check", params=params,
                         headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 422 and message in response.json()["detail"][0]["msg"]


def test_the_openapi_documents_the_controls(secured):
    paths = httpx.get(f"{secured.api_url}/openapi.json").json()["paths"]
    check = paths["/v1/controls/check"]["get"]
    assert {p["name"] for p in check["parameters"]} == {
        "tenant", "customer", "feature", "workflow_type", "environment", "team", "user", "model", "provider", "run_id",
    }  # fmt: skip
    assert {"/v1/budgets", "/v1/budgets/{budget_id}", "/v1/alerts", "/v1/alerts/{event_id}",
            "/v1/controls/runs/{run_id}", "/v1/controls/status"} <= set(paths)  # fmt: skip
    assert set(paths["/v1/budgets/{budget_id}"]) == {"get", "put", "delete"}
