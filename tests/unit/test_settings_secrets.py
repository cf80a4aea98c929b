"""Secret settings: typed as secrets, never echoed by a validation error, readable from a
file only the service user can read (``OTELSPEND_*_FILE`` or ``<field>_file:`` in YAML)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from otelspend.settings import (
    ConfigError,
    Settings,
    env_names,
    load_settings,
    reference_markdown,
    secret_file_env_names,
)
from tests import canary

VALID = "valid-token-0001"


def problems(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**{"environ": {}, **kwargs})  # type: ignore[arg-type]
    return str(info.value)


def secret_file(tmp_path: Path, content: str, name: str = "secret", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(content)
    path.chmod(mode)
    return path


def test_a_too_short_api_token_is_named_not_shown() -> None:
    """The issue's first example: the error says which key, from where, and what is expected."""
    message = problems(environ={"OTELSPEND_API_TOKENS": "apitok"})
    assert (
        "api.tokens.0 (env OTELSPEND_API_TOKENS) = '***' (6 characters): each API token must be at least 8 characters"
    ) in message
    assert "apitok" not in message


def test_one_short_token_in_a_list_shows_neither_it_nor_the_valid_ones() -> None:
    message = problems(environ={"OTELSPEND_API_TOKENS": f"{canary.API_TOKEN},apitok,{VALID}"})
    assert "api.tokens.1 (env OTELSPEND_API_TOKENS) = '***' (6 characters)" in message
    for value in (canary.API_TOKEN, "apitok", VALID):
        assert value not in message


@pytest.mark.parametrize(
    ("environ", "expected", "hidden"),
    [
        pytest.param(
            {"OTELSPEND_OTLP_INGEST_TOKENS": f"acme:{VALID},beta:short"},
            "otlp.ingest_tokens.1.token (env OTELSPEND_OTLP_INGEST_TOKENS) = '***' (5 characters): "
            "an ingest token must be at least 8 characters",
            ["short", VALID],
            id="short-ingest-token",
        ),
        pytest.param(
            {"OTELSPEND_OTLP_INGEST_TOKENS": f"acme {VALID}"},
            "otlp.ingest_tokens (env OTELSPEND_OTLP_INGEST_TOKENS) = '***' (21 characters): expected name:token pairs",
            [VALID],
            id="unparseable-pairs",
        ),
        pytest.param(
            {"OTELSPEND_OTLP_INGEST_TOKENS": f"acme prod:{VALID}"},
            "otlp.ingest_tokens.0.name (env OTELSPEND_OTLP_INGEST_TOKENS) = 'acme prod': String should match",
            [VALID],
            id="the-name-is-not-secret",
        ),
        pytest.param(
            {"OTELSPEND_CLICKHOUSE_DSN": f"ftp://otelspend:{canary.DSN_PASSWORD}@ch:21"},
            "clickhouse.dsn (env OTELSPEND_CLICKHOUSE_DSN) = 'ftp://otelspend:***@ch:21': expected a chdb://",
            [canary.DSN_PASSWORD],
            id="dsn-shown-redacted",
        ),
    ],
)
def test_secret_inputs_are_masked_in_errors(environ: dict[str, str], expected: str, hidden: list[str]) -> None:
    message = problems(environ=environ)
    assert expected in message
    assert not [value for value in hidden if value in message]


def test_loaded_settings_never_show_a_secret() -> None:
    settings = load_settings(
        environ={
            "OTELSPEND_API_TOKENS": canary.API_TOKEN,
            "OTELSPEND_OTLP_INGEST_TOKENS": f"{canary.INGEST_NAME}:{canary.INGEST_TOKEN}",
            "OTELSPEND_CLICKHOUSE_DSN": f"https://otelspend:{canary.DSN_PASSWORD}@ch:8443/?access_token={VALID}",
        }
    )
    for text in (str(settings), repr(settings), settings.model_dump_json(), str(settings.model_dump(mode="json"))):
        assert not [s for s in (canary.API_TOKEN, canary.INGEST_TOKEN, canary.DSN_PASSWORD, VALID) if s in text]
    assert canary.INGEST_NAME in repr(settings)
    assert str(settings.clickhouse.dsn) == "https://otelspend:***@ch:8443/?access_token=***"
    assert settings.api.tokens[0].get_secret_value() == canary.API_TOKEN


def test_a_validation_error_printed_by_anyone_hides_its_input() -> None:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate({"api": {"tokens": [canary.API_TOKEN, "apitok"]}})
    assert "apitok" not in str(info.value) and canary.API_TOKEN not in str(info.value)


def test_secrets_from_files_named_by_the_environment(tmp_path: Path) -> None:
    tokens = secret_file(tmp_path, f"{canary.API_TOKEN}\n{VALID}\n", "api")
    ingest = secret_file(tmp_path, f"{canary.INGEST_NAME}:{canary.INGEST_TOKEN}\n", "ingest")
    dsn = secret_file(tmp_path, f"http://otelspend:{canary.DSN_PASSWORD}@ch:8123\n", "dsn")
    settings = load_settings(
        environ={
            "OTELSPEND_API_TOKENS_FILE": str(tokens),
            "OTELSPEND_OTLP_INGEST_TOKENS_FILE": str(ingest),
            "OTELSPEND_CLICKHOUSE_DSN_FILE": str(dsn),
        }
    )
    assert [t.get_secret_value() for t in settings.api.tokens] == [canary.API_TOKEN, VALID]
    assert [(t.name, t.token.get_secret_value()) for t in settings.otlp.ingest_tokens] == [
        (canary.INGEST_NAME, canary.INGEST_TOKEN)
    ]
    assert settings.clickhouse.dsn.get_secret_value() == f"http://otelspend:{canary.DSN_PASSWORD}@ch:8123"


def test_secrets_from_files_named_in_the_yaml(tmp_path: Path) -> None:
    tokens = secret_file(tmp_path, canary.API_TOKEN, "api")
    ingest = secret_file(tmp_path, canary.INGEST_TOKEN, "ingest")
    config = tmp_path / "otelspend.yaml"
    config.write_text(
        f"api:\n  tokens_file: {tokens}\n"
        f"otlp:\n  ingest_tokens:\n    - {{name: {canary.INGEST_NAME}, token_file: {ingest}}}\n"
        f"    - {{name: inline, token: {VALID}}}\n"
    )
    settings = load_settings(config_file=config, environ={})
    assert [t.get_secret_value() for t in settings.api.tokens] == [canary.API_TOKEN]
    assert [(t.name, t.token.get_secret_value()) for t in settings.otlp.ingest_tokens] == [
        (canary.INGEST_NAME, canary.INGEST_TOKEN),
        ("inline", VALID),
    ]


def test_ingest_tokens_as_a_yaml_mapping(tmp_path: Path) -> None:
    config = tmp_path / "otelspend.yaml"
    config.write_text(f"otlp:\n  ingest_tokens: {{acme-prod: {VALID}, beta: {canary.INGEST_TOKEN}}}\n")
    tokens = load_settings(config_file=config, environ={}).otlp.ingest_tokens
    assert [(t.name, t.token.get_secret_value()) for t in tokens] == [
        ("acme-prod", VALID),
        ("beta", canary.INGEST_TOKEN),
    ]


def test_a_short_secret_from_a_file_names_the_file_not_the_value(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "apitok\n")
    message = problems(environ={"OTELSPEND_API_TOKENS_FILE": str(path)})
    assert f"api.tokens.0 (env OTELSPEND_API_TOKENS_FILE, file {path}) = '***' (6 characters)" in message
    assert "apitok" not in message


@pytest.mark.parametrize(
    ("mode", "extra_env", "expected"),
    [
        pytest.param(
            0o644,
            {},
            "api.tokens (env OTELSPEND_API_TOKENS_FILE, file {path}): other users can read or write it (mode 0644)",
            id="world-readable",
        ),
        pytest.param(
            0o600,
            {"OTELSPEND_API_TOKENS": VALID},
            "OTELSPEND_API_TOKENS_FILE: set either OTELSPEND_API_TOKENS or OTELSPEND_API_TOKENS_FILE, not both",
            id="both-forms",
        ),
    ],
)
def test_an_unusable_secret_file_stops_the_start(
    tmp_path: Path, mode: int, extra_env: dict[str, str], expected: str
) -> None:
    path = secret_file(tmp_path, canary.API_TOKEN, mode=mode)
    message = problems(environ={"OTELSPEND_API_TOKENS_FILE": str(path), **extra_env})
    assert expected.format(path=path) in message
    assert canary.API_TOKEN not in message and VALID not in message


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        pytest.param(
            "api:\n  tokens: [{token}]\n  tokens_file: {path}\n",
            "api.tokens_file (config file {config}): set either tokens or tokens_file, not both",
            id="both-forms",
        ),
        pytest.param(
            "rate_card_file: {path}\n",
            "rate_card_file (config file {config}): unknown key (did you mean rate_card?)",
            id="only-secrets-come-from-files",
        ),
        pytest.param(
            "clickhouse:\n  dsn_file: {path}.missing\n",
            "clickhouse.dsn (config file {config}, file {path}.missing): cannot read it (No such file or directory)",
            id="missing-file",
        ),
    ],
)
def test_yaml_secret_file_problems(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = secret_file(tmp_path, canary.API_TOKEN)
    config = tmp_path / "otelspend.yaml"
    config.write_text(yaml_text.format(token=VALID, path=path))
    message = problems(config_file=config)
    assert expected.format(config=config, path=path) in message
    assert canary.API_TOKEN not in message and VALID not in message


def test_broken_yaml_is_located_without_quoting_the_line(tmp_path: Path) -> None:
    config = tmp_path / "otelspend.yaml"
    config.write_text(f"api:\n  tokens: [{canary.API_TOKEN}\nclickhouse: {{}}\n")
    message = problems(config_file=config)
    assert f"config file {config}: not valid YAML (" in message and "line 3, column" in message
    assert canary.API_TOKEN not in message


def test_file_variables_exist_for_exactly_the_secret_settings() -> None:
    assert secret_file_env_names() == {
        "OTELSPEND_OTLP_INGEST_TOKENS_FILE": ("otlp", "ingest_tokens"),
        "OTELSPEND_API_TOKENS_FILE": ("api", "tokens"),
        "OTELSPEND_CLICKHOUSE_DSN_FILE": ("clickhouse", "dsn"),
        "OTELSPEND_BILLING_OPENAI_ADMIN_KEY_FILE": ("billing", "openai_admin_key"),
        "OTELSPEND_BILLING_ANTHROPIC_ADMIN_KEY_FILE": ("billing", "anthropic_admin_key"),
        "OTELSPEND_ALERTS_WEBHOOKS_FILE": ("alerts", "webhooks"),
        "OTELSPEND_ALERTS_WEBHOOK_URL_FILE": ("alerts", "webhook_url"),
        "OTELSPEND_ALERTS_WEBHOOK_SECRET_FILE": ("alerts", "webhook_secret"),
        "OTELSPEND_SQL_PASSWORD_FILE": ("sql", "password"),
    }
    assert not [name for name in env_names() if name.endswith("_FILE")]
    message = problems(environ={"OTELSPEND_API_TOKEN_FILE": "/run/secrets/api"})
    assert "OTELSPEND_API_TOKEN_FILE: unknown setting (did you mean OTELSPEND_API_TOKENS_FILE?)" in message


def test_the_reference_marks_secrets_and_their_file_variable() -> None:
    rows = {line.split("|")[1].strip(" `"): line for line in reference_markdown().splitlines()[2:]}
    secret_rows = {key for key, line in rows.items() if "**Secret**" in line}
    assert secret_rows == {
        "otlp.ingest_tokens",
        "api.tokens",
        "clickhouse.dsn",
        "sql.password",
        "billing.openai_admin_key",
        "billing.anthropic_admin_key",
        "alerts.webhooks",
        "alerts.webhook_url",
        "alerts.webhook_secret",
    }
    assert "`OTELSPEND_CLICKHOUSE_DSN` or `OTELSPEND_CLICKHOUSE_DSN_FILE`" in rows["clickhouse.dsn"]
    assert "`chdb://./data/chdb`" in rows["clickhouse.dsn"]


def test_serve_refuses_a_short_token_without_printing_it(capsys: pytest.CaptureFixture[str]) -> None:
    from otelspend.cli import main

    assert main(["serve", "--api-tokens", f"{canary.API_TOKEN},apitok"]) == 2
    err = capsys.readouterr().err
    assert "api.tokens.1 (flag) = '***' (6 characters): each API token must be at least 8 characters" in err
    assert "apitok" not in err


def test_the_building_blocks_serve_secrets_of_any_shape(tmp_path: Path) -> None:
    """Sections other stages add (provider keys, webhooks with signing secrets and tokened URLs)
    get files, masking and the reference from their types alone; shown here on look-alikes."""
    from pydantic import Field, SecretStr

    from otelspend.redact import holds_secret, is_secret_path
    from otelspend.settings import SecretUrl, Section, _read_secret_files

    class Webhook(Section):
        name: str = ""
        url: SecretUrl = SecretUrl("")
        secret: SecretStr | None = None

    class Alerts(Section):
        webhooks: list[Webhook] = Field(default_factory=list)
        admin_key: SecretStr | None = None

    key = secret_file(tmp_path, canary.API_TOKEN, "key")
    hook = secret_file(tmp_path, f"https://hooks.example/services/{canary.OTHER_TOKEN}", "hook")
    problems_found: list[str] = []
    raw = _read_secret_files(
        {"admin_key_file": str(key), "webhooks": [{"name": "ops", "url_file": str(hook), "secret": VALID}]},
        Alerts,
        ("alerts",),
        "config file x.yaml",
        {},
        problems_found,
    )
    alerts = Alerts.model_validate(raw)
    assert problems_found == []
    assert alerts.admin_key is not None and alerts.admin_key.get_secret_value() == canary.API_TOKEN
    assert str(alerts.webhooks[0].url) == "https://hooks.example/***"
    assert canary.OTHER_TOKEN not in repr(alerts) and VALID not in repr(alerts)
    assert holds_secret(Alerts) and is_secret_path(Alerts, ("webhooks", "0", "url"))
    assert not is_secret_path(Alerts, ("webhooks", "0", "name"))
