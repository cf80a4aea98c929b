"""Bearer-token auth: enforced on every /v1 route when tokens are configured, off otherwise;
health, readiness and metrics stay open for infrastructure."""

from __future__ import annotations

import httpx
import pytest

from tests import canary
from tests.api.conftest import Loaded, client_with

TOKEN = canary.OTHER_TOKEN
V1_GETS = [
    "/v1/rollups",
    "/v1/timeseries",
    "/v1/runs",
    "/v1/outliers",
    "/v1/unpriced",
    "/v1/rate-cards",
    "/v1/vocabulary",
]


@pytest.mark.parametrize("path", V1_GETS)
def test_tokens_on_require_a_valid_bearer(loaded: Loaded, path: str) -> None:
    client = client_with(loaded, tokens=[TOKEN, "another-token-two"])  # not the canary every client has
    missing = client.get(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": f"Bearer {canary.WRONG_TOKEN}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(path, headers={"Authorization": "Bearer another-token-two"}).status_code == 200


def test_tokens_on_protect_writes_and_admin(loaded: Loaded) -> None:
    client = client_with(loaded, tokens=[TOKEN])
    run_id = loaded.run_id(1)
    assert client.post(f"/v1/runs/{run_id}/outcome", json={"outcome": "accepted"}).status_code == 401
    assert client.post("/v1/workflows/wf-001/outcome", json={"outcome": "accepted"}).status_code == 401
    assert client.get(f"/v1/runs/{run_id}").status_code == 401
    body = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-01T01:00:00Z"}
    assert client.post("/v1/admin/rollups/rebuild", json=body).status_code == 401
    assert client.get(f"/v1/runs/{run_id}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_tokens_on_leave_health_open_and_accept_the_dashboard_cookie(loaded: Loaded) -> None:
    client = client_with(loaded, tokens=[TOKEN])
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path
    client.cookies.set("otelspend_token", TOKEN)
    assert client.get("/v1/rollups").status_code == 200


def test_tokens_off_means_open(loaded: Loaded) -> None:
    client = client_with(loaded, tokens=[])
    for path in V1_GETS:
        assert client.get(path).status_code == 200, path


def test_openapi_declares_the_bearer_scheme(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in spec["paths"]["/v1/rollups"]["get"]["security"]
