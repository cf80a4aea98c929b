"""Fully loaded cost to serve, end to end through the official OTLP exporter: retrieval, tool and
compute spans priced by rate-card entries matched on attributes; a shared pool allocated over 40
tenants to the femto-dollar; a late run in a closed period and a rule change restating by exact
deltas; revenue, margin and unit costs over the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tests.conftest import Running, wait_for
from tests.otel import tracer_provider
from tests.pricing.helpers import write_card

DAY_NS = 86_400 * 10**9
HOUR_NS = 3600 * 10**9
TENANTS = [f"tenant-{i:02d}" for i in range(40)]
GPU_RESOURCE = {"k8s.namespace.name": "inference", "otelspend.gpu.type": "H100-SXM"}
CARD = """
version: 1
entries:
  - id: retriever
    kind: retrieval
    match: {operation: retrieval}
    request_fee: 0.00005
  - id: pinecone-query
    kind: retrieval
    match: {db.system.name: pinecone, db.operation.name: query}
    request_fee: 0.00004
  - id: web-search
    kind: tool
    match: {gen_ai.tool.name: web_search}
    per_1k_calls: 10
  - id: h100
    kind: compute
    match: {namespace: inference, gpu_type: "H100*"}
    gpu_second: 0.0011
"""
POOLS = """
pools:
  - id: vector-db
    owner: platform-team
    review: 2027-03-01
    description: Managed vector database, shared by every tenant
    amount_usd: "300.00"
    period: day
    scope: {}
    signal: runs
    method: proportional
    by: tenant
units:
  - id: resolution
    description: An answered question
    scope: {workflow_type: support}
    count: {status: success}
"""


def send_run(providers: dict[str, Any], tenant: str, start_ns: int, *, tokens: int = 1_000) -> None:
    """One run: a root, a model call, a retrieval (RETRIEVER around a Pinecone query), a priced
    tool, and a GPU service span (another service, same trace) with two child spans."""
    app = providers["app"].get_tracer("app")
    gpu = providers["gpu"].get_tracer("vllm")
    at = iter(range(start_ns, start_ns + 10**9, 10**6))
    root = app.start_span(
        "support", kind=SpanKind.SERVER, start_time=next(at),
        attributes={"tenant.id": tenant, "customer.id": f"cust-{tenant}", "workflow.type": "support"},
    )  # fmt: skip
    ctx = trace.set_span_in_context(root)
    llm = app.start_span(
        "chat gpt-4o-mini", context=ctx, kind=SpanKind.CLIENT, start_time=next(at),
        attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": tokens,
                    "gen_ai.usage.output_tokens": 100},
    )  # fmt: skip
    llm.end(end_time=next(at))
    retriever = app.start_span(
        "retrieve", context=ctx, start_time=next(at), attributes={"openinference.span.kind": "RETRIEVER"}
    )
    query = app.start_span(
        "pinecone.query", context=trace.set_span_in_context(retriever), kind=SpanKind.CLIENT, start_time=next(at),
        attributes={"db.system.name": "pinecone", "db.operation.name": "query"},
    )  # fmt: skip
    query.end(end_time=next(at))
    retriever.end(end_time=next(at))
    tool = app.start_span(
        "execute_tool web_search", context=ctx, start_time=next(at),
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "web_search"},
    )  # fmt: skip
    tool.end(end_time=next(at))
    server = gpu.start_span(
        "generate",
        context=ctx,
        kind=SpanKind.SERVER,
        start_time=next(at),
        attributes={"otelspend.compute.seconds": 2.5},
    )
    for name in ("tokenize", "decode"):
        child = gpu.start_span(name, context=trace.set_span_in_context(server), start_time=next(at))
        child.end(end_time=next(at) + 50 * 10**6)
    server.end(end_time=next(at) + 10**9)
    root.end(end_time=next(at) + 2 * 10**9)


@pytest.fixture
def loaded(start_server: Callable[..., Running], tmp_path: Path) -> tuple[Running, Path]:
    card = write_card(tmp_path / "card.yaml", CARD)
    pools = write_card(tmp_path / "pools.yaml", POOLS)
    server = start_server(
        rate_card=str(card),
        cost_pools=str(pools),
        allocation={"interval_seconds": 3600, "lookback_days": 5},
        runs={"late_horizon_hours": 1.0},
    )
    return server, pools


def turn(server: Running) -> Any:
    """Run one turn of the server's allocation job now and wait for it."""
    before = server.app.allocator.last_turn
    server.app.allocation_job.wake()
    wait_for(lambda: server.app.allocator.last_turn is not before, 60, "an allocation turn")
    return server.app.allocator.last_turn


def day_shares(server: Running, day_start_ns: int) -> dict[str, Decimal]:
    rows = server.rows(
        "SELECT consumer, sum(sign * amount_usd) FROM {db}.allocations "
        "WHERE pool = 'vector-db' AND period_start = toDateTime({s:Int64}, 'UTC') GROUP BY consumer "
        "HAVING sum(sign * amount_usd) != 0",
        s=day_start_ns // 10**9,
    )
    return {consumer: Decimal(amount) for consumer, amount in rows}


def test_cost_to_serve_through_otlp(loaded: tuple[Running, Path]) -> None:
    server, pools_path = loaded
    api = httpx.Client(base_url=server.api_url, timeout=60)  # authenticates with the canary token (conftest)
    closed_day = time.time_ns() // DAY_NS * DAY_NS - 2 * DAY_NS
    counts = {tenant: i % 3 + 1 for i, tenant in enumerate(TENANTS)}
    with (
        tracer_provider(server, "grpc", service="support-app") as app_tp,
        tracer_provider(
            server,
            "grpc",
            service="vllm",
            resource={"k8s.namespace.name": "inference", "otelspend.gpu.type": "H100-SXM"},
        ) as gpu_tp,
    ):
        for i, tenant in enumerate(TENANTS):
            for j in range(counts[tenant]):
                send_run({"app": app_tp, "gpu": gpu_tp}, tenant, closed_day + HOUR_NS + (i * 3 + j) * 60 * 10**9)
    server.wait_idle(60)
    runs = sum(counts.values())
    _every_cost_signal_priced_and_counted_once(server, api, closed_day, runs)
    _a_pool_over_40_tenants_adds_up_exactly(server, api, closed_day, counts)
    _a_late_run_in_a_closed_day_restates_by_exact_deltas(server, closed_day)
    _a_rule_change_restates_every_period(server, pools_path, closed_day)
    _loaded_cost_revenue_margin_and_unit_costs(api, closed_day, runs + 1)


def _every_cost_signal_priced_and_counted_once(server: Running, api: httpx.Client, closed_day: int, runs: int) -> None:
    spans = server.dicts(
        "SELECT name, call_role, cost_kind, cost_usd, price_entry, price_source FROM {db}.spans FINAL "
        "WHERE trace_id = (SELECT any(run_id) FROM {db}.runs)"
    )
    by_name = {s["name"]: s for s in spans}
    assert (by_name["retrieve"]["call_role"], by_name["retrieve"]["price_entry"]) == ("charge", "retriever")
    assert (by_name["pinecone.query"]["call_role"], by_name["pinecone.query"]["cost_kind"]) == ("view", "retrieval")
    assert by_name["execute_tool web_search"]["cost_usd"] == Decimal("0.01")
    assert (by_name["generate"]["call_role"], by_name["generate"]["cost_usd"]) == ("charge", Decimal("0.00275"))
    assert {by_name["tokenize"]["call_role"], by_name["decode"]["call_role"]} == {"view"}
    assert by_name["chat gpt-4o-mini"]["cost_kind"] == "model"
    assert by_name["generate"]["price_source"].startswith("user:card.yaml@")
    run = server.dicts("SELECT * FROM {db}.runs FINAL LIMIT 1")[0]
    model_cost = by_name["chat gpt-4o-mini"]["cost_usd"]
    assert run["cost_usd"] == model_cost + Decimal("0.00005") + Decimal("0.01") + Decimal("0.00275")
    assert (run["charges"], run["retrieval_queries"], run["gpu_us"], run["llm_calls"]) == (3, 1, 2_500_000, 1)
    params = {"group_by": "cost_kind", "metrics": "cost_usd", "from": _iso(closed_day), "limit": 50}
    kinds = {row["cost_kind"]: Decimal(row["cost_usd"]) for row in api.get("/v1/rollups", params=params).json()["rows"]}
    assert kinds["retrieval"] == runs * Decimal("0.00005")
    assert kinds["tool"] == runs * Decimal("0.01") and kinds["compute"] == runs * Decimal("0.00275")
    assert sum(kinds.values()) == Decimal(str(server.scalar("SELECT sum(cost_usd) FROM {db}.runs FINAL")))


def _a_pool_over_40_tenants_adds_up_exactly(
    server: Running, api: httpx.Client, closed_day: int, counts: dict[str, int]
) -> None:
    runs = sum(counts.values())
    turn(server)
    shares = day_shares(server, closed_day)
    assert set(shares) == set(TENANTS)
    assert sum(shares.values()) == Decimal("300.000000000000000")  # to the cent and to the femto-dollar
    for tenant, share in shares.items():
        exact = Fraction(300 * 10**15 * counts[tenant], runs)
        assert abs(Fraction(share * 10**15) - exact) < 1
    # the days with no run are shown unallocated, never lost
    assert day_shares(server, closed_day + DAY_NS) == {"(unallocated)": Decimal(300)}
    listing = api.get("/v1/allocations", params={"from": _iso(closed_day), "to": _iso(closed_day + DAY_NS)}).json()
    assert {p["amount_usd"] for p in listing["periods"]} == {"300.000000000000000"}
    first = next(r for r in listing["rows"] if r["consumer"] == "tenant-02")
    assert first["status"] == "closed" and first["runs"] == 3
    element = first["AllocatedMethodDetails"]["Elements"][0]
    assert (element["UsageUnit"], element["UsageQuantity"]) == ("Run", 3.0)
    assert first["consumer_ratio"] == str((Decimal(3) / Decimal(runs)).quantize(Decimal("1e-18")))


def _a_late_run_in_a_closed_day_restates_by_exact_deltas(server: Running, closed_day: int) -> None:
    before = day_shares(server, closed_day)
    with tracer_provider(server, "grpc", service="support-app") as app_tp, tracer_provider(server, "grpc") as gpu_tp:
        send_run({"app": app_tp, "gpu": gpu_tp}, "tenant-new", closed_day + 20 * HOUR_NS)
    server.wait_idle(60)
    late = turn(server)
    restated = [p for p in late.periods if p.cancelled or p.inserted]
    assert [p.period for p in restated] == [_day(closed_day)]
    after = day_shares(server, closed_day)
    assert sum(after.values()) == Decimal("300.000000000000000")
    assert after["tenant-new"] > 0 and set(after) == {*TENANTS, "tenant-new"}
    (change,) = restated
    assert {k: (Decimal(b) / 10**15, Decimal(a) / 10**15) for k, (b, a) in change.changes.items()} == {
        k: (before.get(k, Decimal(0)), after[k]) for k in after if before.get(k, Decimal(0)) != after[k]
    }
    hourly = Decimal(server.scalar("SELECT sum(allocated_usd) FROM {db}.rollup_alloc_hourly"))
    assert hourly == sum(_all_in_force(server).values())


def _a_rule_change_restates_every_period(server: Running, pools_path: Path, closed_day: int) -> None:
    write_card(pools_path, POOLS.replace("signal: runs", "signal: tokens").replace('"300.00"', '"150"'))
    changed = turn(server)
    assert changed.periods and all(p.inserted for p in changed.periods)
    assert sum(day_shares(server, closed_day).values()) == Decimal(150)
    versions = server.rows(
        "SELECT DISTINCT rule_version FROM {db}.allocations GROUP BY rule_version, pool, period_start, consumer, "
        "run_id, version HAVING sum(sign) > 0"
    )
    assert len(versions) == 1


def _loaded_cost_revenue_margin_and_unit_costs(api: httpx.Client, closed_day: int, runs: int) -> None:
    revenue = "period_start,period_end,tenant,customer,revenue_usd\n"
    revenue += f"{_day(closed_day)},{_day(closed_day + DAY_NS)},tenant-00,cust-tenant-00,100\n"
    revenue += f"{_day(closed_day)},{_day(closed_day + DAY_NS)},tenant-01,cust-tenant-01,0.01\n"
    posted = api.post("/v1/revenue", content=revenue, headers={"content-type": "text/csv"})
    assert posted.status_code == 201, posted.text
    window = {"from": _iso(closed_day), "to": _iso(closed_day + DAY_NS)}
    metrics = "direct_cost_usd,allocated_cost_usd,loaded_cost_usd,revenue_usd,margin_usd"
    table = api.get("/v1/rollups", params={**window, "group_by": "tenant", "limit": 100, "metrics": metrics}).json()
    assert Decimal(table["totals"]["allocated_cost_usd"]) == Decimal(150)
    t0 = next(r for r in table["rows"] if r["tenant"] == "tenant-00")
    assert Decimal(t0["loaded_cost_usd"]) == Decimal(t0["direct_cost_usd"]) + Decimal(t0["allocated_cost_usd"])
    assert Decimal(t0["margin_usd"]) == 100 - Decimal(t0["loaded_cost_usd"])
    margins = api.get("/v1/margins", params={**window, "by": "customer", "dilutive_only": "true"}).json()
    dilutive = {row["customer"]: row["reason"] for row in margins["rows"]}
    assert "cust-tenant-01" in dilutive and "cust-tenant-00" not in dilutive
    assert dilutive["cust-tenant-02"] == "cost without revenue on record"
    (resolution,) = api.get("/v1/unit-costs", params=window).json()["units"]
    group = resolution["groups"][0]
    assert group["units"] == runs
    per_unit = (Decimal(group["loaded_cost_usd"]) * 10**15 // runs) / 10**15
    assert Decimal(group["loaded_cost_per_unit_usd"]) == per_unit


def _all_in_force(server: Running) -> dict[str, Decimal]:
    rows = server.rows("SELECT consumer, sum(sign * amount_usd) FROM {db}.allocations GROUP BY consumer")
    return {c: Decimal(a) for c, a in rows}


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))


def _day(ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ns // 10**9))
