"""The secret canary (tests/canary.py) fails a test that leaks, by every route it watches,
and cannot be turned off quietly. Each case runs in a child pytest that loads the canary
the way tests/conftest.py does; a clean twin of each leak shows the check is not blind."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests import canary
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[1]
CONFTEST = (
    "from tests.canary import pytest_configure, pytest_runtest_makereport, pytest_sessionfinish, "
    "pytest_terminal_summary, pytest_unconfigure\n"
)
LEAKS = '''
import http.server
import logging
import os
import subprocess
import sys
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests import canary

SHOWN = "***"


def answer(body, header=""):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("X-Echo", header)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        return httpx.get(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.server_close()


def app(body):
    return TestClient(Starlette(routes=[Route("/", lambda request: PlainTextResponse(body))]))


@pytest.fixture(params=[canary.API_TOKEN, SHOWN], ids=["leak", "clean"])
def value(request):
    return request.param


def test_debug_log(value):
    logging.getLogger("otelspend.receiver").debug("refused a request with %s", value)


def test_debug_log_under_a_raised_level(value, caplog):
    with caplog.at_level(logging.WARNING, logger="otelspend"):
        logging.getLogger("otelspend.receiver").debug("refused a request with %s", value)


def test_log_that_does_not_propagate(value):
    logger = logging.getLogger("otelspend.quiet")
    logger.propagate = False
    try:
        logger.warning("token %s", value)
    finally:
        logger.propagate = True


def test_log_while_logging_is_disabled(value):
    logging.disable(logging.CRITICAL)
    try:
        logging.getLogger("otelspend").info("token %s", value)
    finally:
        logging.disable(logging.NOTSET)


def test_error_log_with_a_traceback(value):
    try:
        raise RuntimeError(f"cannot connect with {value}")
    except RuntimeError:
        logging.getLogger("some.library").exception("connection failed")


def test_print(value):
    print(f"token={value}")


def test_stderr_of_a_child_process(value):
    subprocess.run([sys.executable, "-c", f"import sys; sys.stderr.write({value!r})"], check=True)


def test_fd_write(value):
    os.write(1, value.encode())


def test_output_read_through_capsys(value, capsys):
    print(value)
    assert capsys.readouterr().out.strip() == value


def test_output_read_through_capfd(value, capfd):
    os.write(2, value.encode())
    assert capfd.readouterr().err == value


def test_http_answer_body(value):
    assert answer(f"hello {value}").status_code == 200


def test_http_answer_header(value):
    assert answer("hello", header=value).status_code == 200


def test_test_client_answer(value):
    assert app(f"config: {value}").get("/").status_code == 200


def test_checked_file(value, tmp_path):
    log = tmp_path / "server.log"
    log.write_text(f"INFO listening with token {value}")
    canary.check_file(log)


@pytest.fixture
def leaks_at_teardown(value):
    yield
    logging.getLogger("otelspend").warning("stopping, token %s", value)


def test_fixture_teardown(leaks_at_teardown):
    pass


def test_cookie_holds_the_token_the_user_typed():
    """The sign-in answer puts the user's own token in their cookie: by design, not a leak."""

    def login(request):
        response = PlainTextResponse("signed in")
        response.set_cookie("otelspend_token", canary.API_TOKEN)
        return response

    client = TestClient(Starlette(routes=[Route("/login", login, methods=["POST"])]))
    assert client.post("/login").text == "signed in"
'''
LEAKING_TESTS = [
    "test_debug_log",
    "test_debug_log_under_a_raised_level",
    "test_log_that_does_not_propagate",
    "test_log_while_logging_is_disabled",
    "test_error_log_with_a_traceback",
    "test_print",
    "test_stderr_of_a_child_process",
    "test_fd_write",
    "test_output_read_through_capsys",
    "test_output_read_through_capfd",
    "test_http_answer_body",
    "test_http_answer_header",
    "test_test_client_answer",
    "test_checked_file",
    "test_fixture_teardown",
]
LATE = """
import logging
import threading

from tests import canary


def test_starts_a_thread_that_logs_after_the_last_test():
    def late():
        threading.Event().wait(0.2)
        logging.getLogger("otelspend").error("late: %s", canary.INGEST_TOKEN)

    threading.Thread(target=late, name="late").start()
"""
WAIT_FOR_LATE_THREADS = """
import threading

import pytest

from tests.canary import pytest_configure as canary_configure


class WaitForLateThreads:
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self):
        for thread in threading.enumerate():
            if thread.name == "late":
                thread.join()


def pytest_configure(config):
    config.pluginmanager.register(WaitForLateThreads())
    canary_configure(config)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A child test run with the canary's hooks, able to import ``tests``; its canaries are its
    own (its output, leaks included, is shown in this test's output)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CANARY_RUN", "nested")
    pytester.makeconftest(CONFTEST)
    return pytester


def test_every_route_of_a_leak_fails_the_test_and_its_clean_twin_passes(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_leaks=LEAKS)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    output = result.stdout.str()
    outcomes: dict[str, set[str]] = {}
    for outcome, name in re.findall(r"^(PASSED|FAILED|ERROR) test_leaks\.py::(\S+)", output, flags=re.MULTILINE):
        outcomes.setdefault(name, set()).add(outcome)
    for name in LEAKING_TESTS:
        assert outcomes.get(f"{name}[leak]", set()) & {"FAILED", "ERROR"}, (name, output[-3000:])
        assert outcomes.get(f"{name}[clean]") == {"PASSED"}, (name, output[-3000:])
    assert outcomes.get("test_cookie_holds_the_token_the_user_typed") == {"PASSED"}, output[-3000:]
    assert "secret canary: a configured secret left the process" in output
    assert "API_TOKEN in:" in output
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_leak_after_the_last_test_fails_the_session(suite: pytest.Pytester) -> None:
    suite.makeconftest(CONFTEST.replace("pytest_configure, ", "") + WAIT_FOR_LATE_THREADS)
    suite.makepyfile(test_late=LATE)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*secret canary*after the last test*", "*INGEST_TOKEN in:*"])


def test_running_without_output_capture_is_refused(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = suite.runpytest_subprocess("-s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*secret canary reads captured output*--capture=tee-sys*"])
    watched_live = suite.runpytest_subprocess("--capture=tee-sys")
    assert watched_live.ret == pytest.ExitCode.OK
    watched_live.stdout.fnmatch_lines(["*secret canary: with --capture=sys or tee-sys*was not checked*"])


def test_the_servers_the_suite_starts_carry_the_canaries(chdb_path: Path, tmp_path: Path) -> None:
    settings = make_settings(chdb_path, tmp_path, "t_canary")
    assert [t.get_secret_value() for t in settings.api.tokens] == [canary.API_TOKEN]
    assert [(t.name, t.token.get_secret_value()) for t in settings.otlp.ingest_tokens] == [
        (canary.INGEST_NAME, canary.INGEST_TOKEN)
    ]
    files = canary.secret_files(tmp_path / "secrets")
    assert Path(files["OTELSPEND_API_TOKENS_FILE"]).read_text().strip() == canary.API_TOKEN
    assert os.environ["OTEL_EXPORTER_OTLP_HEADERS"] == canary.OTLP_HEADERS
