"""Any figure from the API equals the same figure computed with plain SQL from ``spans FINAL``
(plus API outcomes), over a ledger ingested through real OTLP with late spans, duplicate
deliveries, views, aggregates, failures, retries and outcomes (tests/api/ledger.py).

Windows cut through hours, so answers mix rollup hours and raw edge hours.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any

import pytest

from otelspend.api.vocabulary import METRICS
from otelspend.api.window import Window
from otelspend.clickhouse.queries.rollup_plan import plan_for
from otelspend.clickhouse.queries.rollups import AggregateOptions, aggregate_query
from tests.api.conftest import Loaded
from tests.api.expected import expected_rows

HOUR = 3600 * 10**9
ALL_METRICS = ",".join(METRICS)


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def _windows(loaded: Loaded) -> dict[str, tuple[int, int]]:
    first, now = loaded.ledger.first_ns, loaded.now_ns
    return {
        "everything": (first - HOUR, now + HOUR),
        "cut through hours": (first + 7 * HOUR + 13 * 60 * 10**9 + 17, now - 5 * HOUR - 23 * 60 * 10**9 - 11),
        "inside one hour": (first + 20 * HOUR + 60 * 10**9, first + 20 * HOUR + 50 * 60 * 10**9),
    }


GROUPINGS = [
    pytest.param((), {}, id="total"),
    pytest.param(("workflow_type",), {}, id="workflow_type"),
    pytest.param(("tenant", "service"), {}, id="tenant x service"),
    pytest.param(("status", "outcome"), {}, id="status x outcome"),
    pytest.param(("prompt_version",), {"environment": ["production"]}, id="prompt_version, filter environment"),
    pytest.param(("model",), {}, id="model"),
    pytest.param(("tenant", "model"), {}, id="tenant x model"),
    pytest.param(("provider", "operation"), {}, id="provider x operation"),
    pytest.param(("agent",), {}, id="agent"),
    pytest.param(("tool", "workflow_type"), {}, id="tool x workflow_type"),
    pytest.param(("payload_band",), {}, id="payload_band"),
    pytest.param(("tenant",), {"model": ["gpt-4o", "gpt-4o-2024-08-06"]}, id="tenant, filter model"),
    pytest.param(("workflow_id",), {}, id="workflow_id (raw runs)"),
    pytest.param(("user", "agent"), {}, id="user x agent (raw breakdown)"),
    pytest.param(("customer",), {"tenant": ["acme", "globex"], "user": ["user-1", "user-2"]}, id="filters raw"),
]


def _same(name: str, got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)
    return got == want


@pytest.mark.parametrize(("group_by", "filters"), GROUPINGS)
def test_every_metric_matches_plain_sql(loaded: Loaded, api, group_by, filters) -> None:
    compared = 0
    for label, (start, end) in _windows(loaded).items():
        params: list[tuple[str, str]] = [("metrics", ALL_METRICS), ("from", _iso(start)), ("to", _iso(end))]
        params += [("group_by", name) for name in group_by]
        params += [(f"filter.{name}", value) for name, values in filters.items() for value in values]
        params += [("limit", "10000")]
        response = api.get("/v1/rollups", params=params)
        assert response.status_code == 200, response.text
        got = {tuple(row[d] for d in group_by): row for row in response.json()["rows"] if row["runs"]}
        want = expected_rows(loaded.server.store, group_by, filters, start, end)
        assert set(got) == set(want), f"{label}: groups differ"
        for key, expected in want.items():
            for name in METRICS:
                assert _same(name, got[key][name], expected[name]), (
                    f"{label}, group {key}: {name} = {got[key][name]!r}, plain SQL says {expected[name]!r}"
                )
                compared += 1
    assert compared > 0


def test_the_dataset_exercises_what_it_claims(loaded: Loaded) -> None:
    """Guard against a ledger that silently stopped covering the hard cases."""
    store = loaded.server.store
    db = store.database

    def scalar(sql: str) -> Any:
        return store.scalar(sql.replace("{db}", db))

    # (Counted from the server's own metrics: background merges may already have collapsed
    # duplicate spans and cancelled run rows in storage.)
    metrics = loaded.server.app.metrics
    stored = scalar("SELECT count() FROM {db}.spans FINAL")
    assert metrics.total("otelspend_spans_accepted_total") > stored  # duplicate deliveries
    assert metrics.total("otelspend_runs_emitted_total") > len(loaded.ledger.runs)  # late spans, outcomes
    assert scalar("SELECT count() FROM {db}.spans FINAL WHERE call_role = 'view'") > 0
    assert scalar("SELECT count() FROM {db}.spans FINAL WHERE call_role = 'aggregate'") > 0
    assert scalar("SELECT count() FROM {db}.spans FINAL WHERE name LIKE '%(late)'") == len(loaded.ledger.late)
    assert scalar("SELECT count() FROM {db}.spans FINAL WHERE call_role = 'call' AND cost_usd IS NULL") > 0
    assert scalar("SELECT sum(resend_count) FROM {db}.spans FINAL WHERE call_role = 'call'") > 0
    assert scalar("SELECT count() FROM {db}.runs FINAL WHERE status = 'error'") > 0
    assert scalar("SELECT uniqExact(outcome) FROM {db}.runs FINAL WHERE outcome != ''") == 4
    assert scalar("SELECT count() FROM {db}.runs FINAL") == len(loaded.ledger.runs)


def test_outcomes_latest_wins(loaded: Loaded) -> None:
    rows = loaded.server.rows("SELECT run_id, outcome FROM {db}.runs FINAL")
    current = dict(rows)
    for index, outcome in loaded.outcomes.items():
        assert current[loaded.run_id(index)] == outcome, index


@pytest.mark.parametrize("group_by", [("workflow_type", "status"), ("tenant", "model"), ("agent",)])
def test_rollup_hours_and_raw_rows_give_the_same_figures(loaded: Loaded, group_by) -> None:
    """The same window answered by rollup hours + raw edges, and by raw rows only."""
    store = loaded.server.store
    start, end = _windows(loaded)["cut through hours"]
    window = Window(start, end)
    plan = plan_for(group_by, ())
    assert window.full_hours is not None and window.edges and not plan.raw_only
    results = []
    for chosen in (plan, replace(plan, raw_only=True)):
        sql, params, _ = aggregate_query(
            store.database, chosen, window, group_by, list(METRICS), (), AggregateOptions(order=[("cost_usd", True)])
        )
        results.append(store.rows(sql, params))
    assert results[0] and results[0] == results[1]


DAILY_GROUPINGS = [
    pytest.param(("tenant", "model"), (), id="tenant x model"),
    pytest.param(("provider",), (("tenant", ("acme", "globex")),), id="provider, filter tenant"),
    pytest.param(("workflow_type",), (), id="workflow_type"),
    pytest.param(("workflow_type", "tenant"), (), id="workflow_type x tenant"),
    pytest.param((), (), id="total"),
]


@pytest.mark.parametrize(("group_by", "filters"), DAILY_GROUPINGS)
@pytest.mark.parametrize("bucket", [None, "day"])
def test_whole_days_from_the_daily_rollups_give_the_same_figures(loaded: Loaded, group_by, filters, bucket) -> None:
    """Whole days from a daily rollup + other hours from an hourly one + raw edges, against
    hourly rollups + raw edges, and against raw rows only: every metric equal."""
    store = loaded.server.store
    start, end = _windows(loaded)["everything"]
    window = Window(start + 13 * 60 * 10**9 + 7, end)  # edges inside hours, at least one whole day
    plan = plan_for(group_by, filters)
    assert plan.daily and window.full_days is not None
    results = []
    for chosen in (plan, replace(plan, daily=False), replace(plan, raw_only=True)):
        sql, params, _ = aggregate_query(
            store.database,
            chosen,
            window,
            group_by,
            list(METRICS),
            filters,
            AggregateOptions(bucket=bucket, order=[("cost_usd", True)]),
        )
        daily_table = "rollup_calls_daily" if plan.level == "call" else "rollup_runs_daily"
        assert (daily_table in sql) == (chosen is plan)
        results.append(store.rows(sql, params))
    assert results[0], "the window holds runs"
    assert results[0] == results[1] == results[2]


def test_the_daily_rollups_hold_what_the_hourly_ones_hold(loaded: Loaded) -> None:
    db = loaded.server.store.database
    for hourly, daily, dims, columns in (
        ("rollup_runs_hourly", "rollup_runs_daily", "workflow_type, tenant", "runs, calls, cost_usd, retries"),
        ("rollup_calls_hourly", "rollup_calls_daily", "tenant, model, provider", "runs_by_model, calls, cost_usd"),
    ):
        sums = ", ".join(f"sum({c})" for c in columns.split(", "))
        by_day = (
            f"SELECT toStartOfDay({{t}}) AS d, {dims}, {sums} FROM {db}.{{table}} GROUP BY d, {dims} "
            f"HAVING sum(calls) != 0 OR sum({columns.split(', ')[0]}) != 0 ORDER BY d, {dims}"
        )
        want = loaded.server.store.rows(by_day.format(t="hour", table=hourly))
        assert want and loaded.server.store.rows(by_day.format(t="day", table=daily)) == want
