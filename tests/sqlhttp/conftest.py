"""One otelspend server with the SQL endpoint on, loaded once with demo traffic.

The demo plan goes through the official OTel SDK to the real server on chDB (as
``otelspend demo`` does); the endpoint tests then read it through real clients.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.client import Client

from otelspend.app import OtelSpend
from otelspend.demo import PlannedRun, plan_runs
from otelspend.demo_sender import send
from otelspend.settings import split_address
from tests.conftest import Running, make_settings

PASSWORD = "endpoint-secret-1"
CREDENTIALS = ("otelspend", PASSWORD)
Auth = tuple[str, str] | None
DEMO_RUNS = 400
DEMO_DAYS = 3.0
DEMO_SEED = 20261205


@dataclass
class Loaded:
    server: Running
    plans: list[PlannedRun]
    now_ns: int

    @property
    def host_port(self) -> tuple[str, int]:
        return split_address(self.server.addresses.sql)

    def client(self, **kwargs: Any) -> Client:
        host, port = self.host_port
        kwargs.setdefault("username", "otelspend")
        kwargs.setdefault("password", PASSWORD)
        return clickhouse_connect.get_client(host=host, port=port, **kwargs)

    def post(self, sql: str | bytes, *, auth: Auth = CREDENTIALS, **kwargs: Any) -> httpx.Response:
        content = sql.encode() if isinstance(sql, str) else sql
        return httpx.post(self.server.sql_url + "/", content=content, auth=auth, timeout=60, **kwargs)

    def get(self, params: dict[str, str], *, auth: Auth = CREDENTIALS, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.server.sql_url + "/", params=params, auth=auth, timeout=60, **kwargs)

    def rest(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.server.api_url + path, params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="package")
def loaded(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    settings = make_settings(
        chdb_path,
        tmp_path_factory.mktemp("sql-data"),
        f"t_sql_{uuid.uuid4().hex[:10]}",
        sql={"address": "127.0.0.1:0", "password": PASSWORD, "max_concurrent_queries": 2},
    )
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        now_ns = time.time_ns()
        plans = plan_runs(DEMO_RUNS, DEMO_DAYS, seed=DEMO_SEED, now_ns=now_ns)
        send(plans, server.grpc_endpoint, "grpc")
        server.wait_idle(timeout=90)
        yield Loaded(server, plans, now_ns)
    finally:
        app.stop()


@pytest.fixture(scope="package")
def cc(loaded: Loaded) -> Iterator[Client]:
    """clickhouse-connect's HTTP client with its defaults (Native transfer, compression on)."""
    client = loaded.client()
    yield client
    client.close()


@pytest.fixture
def server_with(start_server: Callable[..., Running]) -> Callable[..., Running]:
    """A fresh server with the given ``sql`` settings (no data)."""

    def start(**sql: Any) -> Running:
        return start_server(sql={"address": "127.0.0.1:0", **sql})

    return start
