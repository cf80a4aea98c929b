"""``billing pull`` against loopback fakes of the admin APIs: real HTTP, real paging, 401,
429 with Retry-After, a pull failing half-way and resumed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from otelspend.finance.billing import service
from otelspend.finance.billing import store as billing_store
from otelspend.finance.billing.pull import ENDPOINTS, Client, PullError, PullOptions, pull, resume_point
from tests import canary
from tests.finance.billing.fakes import LIMITS, FakeAdminApi, Injected, anthropic_results, openai_results, serving

KEY = canary.OPENAI_ADMIN_KEY  # watched: no output, log or answer may show it
START = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
DAYS = [int((START + dt.timedelta(days=n)).timestamp()) for n in range(5)]
END = START + dt.timedelta(days=5)


def _options(api: FakeAdminApi, waits: list[float], key: str = KEY, attempts: int = 3) -> PullOptions:
    return PullOptions(api.url, SecretStr(key), timeout_seconds=10, max_attempts=attempts, sleep=waits.append)


def _importer(store) -> Any:
    def run(path: Path, format: str, name: str) -> dict[str, Any]:
        return service.import_file(store, path, name=name, format=format, source="pull").as_dict()

    return run


def _billed(store) -> Decimal:
    rows = billing_store.current_lines(store, DAYS[0], DAYS[-1] + 86_400)
    return sum((row["amount"] for row in rows if row["amount"] is not None), Decimal(0))


def _tokens(store) -> Decimal:
    rows = billing_store.current_lines(store, DAYS[0], DAYS[-1] + 86_400)
    return sum((row["quantity"] for row in rows if row["unit"] == "tokens"), Decimal(0))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_pull_follows_every_page_and_imports_them(store, tmp_path: Path, provider: str) -> None:
    results = openai_results(DAYS) if provider == "openai" else anthropic_results(DAYS)
    with serving(FakeAdminApi(provider, KEY, results, page_buckets=2)) as api:
        reports = pull(provider, _options(api, []), START, END, tmp_path, _importer(store))
    assert [r.pages for r in reports] == [3, 3] and [r.buckets for r in reports] == [5, 5]
    assert all(not r.error for r in reports)
    for path, query in api.requests:
        low, high = LIMITS[path]
        assert low <= int(query["limit"][0]) <= high
        group_by = query["group_by[]" if provider == "anthropic" else "group_by"]
        assert len(group_by) >= 2, "group_by is a repeated parameter"
    pages_followed = [q.get("page") for p, q in api.requests if p == ENDPOINTS[provider][0].path]
    assert pages_followed[0] is None and all(pages_followed[1:])
    if provider == "openai":
        assert _billed(store) == sum(Decimal("0.25") + n + Decimal("1.5") for n in range(5))
        assert _tokens(store) == sum(100_000 * (n + 1) + 150_000 for n in range(5))
    else:
        assert _billed(store) == sum(Decimal(300 + n) / 100 for n in range(5))  # cents
        assert _tokens(store) == sum(1_000_000 + n + 10 + 5 + 7 for n in range(5))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_refused_admin_key_is_permanent_and_never_shown(store, tmp_path: Path, provider: str) -> None:
    results = openai_results(DAYS) if provider == "openai" else anthropic_results(DAYS)
    waits: list[float] = []
    with serving(FakeAdminApi(provider, KEY, results)) as api:
        reports = pull(provider, _options(api, waits, key=canary.WRONG_TOKEN), START, END, tmp_path, _importer(store))
    (report,) = reports  # stops at the first endpoint: every endpoint would refuse the key
    assert report.status == 401 and report.pages == 0 and waits == [] and len(api.requests) == 1
    assert f"check billing.{provider}_admin_key" in report.error
    assert canary.WRONG_TOKEN not in report.error and canary.WRONG_TOKEN not in str(report.as_dict())
    assert service.list_imports(store) == []


def test_429_is_retried_after_the_time_the_server_asks(store, tmp_path: Path) -> None:
    waits: list[float] = []
    api = FakeAdminApi("openai", KEY, openai_results(DAYS), page_buckets=5)
    api.injected = [Injected(429, "3"), Injected(429, "1"), Injected(503)]
    with serving(api):
        reports = pull("openai", _options(api, waits, attempts=6), START, END, tmp_path, _importer(store))
    assert waits == [3.0, 1.0, 4.0]  # Retry-After honoured; without one, 2^(attempt-1) s (the 3rd attempt)
    assert [r.retries for r in reports] == [3, 0] and all(not r.error for r in reports)
    assert _billed(store) == sum(Decimal("0.25") + n + Decimal("1.5") for n in range(5))


def test_a_pull_failing_half_way_keeps_what_it_fetched_and_says_where_to_resume(store, tmp_path: Path) -> None:
    waits: list[float] = []
    api = FakeAdminApi("openai", KEY, openai_results(DAYS), page_buckets=2, fail_after_pages=2)
    with serving(api):
        reports = pull("openai", _options(api, waits), START, END, tmp_path / "1", _importer(store))
    costs, usage = reports
    assert costs.pages == 2 and costs.buckets == 4 and "gave up after 3 attempt(s)" in costs.error
    assert costs.resume_since == "2025-06-05" and costs.imported["lines"] == 8
    assert usage.pages == 0 and usage.resume_since == "2025-06-01" and usage.imported is None
    assert waits == [1.0, 2.0, 1.0, 2.0]  # each endpoint retried within its bound, then gave up
    assert _billed(store) == sum(Decimal("0.25") + n + Decimal("1.5") for n in range(4))
    assert resume_point(reports) == "2025-06-01"

    # Resume from the day it names: the rest arrives, what is fetched again replaces.
    api2 = FakeAdminApi("openai", KEY, openai_results(DAYS), page_buckets=2)
    with serving(api2):
        since = dt.datetime.fromisoformat(resume_point(reports)).replace(tzinfo=dt.UTC)
        again = pull("openai", _options(api2, []), since, END, tmp_path / "2", _importer(store))
    assert all(not r.error for r in again) and again[0].imported["replaced"] == 8
    assert _billed(store) == sum(Decimal("0.25") + n + Decimal("1.5") for n in range(5))
    assert _tokens(store) == sum(100_000 * (n + 1) + 150_000 for n in range(5))


def test_the_costs_endpoint_rejects_a_limit_of_366_and_the_client_never_asks_it(tmp_path: Path) -> None:
    with serving(FakeAdminApi("openai", KEY, openai_results(DAYS))) as api:
        client = Client("openai", _options(api, []))
        params = [("start_time", str(DAYS[0])), ("bucket_width", "1d"), ("limit", "366")]
        with pytest.raises(PullError, match="answered 400: Invalid value for 'limit'") as caught:
            client.get("/v1/organization/costs", params)
    assert caught.value.permanent and caught.value.status == 400
    for endpoints in ENDPOINTS.values():
        for endpoint in endpoints:
            assert LIMITS[endpoint.path][0] <= endpoint.limit <= LIMITS[endpoint.path][1]
