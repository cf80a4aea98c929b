"""How secrets are shown (never), found in a settings model, read from files and kept out of
logs (otelspend/redact.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from otelspend.redact import (
    MAX_SECRET_FILE_BYTES,
    RedactSecrets,
    RejectedCredentials,
    SecretDsn,
    SecretFileError,
    SecretUrl,
    holds_secret,
    is_secret_path,
    read_secret_file,
    redact_url,
    secret_values,
    shown,
)

PASSWORD = "pa55-w0rd-x"


@pytest.mark.parametrize(
    ("url", "keep_path", "expected"),
    [
        pytest.param(f"http://otelspend:{PASSWORD}@ch:8123", True, "http://otelspend:***@ch:8123", id="dsn-password"),
        pytest.param("http://ch:8123/spend", True, "http://ch:8123/spend", id="dsn-nothing-secret"),
        pytest.param(
            f"https://ch:8443/?access_token={PASSWORD}&compress=1",
            True,
            "https://ch:8443/?access_token=***&compress=***",
            id="dsn-query-token",
        ),
        pytest.param("chdb://./data/chdb", True, "chdb://./data/chdb", id="embedded"),
        pytest.param(
            f"https://hooks.slack.com/services/T0/B0/{PASSWORD}",
            False,
            "https://hooks.slack.com/***",
            id="webhook-path-token",
        ),
        pytest.param(f"https://{PASSWORD}@api.example/hook", False, "https://***@api.example/***", id="userinfo-token"),
        pytest.param(f"https://h.example/hook?sig={PASSWORD}#{PASSWORD}", False, "https://h.example/***?sig=***#***"),
        pytest.param("https://h.example/", False, "https://h.example/", id="root-path"),
        pytest.param(f"{PASSWORD}", False, "***", id="not-a-url"),
        pytest.param(f"http://h:{PASSWORD}/", True, "***", id="malformed-port"),
    ],
)
def test_a_url_is_shown_without_its_credentials(url: str, keep_path: bool, expected: str) -> None:
    assert redact_url(url, keep_path=keep_path) == expected
    assert PASSWORD not in expected


def test_secret_types_never_show_the_value() -> None:
    class Model(BaseModel):
        token: SecretStr
        dsn: SecretDsn
        hook: SecretUrl

    model = Model.model_validate(
        {"token": PASSWORD, "dsn": f"http://u:{PASSWORD}@ch:8123/db", "hook": f"https://h.example/x?t={PASSWORD}"}
    )
    for text in (str(model), repr(model), model.model_dump_json(), str(model.model_dump(mode="json"))):
        assert PASSWORD not in text
    assert str(model.dsn) == "http://u:***@ch:8123/db" and str(model.hook) == "https://h.example/***?t=***"
    assert model.dsn.get_secret_value() == f"http://u:{PASSWORD}@ch:8123/db"


@pytest.mark.parametrize(
    ("value", "annotation", "expected"),
    [
        pytest.param(PASSWORD, None, "'***' (11 characters)", id="string"),
        pytest.param(SecretStr("abc"), None, "'***' (3 characters)", id="secret"),
        pytest.param(["a", "b"], None, "'***'", id="list"),
        pytest.param(f"ftp://u:{PASSWORD}@h", SecretDsn, "'ftp://u:***@h'", id="url-input"),
    ],
)
def test_shown(value: object, annotation: object, expected: str) -> None:
    assert shown(value, annotation) == expected


class Inner(BaseModel):
    name: str
    token: SecretStr


class Outer(BaseModel):
    plain: str = ""
    tokens: list[SecretStr] = []
    items: list[Inner] = []
    key: SecretStr | None = None


@pytest.mark.parametrize(
    ("loc", "secret"),
    [
        pytest.param(("plain",), False, id="plain"),
        pytest.param(("tokens",), True, id="list-of-secrets"),
        pytest.param(("tokens", "1"), True, id="one-secret-of-a-list"),
        pytest.param(("items",), True, id="list-of-models-holding-secrets"),
        pytest.param(("items", "0", "name"), False, id="a-name-beside-a-secret"),
        pytest.param(("items", "0", "token"), True, id="the-secret-beside-it"),
        pytest.param(("key",), True, id="optional-secret"),
        pytest.param(("nonexistent",), False, id="unknown-key"),
    ],
)
def test_which_paths_are_secret(loc: tuple[str, ...], secret: bool) -> None:
    assert is_secret_path(Outer, loc) is secret


def test_secret_values_collects_every_secret_and_url_part() -> None:
    class Model(BaseModel):
        outer: Outer
        dsn: SecretDsn

    model = Model.model_validate(
        {
            "outer": {"tokens": ["t-one-1234"], "items": [{"name": "n", "token": "t-two-5678"}], "key": "t-three"},
            "dsn": f"http://u:{PASSWORD}@h:1/?access_token=qtoken-99&x=1",
        }
    )
    values = secret_values(model)
    assert {"t-one-1234", "t-two-5678", "t-three", PASSWORD, "qtoken-99"} <= set(values)
    assert "1" not in values and "n" not in values
    assert holds_secret(Outer) and not holds_secret(str)


def test_a_secret_file_is_read_when_only_its_owner_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"{PASSWORD}\n")
    path.chmod(0o600)
    assert read_secret_file(path) == PASSWORD
    path.chmod(0o640)  # the service's group may read it
    assert read_secret_file(path) == PASSWORD


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        pytest.param(PASSWORD, 0o644, "other users can read or write it (mode 0644)", id="world-readable"),
        pytest.param(PASSWORD, 0o602, "other users can read or write it", id="world-writable"),
        pytest.param("  \n", 0o600, "the file is empty", id="empty"),
        pytest.param("x" * (MAX_SECRET_FILE_BYTES + 1), 0o600, "at most", id="too-large"),
        pytest.param(None, 0o600, "cannot read it (No such file or directory)", id="missing"),
    ],
)
def test_an_unusable_secret_file_is_refused_without_its_content(
    tmp_path: Path, content: str | None, mode: int, expected: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    with pytest.raises(SecretFileError) as info:
        read_secret_file(path)
    assert expected in str(info.value) and PASSWORD not in str(info.value)


def test_a_directory_is_not_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(SecretFileError, match="regular file"):
        read_secret_file(tmp_path / "dir")


def test_the_log_filter_masks_secrets_in_messages_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactSecrets([PASSWORD, ""]))
    logger = logging.getLogger("otelspend.test-redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", PASSWORD)
        try:
            raise ConnectionError(f"refused for http://u:{PASSWORD}@h")
        except ConnectionError:
            logger.exception("store down")
        logger.error("stack", stack_info=True)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert records[0] == "connecting with ***"
    assert "ConnectionError: refused for http://u:***@h" in records[1]
    assert all(PASSWORD not in record for record in records)


def test_refused_credentials_are_logged_at_most_once_per_interval_and_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    refusals = RejectedCredentials("OTLP", interval_seconds=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="otelspend"):
        refusals.refused("unknown")
        for _ in range(5):
            refusals.refused("missing")
        refusals.refused("unknown")
        now[0] += 61
        refusals.refused("unknown")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "OTLP refused 1 request(s) without a valid bearer token (1 with an unknown token); tokens are never logged",
        "OTLP refused 7 request(s) without a valid bearer token (5 with no token, 2 with an unknown token); "
        "tokens are never logged",
    ]
