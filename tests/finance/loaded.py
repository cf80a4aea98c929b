"""A loaded ledger for the export and statement seams to allocation (issue 14 x issue 16): runs
through the official OTel SDK exporter with a model call, a priced retrieval, a priced tool and
a priced GPU span each (charges), over several teams and tenants, two days ago; two cost pools
allocated by the server's own allocation job (one by tenant over runs, one by team over tokens,
with an amount no ratio divides evenly); the day after has no run, so both pools keep that
day's money unallocated."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otelspend.app import OtelSpend
from tests.conftest import Running, make_settings, wait_for
from tests.otel import tracer_provider
from tests.pricing.helpers import write_card

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
CARD = """
version: 1
entries:
  - id: retriever
    kind: retrieval
    match: {operation: retrieval}
    request_fee: 0.00005
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
  - id: gateway
    owner: platform-team
    review: 2027-03-01
    description: LLM gateway, shared by every team
    amount_usd: "7.00"
    period: day
    scope: {}
    signal: tokens
    method: proportional
    by: team
"""
OWNERS: tuple[tuple[str, str], ...] = (
    ("search", "acme"),
    ("support", "globex"),
    ("support", "acme"),
    ("", "initech"),  # no team: the gateway pool's share of it has no sub-account
    ("search", "umbrella"),
    ("support", "umbrella"),
    ("research", "acme"),
)
RUNS = 21


@dataclass
class Loaded:
    """The loaded ledger: its server, the day its runs started (ns) and how many."""

    server: Running
    day_ns: int
    runs: int

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.api_url, timeout=60)

    def window(self, days: int = 2) -> dict[str, str]:
        """From the runs' day to ``days`` later (the day after holds only unallocated money)."""
        return {"from": _iso(self.day_ns), "to": _iso(self.day_ns + days * DAY_NS)}


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).isoformat()


def _send_run(app: Any, gpu: Any, team: str, tenant: str, start_ns: int, tokens: int) -> None:
    at = iter(range(start_ns, start_ns + 10**9, 10**6))
    owner = {"tenant.id": tenant, "workflow.type": "support"} | ({"team": team} if team else {})
    root = app.start_span("support", kind=SpanKind.SERVER, start_time=next(at), attributes=owner)
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
    retriever.end(end_time=next(at))
    tool = app.start_span(
        "execute_tool web_search", context=ctx, start_time=next(at),
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "web_search"},
    )  # fmt: skip
    tool.end(end_time=next(at))
    server = gpu.start_span(
        "generate", context=ctx, kind=SpanKind.SERVER, start_time=next(at),
        attributes={"otelspend.compute.seconds": 2.5},
    )  # fmt: skip
    server.end(end_time=next(at) + 10**9)
    root.end(end_time=next(at) + 2 * 10**9)


def turn(server: Running) -> None:
    """Run one turn of the server's allocation job now and wait for it."""
    before = server.app.allocator.last_turn
    server.app.allocation_job.wake()
    wait_for(lambda: server.app.allocator.last_turn is not before, 60, "an allocation turn")


def loaded_ledger(chdb_path: Path, data_dir: Path) -> Iterator[Loaded]:
    """Start the server, send the runs, allocate; yield the ledger; stop the server."""
    card = write_card(data_dir / "card.yaml", CARD)
    pools = write_card(data_dir / "pools.yaml", POOLS)
    settings = make_settings(
        chdb_path, data_dir / "data", f"t_{uuid.uuid4().hex[:12]}", rate_card=str(card), cost_pools=str(pools),
        allocation={"interval_seconds": 3600, "lookback_days": 5}, runs={"late_horizon_hours": 1.0},
    )  # fmt: skip
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        day_ns = time.time_ns() // DAY_NS * DAY_NS - 2 * DAY_NS
        with (
            tracer_provider(server, "grpc", service="support-app") as app_tp,
            tracer_provider(server, "grpc", service="vllm", resource={
                "k8s.namespace.name": "inference", "otelspend.gpu.type": "H100-SXM"}) as gpu_tp,
        ):  # fmt: skip
            app_tracer, gpu_tracer = app_tp.get_tracer("app"), gpu_tp.get_tracer("vllm")
            for i in range(RUNS):
                team, tenant = OWNERS[i % len(OWNERS)]
                start = day_ns + HOUR_NS + i * 7 * 60 * 10**9
                _send_run(app_tracer, gpu_tracer, team, tenant, start, tokens=1_000 + 37 * i)
        server.wait_idle(60)
        turn(server)
        yield Loaded(server, day_ns, RUNS)
    finally:
        app.stop()
