"""The secret canary: recognisable secret values in every server the suite starts, and a
check that fails any test whose logs, output or HTTP answers contain one of them.

Where the canaries live: ``tests.conftest.make_settings`` gives every in-process server
``API_TOKEN`` and the ingest token ``INGEST_TOKEN`` (name ``INGEST_NAME``, which is stored and
not secret); the ``otelspend serve`` children of the fault tests read both from files
(``OTELSPEND_*_FILE``, see ``secret_files``). Test clients authenticate the way real ones do:
the OTel SDK exporters (and ``bench.otlp_client``) send ``OTEL_EXPORTER_OTLP_HEADERS``, set
for the whole session; an ``httpx`` request to a registered canary server (``register``) or
to an app whose settings hold ``API_TOKEN`` gets its bearer token unless it carries an
``Authorization`` header or the dashboard cookie already (send ``Authorization: ""`` to
test an anonymous request).

What is watched, and why it cannot be skipped quietly:
- logs at every level: every record is checked as it is made (``Logger.handle``), whatever
  handlers, propagation or pytest's log options do with it, and ``otelspend`` loggers make
  records at every level whatever level a test set (``caplog.at_level``, ``logging.disable``);
- stdout and stderr: each phase's captured output, and whatever a test reads through
  ``capsys`` / ``capfd`` (``readouterr`` is wrapped). Running without capture (``-s``) is
  refused; ``--capture=tee-sys`` shows output live and keeps the check for Python's own
  output (the run ends saying what it could not check);
- HTTP answers of every ``httpx`` client (``httpx.get``, ``httpx.Client``, the bench client)
  and of Starlette's ``TestClient`` (built on the ``httpx2`` fork): body and headers, except
  ``set-cookie`` (signing in puts the token the user typed into their own cookie, by design);
- text a fixture hands over with ``check_text`` / ``check_file`` (dashboard pages seen by
  the browser, the log file of an ``otelspend serve`` child).
A leak fails the phase (setup, call, teardown) in which it was seen; one seen between tests
(a background thread) fails the next phase, and one seen after the last fails the session.
``tests/test_canary.py`` proves each route fails a deliberately leaking test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _pytest.capture import CaptureFixture, CaptureResult

_RUN = os.environ.get("CANARY_RUN", "5b1e0c27")
"""Distinguishes a nested run's canaries (tests/test_canary.py) from the outer run's."""
API_TOKEN = f"canary-api-token-{_RUN}"
INGEST_NAME = "canary-team"
INGEST_TOKEN = f"canary-ingest-token-{_RUN}"
WRONG_TOKEN = f"canary-wrong-token-{_RUN}"
"""What a misconfigured client presents: refused, and never repeated anywhere."""
OTHER_TOKEN = f"canary-other-token-{_RUN}"
"""A token a test configures on its own server: watched, but clients are not given it."""
DSN_PASSWORD = f"canary-dsn-password-{_RUN}"
WEBHOOK_PATH = f"canary-webhook-path-{_RUN}"
WEBHOOK_TOKEN = f"canary-webhook-token-{_RUN}"
WEBHOOK_SECRET = f"canary-webhook-secret-{_RUN}"
WEBHOOK_URL = f"http://127.0.0.1:9/hooks/{WEBHOOK_PATH}?token={WEBHOOK_TOKEN}"
"""The alert webhook every server carries: its path and query are secret (Slack-style URLs
carry their token there). Nothing listens on port 9, so deliveries to it keep failing: the
alert history shows it retrying."""
OPENAI_ADMIN_KEY = f"canary-openai-admin-key-{_RUN}"
ANTHROPIC_ADMIN_KEY = f"canary-anthropic-admin-key-{_RUN}"
"""Billing admin keys (``billing.*_admin_key``): every test server carries them; the loopback
admin-API fakes accept them; nothing may ever show them."""
SECRETS: dict[str, str] = {
    "API_TOKEN": API_TOKEN,
    "INGEST_TOKEN": INGEST_TOKEN,
    "WRONG_TOKEN": WRONG_TOKEN,
    "OTHER_TOKEN": OTHER_TOKEN,
    "DSN_PASSWORD": DSN_PASSWORD,
    "WEBHOOK_PATH": WEBHOOK_PATH,
    "WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    "WEBHOOK_SECRET": WEBHOOK_SECRET,
    "OPENAI_ADMIN_KEY": OPENAI_ADMIN_KEY,
    "ANTHROPIC_ADMIN_KEY": ANTHROPIC_ADMIN_KEY,
}
OTLP_HEADERS = f"authorization=Bearer%20{INGEST_TOKEN}"
"""``OTEL_EXPORTER_OTLP_HEADERS`` (the SDK's format: key=value, values URL-encoded)."""
CONTEXT_CHARS = 80

_leaks: list[str] = []
_leaks_lock = threading.Lock()
_servers: dict[str, str] = {}
"""``host:port`` -> the bearer token a client of that canary server presents."""


# -- what the suite configures ----------------------------------------------------------------


def settings_overrides() -> dict[str, Any]:
    """The secrets every in-process test server carries (merged by ``make_settings``)."""
    return {
        "api": {"tokens": [API_TOKEN]},
        "otlp": {"ingest_tokens": [{"name": INGEST_NAME, "token": INGEST_TOKEN}]},
        "alerts": {"webhook_url": WEBHOOK_URL, "webhook_secret": WEBHOOK_SECRET},
        "billing": {"openai_admin_key": OPENAI_ADMIN_KEY, "anthropic_admin_key": ANTHROPIC_ADMIN_KEY},
    }


def secret_files(directory: Path) -> dict[str, str]:
    """``OTELSPEND_*_FILE`` variables for an ``otelspend serve`` child, the files mode 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "OTELSPEND_API_TOKENS_FILE": ("api-tokens", f"{API_TOKEN}\n"),
        "OTELSPEND_OTLP_INGEST_TOKENS_FILE": ("ingest-tokens", f"{INGEST_NAME}:{INGEST_TOKEN}\n"),
    }
    env = {}
    for name, (file_name, content) in files.items():
        path = directory / file_name
        path.write_text(content)
        path.chmod(0o600)
        env[name] = str(path)
    return env


def register(*, api: str | None = None, otlp_http: str | None = None) -> None:
    """A canary server's addresses (``host:port``): its test clients authenticate."""
    if api:
        _servers[api] = API_TOKEN
    if otlp_http:
        _servers[otlp_http] = INGEST_TOKEN


def registered() -> dict[str, str]:
    return dict(_servers)


def holds_canary_tokens(settings: Any) -> bool:
    tokens = getattr(getattr(settings, "api", None), "tokens", None) or []
    return any(token.get_secret_value() == API_TOKEN for token in tokens)


# -- the check ----------------------------------------------------------------------------------


def find(text: str | bytes) -> list[str]:
    """Every canary in ``text``, each named with a little context (the value itself masked)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = []
    for label, secret in SECRETS.items():
        start = text.find(secret)
        if start >= 0:
            context = text[max(0, start - CONTEXT_CHARS) : start + len(secret) + CONTEXT_CHARS]
            for other_label, other in SECRETS.items():
                context = context.replace(other, f"<{other_label}>")
            found.append(f"{label} in: ...{context!r}...")
    return found


def check_text(text: str | bytes, where: str) -> None:
    """Record a leak if ``text`` (shown to a user, a log or a client) holds a canary."""
    found = find(text)
    if found:
        with _leaks_lock:
            _leaks.extend(f"{where}: {item}" for item in found)


def check_file(path: Path, where: str | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        check_text(path.read_bytes(), where or str(path))


def _drain() -> list[str]:
    with _leaks_lock:
        leaks = list(_leaks)
        _leaks.clear()
    return leaks


_FORMAT = logging.Formatter("%(levelname)s %(name)s: %(message)s")


def _check_record(record: logging.LogRecord) -> None:
    try:
        text = _FORMAT.format(record)
    except Exception:  # a record that cannot be formatted is the test's problem, not the canary's
        text = f"{record.msg} {record.args}"
    check_text(text, f"log record ({record.levelname} {record.name})")


def _patch_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record any logger handles is checked where it is made, before levels of handlers,
    propagation or filters decide where it goes; our own loggers make records at every level
    whatever level a test (``caplog.at_level``) or ``logging.disable`` set."""
    handle, enabled = logging.Logger.handle, logging.Logger.isEnabledFor

    def watched(self: logging.Logger, record: logging.LogRecord) -> None:
        _check_record(record)
        handle(self, record)

    def every_level_of_ours(self: logging.Logger, level: int) -> bool:
        return self.name == "otelspend" or self.name.startswith("otelspend.") or enabled(self, level)

    monkeypatch.setattr(logging.Logger, "handle", watched)
    monkeypatch.setattr(logging.Logger, "isEnabledFor", every_level_of_ours)


# -- hooks into the clients and the capture -----------------------------------------------------


def _token_for(client: httpx.Client | httpx.AsyncClient, request: httpx.Request) -> str | None:
    if "authorization" in request.headers or "otelspend_token=" in request.headers.get("cookie", ""):
        return None
    token = _servers.get(f"{request.url.host}:{request.url.port}")
    if token is None:
        context = getattr(getattr(getattr(client, "app", None), "state", None), "context", None)
        if holds_canary_tokens(getattr(context, "settings", None)):
            token = API_TOKEN
    return token


def _check_answer(request: httpx.Request, response: httpx.Response) -> None:
    where = f"HTTP answer to {request.method} {request.url.path}"
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items() if k.lower() != "set-cookie")
    check_text(headers, where + " (headers)")
    check_text(response.content, where)


def _http_client_modules() -> list[Any]:
    """httpx, and httpx2 (the fork Starlette's TestClient is built on) when it is installed."""
    modules = [httpx]
    with contextlib.suppress(ImportError):
        import httpx2

        modules.append(httpx2)
    return modules


def _patch_httpx(monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
    sync_send, async_send = module.Client.send, module.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        token = _token_for(self, request)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response: httpx.Response = sync_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            _check_answer(request, response)
        return response

    async def asend(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        token = _token_for(self, request)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response: httpx.Response = await async_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            _check_answer(request, response)
        return response

    monkeypatch.setattr(module.Client, "send", send)
    monkeypatch.setattr(module.AsyncClient, "send", asend)


def _patch_readouterr(monkeypatch: pytest.MonkeyPatch) -> None:
    original = CaptureFixture.readouterr

    def readouterr(self: CaptureFixture[Any]) -> CaptureResult[Any]:
        result = original(self)
        check_text(str(result.out), "stdout read through capsys/capfd")
        check_text(str(result.err), "stderr read through capsys/capfd")
        return result

    monkeypatch.setattr(CaptureFixture, "readouterr", readouterr)


_patches = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("capture", "fd") == "no":
        raise pytest.UsageError(
            "the secret canary reads captured output: run with --capture=tee-sys to see output live (-s turns it off)"
        )
    _patch_logging(_patches)
    for module in _http_client_modules():
        _patch_httpx(_patches, module)
    _patch_readouterr(_patches)
    _patches.setenv("OTEL_EXPORTER_OTLP_HEADERS", OTLP_HEADERS)


def pytest_unconfigure(config: pytest.Config) -> None:
    _patches.undo()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    for name, content in report.sections:  # log records are checked as they are made
        if name.startswith(("Captured stdout", "Captured stderr")) and name.endswith(f" {report.when}"):
            check_text(content, name.lower())
    leaks = _drain()
    if leaks:
        message = f"secret canary: a configured secret left the process during {report.when}:\n  " + "\n  ".join(leaks)
        if report.failed:
            report.sections.append(("secret canary", message))
        else:
            report.outcome = "failed"
            report.longrepr = message
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.getoption("capture", "fd") != "fd":
        terminalreporter.write_line(
            "secret canary: with --capture=sys or tee-sys, output written outside Python (child processes) "
            "was not checked; the default --capture=fd checks it",
            yellow=True,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = _drain()
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "secret canary: a configured secret left the process after the last test:\n  " + "\n  ".join(leaks)
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message)
