"""Bad parameters are a 422 naming the parameter (and the allowed values where there is a
list), never a 500 and never a silently different answer."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from otelspend.api.vocabulary import DIMENSIONS, METRICS
from tests.api.conftest import Loaded, client_with

WIDE_FROM = "2024-01-01T00:00:00Z"

CASES = [
    # path, params, parameter named in loc, text the message must contain, allowed values listed
    pytest.param("/v1/rollups", {"group_by": "tenat"}, "group_by", "unknown dimension 'tenat'", DIMENSIONS, id="dim"),
    pytest.param("/v1/rollups", {"group_by": "tenant,1;DROP"}, "group_by", "unknown dimension", DIMENSIONS, id="sql"),
    pytest.param("/v1/rollups", {"metrics": "cost"}, "metrics", "unknown metric 'cost'", METRICS, id="metric"),
    pytest.param(
        "/v1/timeseries", {"metrics": "runs,nope"}, "metrics", "unknown metric 'nope'", METRICS, id="ts metric"
    ),
    pytest.param("/v1/rollups", {"order_by": "tenant"}, "order_by", "neither a metric nor", METRICS, id="order_by"),
    pytest.param("/v1/rollups", {"order": "up"}, "order", "", None, id="order"),
    pytest.param("/v1/rollups", {"filter.tenat": "acme"}, "filter.tenat", "unknown dimension", None, id="filter"),
    pytest.param("/v1/rollups", {"groupby": "tenant"}, "groupby", "unknown query parameter", None, id="param"),
    pytest.param("/v1/rollups", {"limit": "0"}, "limit", "out of range", None, id="limit 0"),
    pytest.param("/v1/rollups", {"limit": "10001"}, "limit", "out of range", None, id="limit max"),
    pytest.param("/v1/rollups", {"limit": "ten"}, "limit", "", None, id="limit text"),
    pytest.param("/v1/rollups", {"group_by": "a,b,c,d,e"}, "group_by", "unknown dimension 'a'", DIMENSIONS, id="5 bad"),
    pytest.param(
        "/v1/rollups",
        {"group_by": "tenant,model,agent,tool,user"},
        "group_by",
        "at most 4",
        None,
        id="too many dims",
    ),
    pytest.param(
        "/v1/rollups",
        {"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
        "from",
        "must be before",
        None,
        id="from after to",
    ),
    pytest.param(
        "/v1/rollups",
        {"from": "2025-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
        "from",
        "before",
        None,
        id="empty",
    ),
    pytest.param(
        "/v1/rollups", {"from": "2020-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from", "wider", None, id="wide"
    ),
    pytest.param("/v1/rollups", {"from": "yesterday"}, "from", "", None, id="from text"),
    pytest.param("/v1/rollups", {"from": "1900-01-01T00:00:00Z"}, "from", "outside", None, id="from 1900"),
    pytest.param("/v1/rollups", {"to": "9999-12-31T00:00:00Z"}, "to", "outside", None, id="to 9999"),
    pytest.param("/v1/timeseries", {"bucket": "week"}, "bucket", "", None, id="bucket"),
    pytest.param(
        "/v1/timeseries", {"from": WIDE_FROM, "to": "2024-12-01T00:00:00Z"}, "from", "buckets", None, id="pts"
    ),
    pytest.param("/v1/timeseries", {"limit": "101"}, "limit", "out of range", None, id="series"),
    pytest.param("/v1/runs", {"order_by": "tokens"}, "order_by", "", None, id="runs order"),
    pytest.param("/v1/runs", {"limit": "0"}, "limit", "", None, id="runs limit"),
    pytest.param("/v1/runs", {"offset": "-1"}, "offset", "", None, id="runs offset"),
    pytest.param("/v1/runs", {"filter.nope": "x"}, "filter.nope", "unknown dimension", None, id="runs filter"),
    pytest.param("/v1/outliers", {"limit": "0"}, "limit", "", None, id="outliers limit"),
    pytest.param("/v1/outliers", {"jump_factor": "0.5"}, "jump_factor", "", None, id="jump factor"),
    pytest.param("/v1/unpriced", {"limit": "0"}, "limit", "", None, id="unpriced limit"),
    pytest.param("/v1/rate-cards", {"model": "gpt-4o", "at": "soon"}, "at", "", None, id="quote at"),
]


@pytest.mark.parametrize(("path", "params", "parameter", "text", "allowed"), CASES)
def test_bad_parameter_is_a_clear_422(api: httpx.Client, path, params, parameter, text, allowed) -> None:
    response = api.get(path, params=params)
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    named = [d for d in details if d["loc"][-1] == parameter]
    assert named, f"no error names {parameter}: {details}"
    assert text in named[0]["msg"]
    if allowed is not None:
        assert named[0]["allowed"] == list(allowed)
        assert all(name in named[0]["msg"] for name in allowed)


def test_limit_is_bounded_by_the_configured_max_rows(loaded: Loaded) -> None:
    client = client_with(loaded, max_rows=5)
    assert client.get("/v1/rollups", params={"limit": 5}).status_code == 200
    response = client.get("/v1/rollups", params={"limit": 6})
    assert response.status_code == 422 and "1..5" in response.json()["detail"][0]["msg"]


def test_filter_values_are_data_never_sql(loaded: Loaded, api: httpx.Client) -> None:
    hostile = "acme' OR 1=1 --"
    window = {"from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z"}
    everything = {"from": _days_ago(30), "filter.tenant": hostile}
    body = api.get("/v1/rollups", params=everything).json()
    assert body["rows"] == [{"cost_usd": "0.000000000000000", "runs": 0, "calls": 0}]
    assert body["filters"] == {"tenant": [hostile]}
    assert api.get("/v1/runs", params={"from": _days_ago(30), "filter.workflow_id": hostile}).json()["runs"] == []
    assert api.get("/v1/rollups", params={**window, "group_by": "tenant"}).json()["rows"] == []


def _days_ago(days: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()
