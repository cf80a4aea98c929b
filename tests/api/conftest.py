"""One running server loaded with the test ledger (tests/api/ledger.py), shared by the API
tests: ingest over real OTLP/HTTP, outcomes over the real REST API."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from otelspend.api.deps import ApiContext
from otelspend.api.main import create_app
from otelspend.app import OtelSpend
from otelspend.metrics import Metrics
from otelspend.settings import ApiSettings, Settings
from tests.api.ledger import Ledger, build, late_spans, post, send
from tests.conftest import Running, make_settings


@dataclass
class Loaded:
    server: Running
    ledger: Ledger
    now_ns: int
    outcomes: dict[int, str] = field(default_factory=dict)
    """Run index -> the outcome that must win."""

    def run_id(self, index: int) -> str:
        return self.ledger.runs[index].run_id


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat()


def _post_outcomes(api: httpx.Client, ledger: Ledger) -> dict[int, str]:
    wins: dict[int, str] = {}
    for run in ledger.runs:
        i = run.index
        outcome = "accepted" if i % 5 == 2 else "rejected" if i % 10 == 3 else "edited" if i % 10 == 8 else None
        if i == 17:
            outcome = "escalated"
        if outcome is None:
            continue
        body = {"outcome": outcome, "score": round(i / 50, 3), "label": f"review-{i}"}
        response = api.post(f"/v1/runs/{run.run_id}/outcome", json=body)
        assert response.status_code == 202, response.text
        wins[i] = outcome
    # Later outcome wins: 22 was accepted above, now edited, recorded an hour later.
    later = time.time_ns() + 3600 * 10**9
    response = api.post(
        f"/v1/runs/{ledger.runs[22].run_id}/outcome", json={"outcome": "edited", "recorded_at": _iso(later)}
    )
    assert response.status_code == 202, response.text
    wins[22] = "edited"
    # Earlier than the span-borne 'accepted' on run 26: the span's outcome stays.
    earlier = ledger.runs[26].start - 3600 * 10**9
    response = api.post(
        f"/v1/runs/{ledger.runs[26].run_id}/outcome", json={"outcome": "rejected", "recorded_at": _iso(earlier)}
    )
    assert response.status_code == 202, response.text
    wins[26] = "accepted"
    # A workflow outcome covers both of its runs.
    response = api.post("/v1/workflows/wf-shared/outcome", json={"outcome": "accepted", "score": 1.0})
    assert response.status_code == 202, response.text
    assert sorted(response.json()["updated_runs"]) == sorted([ledger.runs[10].run_id, ledger.runs[11].run_id])
    wins[10] = wins[11] = "accepted"
    return wins


@pytest.fixture(scope="session")
def loaded(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    settings = make_settings(
        chdb_path,
        tmp_path_factory.mktemp("api-data"),
        f"t_api_{uuid.uuid4().hex[:10]}",
        # No closed-run cache: duplicates and late spans of emitted runs take the store path.
        runs={"closed_cache_runs": 0},
    )
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        now = time.time_ns()
        ledger = build(now)
        sent = send(server.http_url, ledger)
        server.wait_idle(60)
        late = late_spans(ledger)
        for body in late.values():
            post(server.http_url, body)
        server.wait_idle(60)
        # Duplicates of already emitted runs: a first batch and a late span, re-sent.
        for run in ledger.runs[2::9]:
            post(server.http_url, sent[run.run_id][0])
        for body in list(late.values())[:2]:
            post(server.http_url, body)
        server.wait_idle(60)
        with httpx.Client(base_url=server.api_url, timeout=60) as api:
            wins = _post_outcomes(api, ledger)
        server.wait_idle(60)
        yield Loaded(server, ledger, now, wins)
    finally:
        app.stop()


@pytest.fixture(scope="session")
def api(loaded: Loaded) -> Iterator[httpx.Client]:
    """A real HTTP client against the running server's API."""
    with httpx.Client(base_url=loaded.server.api_url, timeout=60) as client:
        yield client


def client_with(loaded: Loaded, *, pipeline: bool = True, **api_settings: Any) -> TestClient:
    """A TestClient over a second app on the same store: other API settings (tokens,
    max_rows), and with or without the running pipeline (``pipeline=False``: read-only)."""
    base: Settings = loaded.server.app.settings
    api = ApiSettings.model_validate({**dict(base.api), **api_settings})  # validated: tokens are secrets
    settings = base.model_copy(update={"api": api})
    context = ApiContext(
        settings=settings,
        store=loaded.server.store,
        metrics=Metrics(),
        commands=loaded.server.app if pipeline else None,
    )
    return TestClient(create_app(context))
