"""One server for the finance tests, loaded through the official OTel SDK exporter with runs of
known usage: several teams, tenants and models, cache reads and writes, reasoning tokens, one
call two instrumentations report (a view, not counted), an unpriced model, and one run with no
team (the unattributed bucket)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

from otelspend.app import OtelSpend
from tests.conftest import Running, make_settings
from tests.finance.loaded import Loaded, loaded_ledger
from tests.otel import tracer_provider

CALLS: tuple[dict[str, Any], ...] = (
    {"provider": "openai", "model": "gpt-4o-mini", "input": 1200, "output": 300, "cache_read": 800},
    {"provider": "anthropic", "model": "claude-sonnet-4-5", "input": 5000, "output": 400, "cache_read": 3000,
     "cache_write": 1000},
    {"provider": "openai", "model": "o4-mini", "input": 900, "output": 2500, "reasoning": 2000},
    {"provider": "acme", "model": "acme-llm-1", "input": 100, "output": 10},
)  # fmt: skip
OWNERS: tuple[dict[str, str], ...] = (
    {"team": "search", "cost_center": "cc-100", "tenant.id": "acme", "feature.id": "answers", "workflow.type": "qa"},
    {"team": "support", "cost_center": "cc-200", "tenant.id": "globex", "feature.id": "triage",
     "workflow.type": "support_triage"},
    {"team": "support", "cost_center": "cc-200", "tenant.id": "acme", "feature.id": "reply",
     "workflow.type": "support_reply"},
    {"tenant.id": "initech", "feature.id": "summary", "workflow.type": "summarize"},
)  # fmt: skip


@dataclass
class Ledger:
    server: Running
    start: dt.datetime
    end: dt.datetime
    runs: int

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.api_url, timeout=60)

    @property
    def window(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def _usage(call: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": call["provider"],
        "gen_ai.request.model": call["model"],
        "gen_ai.usage.input_tokens": call["input"],
        "gen_ai.usage.output_tokens": call["output"],
    }
    if "cache_read" in call:
        attributes["gen_ai.usage.cache_read.input_tokens"] = call["cache_read"]
    if "cache_write" in call:
        attributes["gen_ai.usage.cache_write.input_tokens"] = call["cache_write"]
    if "reasoning" in call:
        attributes["gen_ai.usage.reasoning.output_tokens"] = call["reasoning"]
    return attributes


def send_runs(server: Running, runs: int) -> None:
    with tracer_provider(server, "grpc", service="finance-app", resource={"deployment.environment.name": "prod"}) as p:
        tracer = p.get_tracer("finance-tests")
        sdk = p.get_tracer("com.anthropic.sdk.python")
        for index in range(runs):
            owner = OWNERS[index % len(OWNERS)]
            with tracer.start_as_current_span("handle", kind=SpanKind.SERVER, attributes=owner):
                for offset in range(1 + index % 3):
                    call = CALLS[(index + offset) % len(CALLS)]
                    with tracer.start_as_current_span(f"chat {call['model']}", kind=SpanKind.CLIENT,
                                                      attributes=_usage(call)):  # fmt: skip
                        if call["provider"] == "anthropic" and index % 2 == 0:
                            # The SDK's own span of the same call (same usage): a view, counted once.
                            with sdk.start_as_current_span("messages.create", attributes=_usage(call)):
                                pass


@pytest.fixture(scope="package")
def ledger(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    settings = make_settings(chdb_path, tmp_path_factory.mktemp("finance-data"), f"t_{uuid.uuid4().hex[:12]}")
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
        runs = 24
        send_runs(server, runs)
        server.wait_idle(timeout=90)
        end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=2)
        yield Ledger(server, start, end, runs)
    finally:
        app.stop()


@pytest.fixture(scope="package")
def loaded(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A ledger with charge spans and two cost pools allocated (``tests/finance/loaded.py``)."""
    yield from loaded_ledger(chdb_path, tmp_path_factory.mktemp("finance-loaded"))
