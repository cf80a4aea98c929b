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


@pytest.fixture(scope="package")
def demo(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoData]:
    settings = make_settings(chdb_path, tmp_path_factory.mktemp("demo-data"), f"t_{uuid.uuid4().hex[:12]}")
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        now_ns = time.time_ns()
        plans = plan_runs(DEMO_RUNS, DEMO_DAYS, seed=DEMO_SEED, now_ns=now_ns)
        sent = send(plans, server.grpc_endpoint, "grpc")
        server.wait_idle(timeout=90)
        yield DemoData(server, plans, summarize(plans), sent, now_ns)
    finally:
        app.stop()
