"""Property-based run of schemathesis over the published OpenAPI, in-process (ASGI), against
an app with a real store and pipeline: no generated request, valid or not, gets a 5xx."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from otelspend.api.deps import ApiContext
from otelspend.api.main import create_app
from otelspend.app import OtelSpend
from tests import canary
from tests.api.ledger import build, send
from tests.conftest import Running, make_settings

EXAMPLES = 25
"""Per operation and generation mode: keeps the whole run well under a minute."""


@pytest.fixture(scope="module")
def app(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings_ = make_settings(chdb_path, tmp_path_factory.mktemp("fuzz"), f"t_fuzz_{uuid.uuid4().hex[:10]}")
    server = OtelSpend(settings_)
    server.start()
    try:
        running = Running(server)
        send(running.http_url, build(time.time_ns(), runs=8, seed=3))
        running.wait_idle(60)
        yield create_app(ApiContext(settings=settings_, store=server.store, metrics=server.metrics, commands=server))
    finally:
        server.stop()


def _operations(app: FastAPI) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_request_gets_a_server_error(app: FastAPI) -> None:
    failures: list[str] = []
    seen: dict[str, dict[int, int]] = {}
    operations = _operations(app)
    assert {op.label for op in operations} >= {
        "GET /v1/rollups", "GET /v1/timeseries", "GET /v1/runs", "GET /v1/runs/{run_id}", "GET /v1/outliers",
        "GET /v1/unpriced", "GET /v1/rate-cards", "POST /v1/runs/{run_id}/outcome",
        "POST /v1/workflows/{workflow_id}/outcome", "POST /v1/admin/rollups/rebuild",
    }  # fmt: skip
    for operation in operations:
        statuses = seen.setdefault(operation.label, {})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not operation.path_parameters and not _has_inputs(operation):
                continue  # nothing to make invalid (e.g. /healthz)
            _fuzz(operation, mode, statuses, failures)
    assert not failures, "\n".join(failures[:20])
    # The fuzzing reached the handlers, not only the validation layer.
    assert seen["GET /v1/rollups"].get(200, 0) > 0 and seen["GET /v1/rollups"].get(422, 0) > 0
    assert seen["POST /v1/runs/{run_id}/outcome"].get(202, 0) > 0


def _fuzz(operation: Any, mode: GenerationMode, statuses: dict[int, int], failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        # The app's canary API token, as a configured client sends it; its answers are watched too.
        response = case.call(headers={"Authorization": f"Bearer {canary.API_TOKEN}"})
        canary.check_text(response.content, f"answer to {operation.label}")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append(
                f"{operation.label} {case.path_parameters} {case.query} {case.body}: "
                f"{response.status_code} {response.text[:300]}"
            )

    check()


def _has_inputs(operation: Any) -> bool:
    return bool(operation.query or operation.body or operation.headers)
