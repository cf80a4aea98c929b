"""A table cut by its ``limit`` says so and still adds up: ``truncated``, ``total_groups`` and
``totals`` on ``GET /v1/rollups`` (and ``/v1/unpriced``, ``/v1/timeseries``, the dashboard).

The totals of a truncated answer are checked three ways against the untruncated answer of
the same query: money and counts equal the column sums, ratios the ratio of those sums,
and every figure that counts calls (not runs) equals the whole window asked without
group_by (at run level every figure does: each run is in exactly one group).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from otelspend.api import pages
from otelspend.api.prices import unpriced
from otelspend.api.query import rollup, usd_per
from otelspend.api.requests import RollupRequest
from otelspend.api.vocabulary import DIMENSIONS, METRICS
from otelspend.api.window import Window
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.writer import SpanWriter
from otelspend.enrich.pricing import PriceBook
from otelspend.record import F
from tests.api.conftest import Loaded, client_with
from tests.pricing.helpers import llm_row

HOUR = 3600 * 10**9
ALL_METRICS = ",".join(METRICS)
SUMMED = (
    "cost_usd", "reported_cost_usd", "runs", "calls", "successful_runs", "accepted_runs", "rated_runs", "retries",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "tool_calls",
    "unpriced_calls",
)  # fmt: skip
RATIOS = {
    "success_rate": ("successful_runs", "runs"),
    "acceptance_rate": ("accepted_runs", "rated_runs"),
    "retry_rate": ("retries", "calls"),
    "input_tokens_avg": ("input_tokens", "calls"),
    "output_tokens_avg": ("output_tokens", "calls"),
    "cache_read_tokens_avg": ("cache_read_tokens", "calls"),
}
MONEY_RATIOS = {"cost_per_success_usd": "successful_runs", "cost_per_accepted_usd": "accepted_runs"}
COUNTS_RUNS = {
    "runs", "successful_runs", "accepted_runs", "rated_runs", "success_rate", "acceptance_rate",
    "cost_per_success_usd", "cost_per_accepted_usd",
}  # fmt: skip
"""At call level a run counts once in each group it has calls in: these figures add up the column."""


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def _window(loaded: Loaded) -> tuple[int, int]:
    # Cut through hours: the answers mix rollup hours and raw edges.
    return loaded.ledger.first_ns - HOUR + 17 * 60 * 10**9 + 3, loaded.now_ns + HOUR


def _rollups(api: httpx.Client, loaded: Loaded, group_by: tuple[str, ...], filters: dict[str, list[str]], limit: int):
    start, end = _window(loaded)
    params: list[tuple[str, Any]] = [("metrics", ALL_METRICS), ("from", _iso(start)), ("to", _iso(end))]
    params += [("group_by", name) for name in group_by] + [("limit", limit)]
    params += [(f"filter.{name}", value) for name, values in filters.items() for value in values]
    response = api.get("/v1/rollups", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _column_sum(rows: list[dict[str, Any]], name: str) -> Any:
    if METRICS[name].kind == "usd":
        return sum((Decimal(row[name] or 0) for row in rows), Decimal(0))
    return sum(row[name] for row in rows)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and math.isclose(got, want, rel_tol=1e-12)
    return got == want


CASES = [
    pytest.param(("tenant",), {}, id="run level"),
    pytest.param(("workflow_type", "status"), {}, id="two run dimensions"),
    pytest.param(("model",), {}, id="call level"),
    pytest.param(("tenant", "model"), {}, id="run x call"),
    pytest.param(("provider", "operation"), {}, id="two call dimensions (distinct runs)"),
    pytest.param(("tenant",), {"model": ["gpt-4o", "gpt-4o-2024-08-06"]}, id="several models filtered (distinct runs)"),
    pytest.param(("workflow_id",), {}, id="raw runs"),
]


@pytest.mark.parametrize(("group_by", "filters"), CASES)
def test_a_truncated_table_says_so_and_its_totals_add_up(loaded: Loaded, api: httpx.Client, group_by, filters) -> None:
    full = _rollups(api, loaded, group_by, filters, 10_000)
    rows = full["rows"]
    assert len(rows) >= 3, "the ledger has enough groups to cut"
    assert full["truncated"] is False and full["total_groups"] == len(rows)

    cut = _rollups(api, loaded, group_by, filters, 2)
    assert cut["truncated"] is True and cut["total_groups"] == len(rows)
    assert cut["rows"] == rows[:2]
    assert cut["totals"] == full["totals"] and set(cut["totals"]) == set(METRICS)
    totals = cut["totals"]

    for name in SUMMED:
        want = _column_sum(rows, name)
        got = Decimal(totals[name]) if METRICS[name].kind == "usd" else totals[name]
        assert got == want, f"{name}: totals {got}, the rows add up to {want}"
    assert Decimal(totals["cost_usd"]) > 0 and totals["calls"] > 0
    for name, (numerator, denominator) in RATIOS.items():
        below = _column_sum(rows, denominator)
        want = _column_sum(rows, numerator) / below if below else None
        assert _same(totals[name], want), f"{name}: totals {totals[name]}, the rows say {want}"
    for name, denominator in MONEY_RATIOS.items():
        assert totals[name] == usd_per(_column_sum(rows, "cost_usd"), _column_sum(rows, denominator)), name

    # The whole window, asked without group_by (filtered to the table's groups, so call
    # level stays call level): every figure that does not count runs per group.
    whole_filters = dict(filters)
    for name in group_by:
        whole_filters.setdefault(name, sorted({row[name] for row in rows}))
    request = RollupRequest(
        Window(*_window(loaded)),
        (),
        tuple(METRICS),
        tuple(sorted((name, tuple(values)) for name, values in whole_filters.items())),
    )
    whole = rollup(loaded.server.store, request)["rows"][0]
    call_level = any(DIMENSIONS[name].level == "call" for name in (*group_by, *filters))
    for name in METRICS:
        if call_level and name in COUNTS_RUNS:
            continue
        assert _same(totals[name], whole[name]), f"{name}: totals {totals[name]}, the whole window {whole[name]}"


def test_an_answer_without_group_by_is_its_own_total(loaded: Loaded, api: httpx.Client) -> None:
    body = _rollups(api, loaded, (), {}, 1)
    assert body["truncated"] is False and body["total_groups"] == 1
    assert body["totals"] == {name: body["rows"][0][name] for name in METRICS}


def test_an_empty_window_has_zero_groups_and_zero_totals(api: httpx.Client) -> None:
    params = {"group_by": "tenant", "metrics": "cost_usd,runs,success_rate", "from": "2001-01-01T00:00:00Z"}
    body = api.get("/v1/rollups", params={**params, "to": "2001-01-02T00:00:00Z"}).json()
    assert body["rows"] == [] and body["total_groups"] == 0 and body["truncated"] is False
    assert body["totals"] == {"cost_usd": "0.000000000000000", "runs": 0, "success_rate": None}


def test_timeseries_says_when_groups_got_no_series(loaded: Loaded, api: httpx.Client) -> None:
    start, end = _window(loaded)
    window = {"from": _iso(start), "to": _iso(end), "bucket": "day"}
    models = _rollups(api, loaded, ("model",), {}, 10_000)["total_groups"]
    assert models > 2
    cut = api.get("/v1/timeseries", params={**window, "group_by": "model", "metrics": "cost_usd", "limit": 2}).json()
    assert len(cut["series"]) == 2 and cut["total_groups"] == models and cut["truncated"] is True
    whole = api.get(
        "/v1/timeseries", params={**window, "group_by": "model", "metrics": "cost_usd", "limit": models}
    ).json()
    assert len(whole["series"]) == models and whole["total_groups"] == models and whole["truncated"] is False
    plain = api.get("/v1/timeseries", params={**window, "metrics": "cost_usd"}).json()
    assert plain["total_groups"] == 1 and plain["truncated"] is False


UNPRICED = [
    # (provider, model, calls, input tokens each): unknown models and an unknown provider
    ("openai", "gpt-99-ultra", 3, 1_000),
    ("no-such-cloud", "gpt-4o", 2, 500),
    ("acme", "acme-llm-1", 4, 250),
    ("openai", "o-self-hosted", 1, 7),
]


def test_unpriced_says_when_groups_are_left_out_and_totals_cover_them(store: Store) -> None:
    """Real pricing (genai-prices) leaves these calls unpriced; the real store groups them."""
    start = 1_750_000_000 * 10**9
    rows = [
        llm_row(provider=p, response_model=m, start=start + i * 10**9, input_tokens=tokens, output_tokens=tokens // 2)
        for p, m, calls, tokens in UNPRICED
        for i in range(calls)
    ]
    PriceBook.from_file(None).price_rows(rows)
    assert all(row[F.cost_usd] is None and row[F.unpriced_reason] for row in rows)
    SpanWriter(store).write(rows, {})
    window = Window(start - HOUR, start + HOUR)
    full = unpriced(store, window, 100)
    groups = full["unpriced"]
    assert len(groups) == len(UNPRICED) and full["truncated"] is False and full["total_groups"] == len(groups)
    cut = unpriced(store, window, 2)
    assert cut["unpriced"] == groups[:2] and cut["truncated"] is True and cut["total_groups"] == len(UNPRICED)
    assert cut["totals"] == full["totals"]
    assert cut["totals"]["calls"] == len(rows) == sum(group["calls"] for group in groups)
    for name in ("runs", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
        assert cut["totals"][name] == sum(group[name] for group in groups), name
    assert cut["totals"]["input_tokens"] == sum(calls * tokens for _, _, calls, tokens in UNPRICED)
    assert cut["totals"]["first_seen"] == min(group["first_seen"] for group in groups)
    assert cut["totals"]["last_seen"] == max(group["last_seen"] for group in groups)
    empty = unpriced(store, Window(start - 3 * HOUR, start - 2 * HOUR), 2)
    assert (empty["unpriced"], empty["total_groups"], empty["truncated"]) == ([], 0, False)
    assert empty["totals"]["calls"] == 0 and empty["totals"]["first_seen"] is None


@pytest.mark.parametrize(
    ("path", "note", "group_by", "noun"),
    [
        pytest.param("/tenants", "tenants-table-cut", "tenant", "tenants", id="tenants"),
        pytest.param("/workflows", "workflows-cut", "workflow_type", "workflow types", id="workflows"),
        pytest.param("/agents", "models-cut", "provider,model", "provider × model pairs", id="models"),
    ],
)
def test_dashboard_tables_say_when_they_are_cut(
    loaded: Loaded, monkeypatch: pytest.MonkeyPatch, path: str, note: str, group_by: str, noun: str
) -> None:
    monkeypatch.setattr(pages, "TABLE_ROWS", 1)
    with client_with(loaded, pipeline=False) as client:
        html = client.get(path, params={"range": "7d"}).text
        period = pages.period("7d", loaded.now_ns)
        window = {"from": _iso(period.window.start_ns), "to": _iso(period.window.end_ns)}
        # Asked at the time the page was drawn: the 7-day period ends at the end of this hour.
        api = client.get(
            "/v1/rollups", params={**window, "group_by": group_by, "metrics": "cost_usd,calls", "limit": 1}
        ).json()
    found = re.search(rf'<p class="note cut" id="{note}">(.*?)</p>', html, re.S)
    assert found, f"{path} says nothing about the rows it left out"
    text = found.group(1)
    assert f"Showing the first 1 of {api['total_groups']} {noun}" in text and api["truncated"]
    assert f'value="{api["totals"]["cost_usd"]}"' in text, "the note's spend is the exact total of every group"
