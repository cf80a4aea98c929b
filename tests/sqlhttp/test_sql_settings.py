"""The ``sql`` settings: loopback by default, a password required beyond it, never shown,
and the endpoint off when empty or when the store is a ClickHouse server."""

from __future__ import annotations

import logging

import httpx
import pytest

from otelspend.app import OtelSpend
from otelspend.settings import ConfigError, load_settings
from tests.conftest import make_settings


def test_defaults():
    sql = load_settings(environ={}).sql
    assert sql.address == "127.0.0.1:8123" and sql.password is None
    assert (sql.max_concurrent_queries, sql.max_threads, sql.max_execution_seconds) == (2, 1, 30.0)


@pytest.mark.parametrize("address", ["127.0.0.1:8123", "[::1]:8123", "localhost:8123", "127.0.0.2:0", ""])
def test_loopback_or_off_needs_no_password(address):
    assert load_settings(environ={"OTELSPEND_SQL_ADDRESS": address}).sql.address == address


def test_beyond_loopback_requires_a_password():
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"OTELSPEND_SQL_ADDRESS": "0.0.0.0:8123"})
    assert "sql.password (default) = None: required when sql.address (0.0.0.0:8123) listens beyond loopback" in str(
        caught.value
    )
    env = {"OTELSPEND_SQL_ADDRESS": "0.0.0.0:8123", "OTELSPEND_SQL_PASSWORD": "long-enough-1"}
    sql = load_settings(environ=env).sql
    assert sql.password is not None and sql.password.get_secret_value() == "long-enough-1"
    assert "long-enough-1" not in repr(sql) and "long-enough-1" not in str(sql)


def test_a_bad_password_is_named_but_never_shown():
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"OTELSPEND_SQL_PASSWORD": "short"})
    message = str(caught.value)
    assert "sql.password (env OTELSPEND_SQL_PASSWORD)" in message and "at least 8 characters" in message
    assert "short" not in message


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        pytest.param({"OTELSPEND_SQL_ADDRESS": "nowhere"}, "expected host:port", id="address"),
        pytest.param({"OTELSPEND_SQL_MAX_THREADS": "0"}, "greater than or equal to 1", id="threads"),
        pytest.param({"OTELSPEND_SQL_MAX_EXECUTION_SECONDS": "0"}, "greater than 0", id="time"),
        pytest.param({"OTELSPEND_SQL_PASWORD": "x"}, "did you mean OTELSPEND_SQL_PASSWORD", id="typo"),
    ],
)
def test_invalid_settings_stop_the_start(env, problem):
    with pytest.raises(ConfigError, match=problem):
        load_settings(environ=env)


def test_empty_address_turns_the_endpoint_off(start_server):
    server = start_server(sql={"address": ""})
    assert server.addresses.sql == "" and " sql=" not in server.addresses.line()


def test_with_a_clickhouse_server_the_endpoint_stays_off(tmp_path, chdb_path, caplog):
    settings = make_settings(chdb_path, tmp_path / "data", "unused", clickhouse={"dsn": "http://127.0.0.1:9"})
    app = OtelSpend(settings)
    with caplog.at_level(logging.INFO, logger="otelspend"):
        try:
            addresses = app.start(wait_for_store=0.1)
            assert addresses.sql == ""
            assert httpx.get(f"http://{addresses.api}/healthz").status_code == 200
        finally:
            app.stop()
    assert "sql endpoint off: the store is a ClickHouse server" in caplog.text
