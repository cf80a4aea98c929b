"""Secrets never leave the process, end to end: wrong tokens are refused, counted and logged
without the token; ingest-token names are stored, values never; introspection, metrics, the
dashboard and the store's error reports hold no secret; ``otelspend serve`` reads its
secrets from files. (The suite-wide canary watches every answer and log here as everywhere;
these tests drive the paths where a secret is most likely to slip out.)"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import grpc
import httpx
import pytest

from bench.server import ServerProcess, free_port
from otelspend.app import OtelSpend
from tests import canary
from tests.conftest import Running, make_settings, wait_for
from tests.e2e.test_ingest_protocol import PROTOBUF, chat, grpc_export
from tests.otlp import request

INTROSPECTION = ["/v1/rate-cards", "/v1/vocabulary", "/openapi.json", "/metrics", "/readyz", "/healthz"]
PAGES = ["/", "/runs", "/unpriced", "/login"]


def refused(server: Running, surface: str, reason: str) -> float:
    return server.app.metrics.value("otelspend_auth_refused_total", surface=surface, reason=reason)


def test_wrong_tokens_are_refused_counted_and_logged_without_the_token(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    payload = request([chat()]).SerializeToString()
    wrong = {**PROTOBUF, "authorization": f"Bearer {canary.WRONG_TOKEN}"}
    with caplog.at_level(logging.WARNING, logger="otelspend"):
        assert httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=wrong).status_code == 401
        anonymous = {**PROTOBUF, "authorization": ""}
        assert httpx.post(f"{server.http_url}/v1/traces", content=payload, headers=anonymous).status_code == 401
        with pytest.raises(grpc.RpcError) as info:
            grpc_export(server, payload, metadata=(("authorization", f"Bearer {canary.WRONG_TOKEN}"),))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

        bearer = {"Authorization": f"Bearer {canary.WRONG_TOKEN}"}
        assert httpx.get(f"{server.api_url}/v1/rollups", headers=bearer).status_code == 401
        page = httpx.get(
            f"{server.api_url}/runs", cookies={"otelspend_token": canary.WRONG_TOKEN}, follow_redirects=True
        )
        assert page.status_code == 200 and page.url.path == "/login"  # sent to sign in again
        login = httpx.post(f"{server.api_url}/login", data={"token": canary.WRONG_TOKEN, "next": "/"})
        assert login.status_code == 401 and "That token is not accepted." in login.text

    assert (refused(server, "otlp", "unknown"), refused(server, "otlp", "missing")) == (2, 1)
    assert refused(server, "api", "unknown") == 3
    metrics = httpx.get(f"{server.api_url}/metrics").text
    assert 'otelspend_auth_refused_total{reason="unknown",surface="otlp"} 2' in metrics
    # The first refusal of each surface is logged at once; the rest are counted until a minute passed.
    messages = [record.getMessage() for record in caplog.records]
    assert (
        "OTLP refused 1 request(s) without a valid bearer token (1 with an unknown token); tokens are never logged"
        in (messages)
    )
    assert any(message.startswith("API refused 1 request(s)") for message in messages)
    assert not [m for m in messages if canary.WRONG_TOKEN in m or canary.INGEST_TOKEN in m]


def test_ingest_token_names_are_stored_and_values_never(server: Running) -> None:
    for _ in range(3):  # the canary ingest token, sent by the test client as a configured exporter would
        response = httpx.post(
            f"{server.http_url}/v1/traces", content=request([chat()]).SerializeToString(), headers=PROTOBUF
        )
        assert response.status_code == 200
    assert wait_for(lambda: server.scalar("SELECT count() FROM {db}.spans FINAL") == 3)
    assert server.rows("SELECT DISTINCT ingest_token FROM {db}.spans FINAL") == [(canary.INGEST_NAME,)]
    server.wait_idle()
    # The write-ahead log keeps each request with the name it arrived under, never the token.
    logged = b"".join(path.read_bytes() for path in server.app.settings.wal_dir.rglob("*") if path.is_file())
    assert canary.INGEST_NAME.encode() in logged
    assert canary.INGEST_TOKEN.encode() not in logged


def test_introspection_metrics_and_dashboard_show_no_secret(server: Running) -> None:
    with httpx.Client(base_url=server.api_url, timeout=30) as client:  # authenticated by the canary's hook
        for path in INTROSPECTION + PAGES:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert canary.find(response.text) == [], path


def test_an_unreachable_store_is_reported_with_its_password_masked(
    chdb_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = f"http://otelspend:{canary.DSN_PASSWORD}@127.0.0.1:{free_port()}"
    settings = make_settings(chdb_path, tmp_path / "data", "t_unreachable", clickhouse={"dsn": dsn})
    app = OtelSpend(settings)
    with caplog.at_level(logging.INFO, logger="otelspend"):
        try:
            app.start(wait_for_store=0.5)
            server = Running(app)
            answer = httpx.get(f"{server.api_url}/readyz")
            assert answer.status_code == 503 and canary.DSN_PASSWORD not in answer.text
            wait_for(lambda: "store not reachable" in caplog.text, 20, "a retry to be logged")
        finally:
            app.stop()
    assert f"store http://otelspend:***@127.0.0.1:{dsn.rsplit(':', 1)[1]} database t_unreachable" in caplog.text
    assert canary.DSN_PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        pytest.param(["migrate"], "", id="migrate"),
        pytest.param(
            ["rollups", "rebuild", "--from", "2026-01-01", "--to", "2026-01-02", "--offline"],
            "cannot connect to http://otelspend:***@127.0.0.1:",
            id="rollups",
        ),
    ],
)
def test_commands_against_an_unreachable_store_never_print_its_password(
    argv: list[str], shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from otelspend.cli import main

    dsn = f"http://otelspend:{canary.DSN_PASSWORD}@127.0.0.1:{free_port()}"
    try:
        code, failure = main([*argv, "--clickhouse-dsn", dsn]), ""
    except Exception as exc:  # migrate lets the driver's connection error through
        code, failure = 1, " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__))
    out, err = capsys.readouterr()
    assert code != 0
    assert shown in err
    assert canary.DSN_PASSWORD not in failure + out + err


def test_serve_reads_its_secrets_from_files_and_logs_none(tmp_path: Path) -> None:
    secrets = canary.secret_files(tmp_path / "secrets")
    server = ServerProcess(tmp_path / "data", env={"OTELSPEND_NODE_ID": "secrets", **secrets}).start()
    try:
        url = f"{server.http_endpoint}/v1/traces"
        payload = request([chat()]).SerializeToString()
        wrong = {**PROTOBUF, "authorization": f"Bearer {canary.WRONG_TOKEN}"}
        assert httpx.post(url, content=payload, headers=wrong).status_code == 401
        good = {**PROTOBUF, "authorization": f"Bearer {canary.INGEST_TOKEN}"}
        assert httpx.post(url, content=payload, headers=good).status_code == 200
        api = f"http://{server.api_address}/v1/vocabulary"
        assert httpx.get(api, headers={"Authorization": ""}).status_code == 401
        assert httpx.get(api, headers={"Authorization": f"Bearer {canary.API_TOKEN}"}).status_code == 200
        assert server.metrics()["otelspend_auth_refused_total"] == 2
    finally:
        server.terminate()
    log = server.log_path.read_text()
    assert re.search(r"OTLP refused 1 request\(s\) without a valid bearer token", log), log
    canary.check_file(server.log_path, "log of otelspend serve")


def test_serve_logs_an_unreachable_store_with_its_password_masked(tmp_path: Path) -> None:
    port = free_port()
    dsn = f"http://otelspend:{canary.DSN_PASSWORD}@127.0.0.1:{port}"
    env = {"OTELSPEND_NODE_ID": "secrets", "OTELSPEND_CLICKHOUSE_STARTUP_WAIT_SECONDS": "0.5"}
    server = ServerProcess(tmp_path / "data", env=env, dsn=dsn).start()
    try:
        status, body = server.readyz()
        assert status == 503 and body["checks"]["store"].startswith("error")
    finally:
        server.terminate()
    log = server.log_path.read_text()
    assert f"store http://otelspend:***@127.0.0.1:{port} database otelspend not reachable yet" in log, log
    canary.check_file(server.log_path, "log of otelspend serve")
