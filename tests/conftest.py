"""Shared fixtures: real chDB (one temp path per test process, one database per test),
the real otelspend server in-process on ephemeral loopback ports, and the official OTel
SDK with its OTLP exporters. Every server carries the secret canaries (``tests/canary.py``)
and every test fails if one of them shows up in its logs, output or HTTP answers."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otelspend.app import OtelSpend
from otelspend.clickhouse.client import Store
from otelspend.settings import Settings, load_settings
from tests import canary
from tests.canary import (
    pytest_configure,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)

__all__ = [
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
]
pytest_plugins = ["pytester"]  # tests/test_canary.py runs deliberately leaking suites


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chDB allows one data path per process: every in-process test shares this one."""
    return tmp_path_factory.mktemp("chdb")


def make_settings(chdb_path: Path, data_dir: Path, database: str, **overrides: Any) -> Settings:
    """Test settings: loopback, ephemeral ports, fast settling, and the canary secrets (API and
    ingest tokens, an alert webhook; an override of ``tokens``, ``ingest_tokens`` or
    ``webhook_url`` replaces them)."""
    secrets = canary.settings_overrides()
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "node_id": "test-node",
        "clickhouse": {"dsn": f"chdb://{chdb_path}", "database": database, "flush_interval_ms": 20},
        "otlp": {"grpc_address": "127.0.0.1:0", "http_address": "127.0.0.1:0", **secrets["otlp"]},
        "api": {"address": "127.0.0.1:0", **secrets["api"]},
        "sql": {"address": "127.0.0.1:0"},
        "billing": secrets["billing"],
        "runs": {"settle_seconds": 0.3, "root_wait_seconds": 2.0, "emit_interval_seconds": 0.05},
        "wal": {"fsync": False},
        # One process: in-process servers start fast; tests of the worker processes ask for them.
        "pipeline": {"workers": 0},
        "alerts": dict(secrets["alerts"]),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(base, environ={})


class Running:
    """A started server plus helpers to query its database."""

    def __init__(self, app: OtelSpend) -> None:
        self.app = app
        self.addresses = app.addresses
        self.store = app.store
        self.db = app.store.database
        canary.forget(*(a for a in dataclasses.astuple(self.addresses) if a))
        if canary.holds_canary_tokens(app.settings):
            canary.register(api=self.addresses.api)
        if any(t.token.get_secret_value() == canary.INGEST_TOKEN for t in app.settings.otlp.ingest_tokens):
            canary.register(otlp_http=self.addresses.otlp_http)

    @property
    def ingest_headers(self) -> dict[str, str]:
        """What an OTLP client of this server sends to authenticate ({} when it takes anything or
        only tokens its test gives out)."""
        if self.addresses.otlp_http in canary.registered():
            return {"authorization": f"Bearer {canary.INGEST_TOKEN}"}
        return {}

    @property
    def grpc_endpoint(self) -> str:
        return self.addresses.otlp_grpc

    @property
    def http_url(self) -> str:
        return f"http://{self.addresses.otlp_http}"

    @property
    def api_url(self) -> str:
        return f"http://{self.addresses.api}"

    @property
    def sql_url(self) -> str:
        return f"http://{self.addresses.sql}"

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return self.store.rows(sql.replace("{db}", self.db), params)

    def dicts(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return self.store.dicts(sql.replace("{db}", self.db), params)

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.store.scalar(sql.replace("{db}", self.db), params)

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Until every accepted span is stored and no run is left open."""
        wait_for(
            lambda: (
                self.app.pipeline.queued_spans == 0
                and self.app.stitcher.open_count() == 0
                and self.app.pipeline.pending_runs == 0
            ),
            timeout,
            "pipeline idle",
        )
        # One more pipeline round-trip so the last emission has been written.
        self.app.pipeline.call(lambda: None)
        controls = self.app.controls()
        if controls is not None:  # the spend controls have seen it all and recorded their alerts
            wait_for(controls.idle, timeout, "controls idle")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def start_server(chdb_path: Path, tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[OtelSpend] = []

    def start(database: str | None = None, data_dir: Path | None = None, **overrides: Any) -> Running:
        database = database or f"t_{uuid.uuid4().hex[:12]}"
        settings = make_settings(chdb_path, data_dir or tmp_path / f"data-{len(started)}", database, **overrides)
        app = OtelSpend(settings)
        started.append(app)
        app.start()
        return Running(app)

    yield start
    for app in started:
        app.stop()


@pytest.fixture
def server(start_server: Callable[..., Running]) -> Running:
    return start_server()


@pytest.fixture
def store(chdb_path: Path) -> Iterator[Store]:
    """A migrated database of its own, without a server."""
    from otelspend.clickhouse.migrate import migrate

    s = Store(f"chdb://{chdb_path}", f"t_{uuid.uuid4().hex[:12]}")
    migrate(s)
    yield s
    s.close()
