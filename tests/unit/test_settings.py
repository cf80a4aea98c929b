from __future__ import annotations

from pathlib import Path

import pytest

from otelspend.settings import ConfigError, env_names, load_settings, split_address

TESTDATA = Path(__file__).parent.parent / "testdata" / "settings"


def test_defaults_bind_loopback_and_embedded_store():
    settings = load_settings(environ={})
    assert settings.otlp.grpc_address == "127.0.0.1:4317"
    assert settings.otlp.http_address == "127.0.0.1:4318"
    assert settings.api.address == "127.0.0.1:8000"
    assert settings.clickhouse.dsn.get_secret_value() == "chdb://./data/chdb"
    assert settings.otlp.keep_content is False
    assert settings.otlp.max_request_bytes == 16 * 1024 * 1024
    assert settings.api.tokens == [] and settings.otlp.ingest_tokens == []


def test_required_environment_names_exist():
    names = env_names()
    for name in (
        "OTELSPEND_CLICKHOUSE_DSN",
        "OTELSPEND_OTLP_GRPC_ADDRESS",
        "OTELSPEND_OTLP_HTTP_ADDRESS",
        "OTELSPEND_API_ADDRESS",
        "OTELSPEND_RATE_CARD",
        "OTELSPEND_OWNERSHIP",
        "OTELSPEND_API_TOKENS",
    ):
        assert name in names


def test_yaml_then_env_then_flags(tmp_path):
    env = {"OTELSPEND_CLICKHOUSE_DATABASE": "from_env", "OTELSPEND_API_TOKENS": "tok-aaaaaaaa,tok-bbbbbbbb"}
    settings = load_settings({"clickhouse": {"batch_rows": 7}}, config_file=TESTDATA / "valid.yaml", environ=env)
    assert settings.clickhouse.database == "from_env"  # env beats file
    assert settings.clickhouse.batch_rows == 7  # flag beats file
    assert settings.clickhouse.dsn.get_secret_value() == "http://default:pw@clickhouse:8123"  # file beats default
    assert [t.get_secret_value() for t in settings.api.tokens] == ["tok-aaaaaaaa", "tok-bbbbbbbb"]
    assert settings.otlp.ingest_tokens[0].name == "acme-prod"
    assert split_address(settings.otlp.http_address) == ("::1", 4318)


def test_ingest_tokens_from_env():
    settings = load_settings(environ={"OTELSPEND_OTLP_INGEST_TOKENS": "acme:secret-acme-1, beta:secret-beta-2"})
    assert [(t.name, t.token.get_secret_value()) for t in settings.otlp.ingest_tokens] == [
        ("acme", "secret-acme-1"),
        ("beta", "secret-beta-2"),
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            {"config_file": TESTDATA / "typo_section_key.yaml"},
            ["clickhouse.dns", "unknown key", "did you mean dsn"],
            id="typo-in-section-key",
        ),
        pytest.param(
            {"config_file": TESTDATA / "typo_section.yaml"},
            ["clikhouse", "unknown key", "did you mean clickhouse"],
            id="typo-in-section",
        ),
        pytest.param(
            {"environ": {"OTELSPEND_CLICKHOUSE_DNS": "chdb://x"}},
            ["OTELSPEND_CLICKHOUSE_DNS", "unknown setting", "did you mean OTELSPEND_CLICKHOUSE_DSN"],
            id="typo-in-env",
        ),
        pytest.param(
            {"environ": {"OTELSPEND_OTLP_GRPC_ADDRESS": "localhost"}},
            ["otlp.grpc_address", "env OTELSPEND_OTLP_GRPC_ADDRESS", "'localhost'", "host:port"],
            id="address-without-port",
        ),
        pytest.param(
            {"environ": {"OTELSPEND_API_ADDRESS": "127.0.0.1:99999"}},
            ["api.address", "'127.0.0.1:99999'", "0 to 65535"],
            id="port-out-of-range",
        ),
        pytest.param(
            {"environ": {"OTELSPEND_API_TOKENS": "short"}},
            ["api.tokens", "at least 8 characters"],
            id="api-token-too-short",
        ),
        pytest.param(
            {"environ": {"OTELSPEND_RATE_CARD": "/nonexistent/card.yaml"}},
            ["rate_card", "/nonexistent/card.yaml", "none exists"],
            id="rate-card-missing",
        ),
        pytest.param(
            {"config_file": TESTDATA / "not_a_mapping.yaml"},
            ["expected a mapping"],
            id="yaml-not-a-mapping",
        ),
    ],
)
def test_invalid_configuration_names_key_value_and_expectation(source, expected):
    kwargs = {"environ": {}, **source}
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_together():
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=TESTDATA / "bad_values.yaml", environ={})
    message = str(info.value)
    for key in ("otlp.grpc_address", "otlp.max_request_bytes", "clickhouse.dsn", "clickhouse.batch_rows"):
        assert key in message
    assert message.count("config file") == 4


def test_serve_fails_at_start_with_the_key(capsys):
    from otelspend.cli import main

    assert main(["serve", "--otlp-http-address", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "otlp.http_address (flag) = 'nowhere'" in err


@pytest.mark.parametrize(
    ("value", "cores", "workers"),
    [
        pytest.param("auto", 2, 1, id="auto-two-cores"),
        pytest.param("auto", 1, 0, id="auto-one-core"),
        pytest.param("auto", 32, 4, id="auto-capped"),
        pytest.param("0", 8, 0, id="one-process"),
        pytest.param("3", 1, 3, id="explicit"),
    ],
)
def test_receiver_workers_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, cores: int, workers: int
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    settings = load_settings(environ={"OTELSPEND_PIPELINE_WORKERS": value})
    assert settings.pipeline.worker_count() == workers


@pytest.mark.parametrize("value", ["-1", "65", "many"])
def test_a_wrong_worker_count_is_refused_with_its_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.workers"):
        load_settings(environ={"OTELSPEND_PIPELINE_WORKERS": value})
