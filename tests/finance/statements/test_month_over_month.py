"""Month over month: a statement's previous month is the rollups API's figure for that month and
owner, the change is computed from both, and an owner that spent last month but nothing this
month keeps a statement showing the drop. Runs of two months sent through the OTel SDK exporter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelspend.finance.statements.model import month_window, previous_month
from tests.conftest import Running
from tests.otel import tracer_provider

NS = 10**9


def _send(server: Running, runs: list[tuple[int, str, int]]) -> None:
    """Runs of one gpt-4o-mini call each: (start in unix seconds, team, input tokens)."""
    with tracer_provider(server, "grpc", service="mom-app") as provider:
        tracer = provider.get_tracer("mom-tests")
        for start_s, team, tokens in runs:
            start = start_s * NS
            root = tracer.start_span("handle", kind=SpanKind.SERVER, start_time=start,
                                     attributes={"team": team, "workflow.type": "qa"})  # fmt: skip
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": tokens,
                "gen_ai.usage.output_tokens": 100,
            }
            context = trace.set_span_in_context(root)
            call = tracer.start_span("chat gpt-4o-mini", context=context, kind=SpanKind.CLIENT,
                                     start_time=start + NS // 10, attributes=attributes)  # fmt: skip
            call.end(end_time=start + NS // 2)
            root.end(end_time=start + NS)


def _by_team(api: httpx.Client, month: str) -> dict[str, Decimal]:
    start, end = month_window(month)
    iso = lambda s: dt.datetime.fromtimestamp(s, tz=dt.UTC).isoformat()  # noqa: E731
    params = {"from": iso(start), "to": iso(end), "group_by": "team", "metrics": "cost_usd,runs", "limit": 100}
    rows = api.get("/v1/rollups", params=params).json()["rows"]
    return {r["team"]: Decimal(r["cost_usd"]) for r in rows if r["runs"]}


def test_previous_month_and_change_equal_the_rollups(start_server: Callable[..., Running]) -> None:
    server = start_server()
    now = int(dt.datetime.now(dt.UTC).timestamp())
    month = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y-%m")
    this_start, _ = month_window(month)
    before = previous_month(month)
    before_mid = month_window(before)[0] + 14 * 86_400 + 12 * 3_600
    current = max(this_start + 60, now - 3_600)
    _send(server, [
        (before_mid, "search", 4_000), (before_mid + 60, "search", 4_000), (before_mid + 120, "legacy", 9_000),
        (current, "search", 4_000), (current + 1, "support", 1_000),
    ])  # fmt: skip
    server.wait_idle(timeout=60)
    with httpx.Client(base_url=server.api_url, timeout=60) as api:
        answer: dict[str, Any] = api.get("/v1/statements", params={"month": month, "by": "team"}).json()
        earlier: dict[str, Any] = api.get("/v1/statements", params={"month": before, "by": "team"}).json()
        now_costs, before_costs = _by_team(api, month), _by_team(api, before)
    assert set(now_costs) == {"search", "support"} and set(before_costs) == {"search", "legacy"}
    found = {s["owner"]: s for s in answer["statements"]}
    assert set(found) == {"search", "support", "legacy"}, "legacy spent last month only: its statement shows the drop"
    for owner, statement in found.items():
        direct = now_costs.get(owner, Decimal(0))
        previous = before_costs.get(owner, Decimal(0))
        assert Decimal(statement["direct_cost_usd"]) == direct
        assert Decimal(statement["previous_month_cost_usd"]) == previous
        expected = None if not previous else str(((direct - previous) * 100 / previous).quantize(Decimal("0.1")))
        assert statement["change_pct"] == expected, owner
    assert found["legacy"]["change_pct"] == "-100.0" and found["legacy"]["runs"] == 0
    assert found["support"]["change_pct"] is None
    assert found["search"]["change_pct"] == "-50.0"  # one run against two of the same usage
    assert Decimal(answer["month_cost_usd"]) == sum(now_costs.values())
    assert answer["previous_month"] == before
    assert Decimal(answer["previous_month_cost_usd"]) == sum(before_costs.values())
    assert {s["owner"] for s in earlier["statements"]} == {"search", "legacy"}
    assert all(s["previous_month_cost_usd"] == "0.000000000000000" for s in earlier["statements"])
