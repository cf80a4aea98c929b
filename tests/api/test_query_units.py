"""Pure parts of the query layer: windows, routing, the vocabulary table, money, collapsing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from otelspend.api.errors import QueryError
from otelspend.api.query import usd, usd_per
from otelspend.api.requests import rollup_request, split_names, timeseries_request
from otelspend.api.runs import current, span_tree
from otelspend.api.vocabulary import CALL_BITS, DIMENSIONS, METRICS, PARTIALS, metric_partials
from otelspend.api.window import HOUR_NS, NS, Window, parse_window, rfc3339
from otelspend.clickhouse.queries.rollup_plan import plan_for

T0 = 1_700_000_000 * NS - 1_700_000_000 * NS % HOUR_NS  # an hour boundary

ISSUE_DIMENSIONS = [
    "workflow_type",
    "workflow_id",
    "agent",
    "model",
    "provider",
    "tool",
    "operation",
    "payload_band",
    "tenant",
    "customer",
    "feature",
    "user",
    "team",
    "cost_center",
    "product",
    "environment",
    "prompt_version",
    "service",
    "status",
    "outcome",
    "cost_kind",  # issue 14
    "pool",
]
ISSUE_METRICS = [
    "cost_usd",
    "reported_cost_usd",
    "runs",
    "calls",
    "successful_runs",
    "success_rate",
    "cost_per_success_usd",
    "accepted_runs",
    "cost_per_accepted_usd",
    "latency_avg_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "retries",
    "retry_rate",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "tool_calls",
    "tool_failure_rate",
    "workflows_touched",
    "unpriced_calls",
    "direct_cost_usd",  # issue 14
    "allocated_cost_usd",
    "loaded_cost_usd",
    "loaded_cost_per_success_usd",
    "revenue_usd",
    "margin_usd",
    "margin_pct",
]


def test_the_public_names_of_the_issue_are_all_there() -> None:
    assert list(DIMENSIONS) == ISSUE_DIMENSIONS
    assert set(ISSUE_METRICS) <= set(METRICS)


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_is_computable_from_every_source(metric: str) -> None:
    for level, sources in (
        ("run", ("runs_rollup", "runs_daily", "runs")),
        ("call", ("calls_rollup", "calls_daily", "run_calls")),
    ):
        for partial in metric_partials(METRICS[metric], level):
            family = PARTIALS[partial].family
            # allocated money and revenue come from their own tables, whatever the level
            read_from = {
                "ledger": sources,
                "allocation": ("alloc_hourly", "alloc_daily", "allocations"),
                "revenue": ("revenue",),
                "billing": ("billing",),
            }[family]
            for source in read_from:
                assert PARTIALS[partial].expression(source), (metric, partial, source)
    assert METRICS[metric].description and METRICS[metric].unit


@pytest.mark.parametrize(
    ("start", "end", "hours", "edges"),
    [
        pytest.param(T0, T0 + 3 * HOUR_NS, (T0 // NS, T0 // NS + 3 * 3600), [], id="aligned"),
        pytest.param(
            T0 + 5, T0 + 3 * HOUR_NS - 7, (T0 // NS + 3600, T0 // NS + 2 * 3600),
            [(T0 + 5, T0 + HOUR_NS), (T0 + 2 * HOUR_NS, T0 + 3 * HOUR_NS - 7)], id="both edges",
        ),
        pytest.param(T0 + 5, T0 + HOUR_NS, None, [(T0 + 5, T0 + HOUR_NS)], id="less than an hour"),
        pytest.param(T0 + 5, T0 + HOUR_NS + 9, None, [(T0 + 5, T0 + HOUR_NS + 9)], id="no whole hour"),
    ],
)  # fmt: skip
def test_window_splits_into_rollup_hours_and_raw_edges(start, end, hours, edges) -> None:
    window = Window(start, end)
    assert window.full_hours == hours
    assert window.edges == edges


def test_parse_window_defaults_and_limits() -> None:
    now = T0 + 123
    assert parse_window(None, None, now_ns=now) == Window(now - 24 * HOUR_NS, now)
    naive = parse_window(dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 2, 0, 0, 0, 1), now_ns=now)
    assert naive == Window(1_735_689_600 * NS, 1_735_776_000 * NS + 1000)
    with pytest.raises(QueryError, match="must be before"):
        parse_window(dt.datetime(2025, 1, 2), dt.datetime(2025, 1, 1), now_ns=now)
    with pytest.raises(QueryError, match="wider than 400 days"):
        parse_window(dt.datetime(2020, 1, 1), dt.datetime(2025, 1, 1), now_ns=now)
    assert rfc3339(1_735_689_600 * NS + 1500) == "2025-01-01T00:00:00.0000015Z"
    assert rfc3339(1_735_689_600 * NS) == "2025-01-01T00:00:00Z"


def test_requests_validate_names() -> None:
    assert split_names(["tenant, model", "tenant", ""]) == ["tenant", "model"]
    request = rollup_request(group_by="tenant,model", metrics=None, now_ns=T0)
    assert request.group_by == ("tenant", "model") and request.metrics == ("cost_usd", "runs", "calls")
    with pytest.raises(QueryError) as error:
        rollup_request(group_by=["tenant"], order_by="model", now_ns=T0)
    assert error.value.parameter == "order_by" and "tenant" in error.value.allowed
    with pytest.raises(QueryError, match=r"filter\.nope"):
        rollup_request(filters={"nope": ["x"]}, now_ns=T0)
    series = timeseries_request(bucket="day", now_ns=T0)
    assert series.window.end_ns - series.window.start_ns == 30 * 24 * HOUR_NS
    assert len(series.buckets()) == 31  # the window starts mid-day


@pytest.mark.parametrize(
    ("group_by", "filters", "level", "raw", "subset", "distinct"),
    [
        pytest.param(("tenant",), (), "run", False, 0, False, id="run dims: runs rollup"),
        pytest.param(("tenant", "model"), (), "call", False, CALL_BITS["model"], False, id="call dim"),
        pytest.param(("tenant",), (("tool", ("a",)),), "call", False, CALL_BITS["tool"], False, id="call filter"),
        pytest.param(("tenant",), (("tool", ("a", "b")),), "call", False, CALL_BITS["tool"], True, id="multi"),
        pytest.param(("tool",), (("tool", ("a", "b")),), "call", False, CALL_BITS["tool"], False, id="grouped"),
        pytest.param(("workflow_id",), (), "run", True, 0, False, id="raw runs"),
        pytest.param(("agent",), (("user", ("u",)),), "call", True, CALL_BITS["agent"], False, id="raw calls"),
    ],
)
def test_routing(group_by, filters, level, raw, subset, distinct) -> None:
    plan = plan_for(group_by, filters)
    assert (plan.level, plan.raw_only, plan.subset, plan.distinct_runs) == (level, raw, subset, distinct)


def test_money_formats() -> None:
    assert usd(Decimal("0E-15")) == "0.000000000000000"
    assert usd(Decimal("1234.5")) == "1234.500000000000000"
    assert usd_per(Decimal("1"), 3) == "0.333333333333333"
    assert usd_per(Decimal("0.000000000000002"), 3) == "0.000000000000000"
    assert usd_per(Decimal("5"), 0) is None


def test_current_nets_signed_rows() -> None:
    rows = [("r", 1, "old", 1), ("r", 1, "old", -1), ("r", 2, "new", 1), ("s", 1, "x", 1), ("s", 1, "x", 1)]
    assert current(rows, 3) == [("r", 2, "new"), ("s", 1, "x"), ("s", 1, "x")]


def _span(span_id: str, parent: str, cost: str | None, role: str = "call") -> dict:
    return {"span_id": span_id, "parent_span_id": parent, "cost_usd": cost, "call_role": role}


def test_span_tree_nests_sums_and_keeps_orphans_and_cycles() -> None:
    spans = [
        _span("root", "", None, "other"),
        _span("agent", "root", None, "agent"),
        _span("view", "agent", "0.300000000000000", "view"),
        _span("call", "view", "0.300000000000000"),
        _span("call2", "agent", "0.100000000000000"),
        _span("orphan", "missing", "0.050000000000000"),
        _span("a", "b", "0.001000000000000"),
        _span("b", "a", "0.002000000000000"),
    ]
    roots = span_tree(spans)
    by_id = {r["span_id"]: r for r in roots}
    assert set(by_id) == {"root", "orphan", "a"}
    assert by_id["root"]["subtree_cost_usd"] == "0.400000000000000"  # the view is not counted twice
    agent = by_id["root"]["children"][0]
    assert [c["span_id"] for c in agent["children"]] == ["view", "call2"]
    assert by_id["orphan"]["subtree_cost_usd"] == "0.050000000000000"
    assert by_id["a"]["subtree_cost_usd"] == "0.003000000000000"


def test_whole_days_come_from_the_daily_rollups_only_when_every_dimension_is_theirs() -> None:
    day = 86_400 * NS
    midnight = T0 - T0 % day
    window = Window(midnight - 5 * HOUR_NS - 3, midnight + 2 * day + 90)
    assert window.full_days == (midnight // NS, (midnight + 2 * day) // NS)
    assert Window(midnight + 1, midnight + day).full_days is None
    assert Window(midnight, midnight + day).full_days == (midnight // NS, (midnight + day) // NS)
    for group_by, filters, daily in (
        (("tenant", "model"), (("provider", ("openai",)),), True),
        (("workflow_type", "tenant"), (), True),
        (("provider",), (("model", ("gpt-4o",)),), True),
        (("tenant", "outcome"), (), False),
        ((), (), True),
        (("tenant", "feature"), (), False),
        (("model", "agent"), (), False),
        (("tenant",), (("customer", ("c",)),), False),
    ):
        plan = plan_for(group_by, filters)
        assert plan.daily is daily, (group_by, filters)
        days = plan.whole_days(window, None)
        assert days == (window.full_days if daily else None)
        assert plan.whole_days(window, "hour") is None  # hourly buckets cannot come from days
        assert plan.describe(window)["tables"][0].endswith("_daily") is daily
