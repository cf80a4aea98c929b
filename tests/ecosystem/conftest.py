"""One otelspend server for the whole ecosystem package, loaded once by the demo.

The demo plan is sent through the official OTel SDK (``otelspend.demo_sender.send``, the
code path of ``otelspend demo``) to a real in-process server on chDB; the dashboard,
collector and demo tests then read that data. Building it once keeps the package inside
its time budget.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otelspend.app import OtelSpend
from otelspend.demo import PlannedRun, plan_runs
from otelspend.demo_sender import PlanSummary, SendResult, send, summarize
from tests.conftest import Running, make_settings

REPO = Path(__file__).resolve().parents[2]
DEMO_RUNS = 400
DEMO_DAYS = 3.0
DEMO_SEED = 20261123


@dataclass
class DemoData:
    server: Running
    plans: list[PlannedRun]
    summary: PlanSummary
    sent: SendResult
    now_ns: int


COST_POOLS = """
pools:
  - id: vector-db
    owner: platform-team
    review: 2027-03-01
    description: Managed vector database, shared by every tenant
    amount_usd: "25.00"
    period: day
    scope: {}
    signal: runs
    method: proportional
    by: tenant
"""
REVENUE_TENANTS = ("acme", "globex")
"""Tenants given 100 USD of revenue a day over the demo's days (issue 14's cost-to-serve panel)."""


def _shared_costs_and_revenue(server: Running, now_ns: int) -> None:
    """Allocate the pool over the demo's days and import revenue for two tenants."""
    import datetime as dt

    from otelspend.finance.revenue import parse_csv, store_lines

    server.app.allocator.catch_up()
    today = dt.datetime.fromtimestamp(now_ns // 10**9, tz=dt.UTC).date()
    start, end = today - dt.timedelta(days=2), today + dt.timedelta(days=1)  # days inside the demo's window
    days = (end - start).days
    csv = "period_start,period_end,tenant,revenue_usd\n" + "".join(
        f"{start},{end},{tenant},{100 * days}\n" for tenant in REVENUE_TENANTS
    )
    store_lines(server.store, parse_csv(csv), "ecosystem-test")


@pytest.fixture(scope="package")
def demo(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoData]:
    data = tmp_path_factory.mktemp("demo-data")
    (data / "cost-pools.yaml").write_text(COST_POOLS)
    settings = make_settings(
        chdb_path,
        data,
        f"t_{uuid.uuid4().hex[:12]}",
        cost_pools=str(data / "cost-pools.yaml"),
        allocation={"interval_seconds": 3600},
    )
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        now_ns = time.time_ns()
        plans = plan_runs(DEMO_RUNS, DEMO_DAYS, seed=DEMO_SEED, now_ns=now_ns)
        sent = send(plans, server.grpc_endpoint, "grpc")
        server.wait_idle(timeout=90)
        _shared_costs_and_revenue(server, now_ns)
        yield DemoData(server, plans, summarize(plans), sent, now_ns)
    finally:
        app.stop()
