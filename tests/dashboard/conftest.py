"""One otelspend server with API tokens on, loaded by the real ``otelspend demo`` command
(in-process, through the official OTel SDK, outcomes posted over the REST API) plus one
trace whose model call two instrumentations report (a view), and one headless Chromium
for the whole package. Building them once keeps the package inside its time budget."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, sync_playwright

from otelspend.app import OtelSpend
from otelspend.cli import main
from tests import canary
from tests.conftest import Running, make_settings
from tests.otel import tracer_provider

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
TOKEN = canary.OTHER_TOKEN
"""The API token of the dashboard's server: a watched canary that no client is given unasked."""
COOKIE = "otelspend_token"
DEMO_RUNS = 600
DEMO_DAYS = 6.9
"""Inside the dashboard's default 7-day range."""
DEMO_SEED = 4242
VIEW_WORKFLOW = "chat_assistant"
TIMEOUT_MS = 20_000


@dataclass
class Loaded:
    server: Running
    demo_output: str
    view_run_id: str
    reviewed: list[str]
    """Runs given an outcome over the REST API."""

    @property
    def url(self) -> str:
        return self.server.api_url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _send_call_seen_twice(server: Running) -> str:
    """A chat call reported by Traceloop's instrumentation and, nested in it, by the SDK:
    one counted call (the SDK's span) and one view (Traceloop's), same response id and usage."""
    call = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.response.model": "claude-haiku-4-5-20251001",
        "gen_ai.response.id": "msg_01dashboardview",
        "gen_ai.usage.input_tokens": 1248,
        "gen_ai.usage.output_tokens": 60,
    }
    with tracer_provider(server, "grpc", service="chat-service") as provider:
        app = provider.get_tracer("chat-app")
        traceloop = provider.get_tracer("opentelemetry.instrumentation.anthropic")
        sdk = provider.get_tracer("com.anthropic.sdk.python")
        attributes = {"workflow.type": VIEW_WORKFLOW, "tenant.id": "acme", "feature.id": "chat"}
        with (
            app.start_as_current_span("POST /chat", kind=SpanKind.SERVER, attributes=attributes) as root,
            traceloop.start_as_current_span("anthropic.chat", kind=SpanKind.CLIENT, attributes=call),
            sdk.start_as_current_span("chat claude-haiku-4-5", kind=SpanKind.CLIENT, attributes=call),
        ):
            pass
        return format(root.get_span_context().trace_id, "032x")


def _post_outcomes(server: Running, count: int = 5) -> list[str]:
    """Outcomes for the costliest runs over ``POST /v1/runs/{run_id}/outcome``, as a review tool would."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=30) as api:
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat()
        runs = api.get("/v1/runs", params={"from": since, "limit": count}).json()["runs"]
        for run in runs:
            body = {"outcome": "escalated", "score": 0.25, "label": "dashboard-review", "note": "too expensive"}
            response = api.post(f"/v1/runs/{run['run_id']}/outcome", json=body)
            assert response.status_code == 202, response.text
    return [run["run_id"] for run in runs]


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


COST_POOLS = """
pools:
  - id: vector-db
    owner: platform-team
    review: 2027-03-01
    description: Managed vector database, shared by every tenant
    amount_usd: "25.00"
    period: day
    scope: {}
    signal: runs
    method: proportional
    by: tenant
    cost_kind: retrieval
  - id: gpu-cluster
    owner: ml-infra
    review: 2025-01-01
    description: Self-hosted vLLM cluster of the meeting summaries
    amount_usd: "400.00"
    period: month
    scope: {workflow_type: meeting_summary}
    signal: tokens
    method: proportional
    by: customer
    cost_kind: compute
units:
  - id: triage
    description: A support ticket triaged and accepted
    scope: {workflow_type: support_triage}
    count: {outcome: accepted}
"""
"""Issue 14's cost-to-serve page: two pools (one monthly, by customer) and a unit of value."""


def _allocate_and_import_revenue(server: Running) -> None:
    """Allocate every period now (the job's interval is long in tests) and import revenue for two
    tenants: acme with a healthy margin, globex with almost none (margin-dilutive)."""
    server.app.allocator.catch_up()
    today = dt.datetime.now(dt.UTC).date()
    start, end = today - dt.timedelta(days=8), today + dt.timedelta(days=1)
    csv = f"period_start,period_end,tenant,revenue_usd\n{start},{end},acme,900\n{start},{end},globex,0.05\n"
    with httpx.Client(base_url=server.api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
        response = api.post("/v1/revenue", content=csv, headers={"content-type": "text/csv"})
        assert response.status_code == 201, response.text


@pytest.fixture(scope="package")
def loaded(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    data = tmp_path_factory.mktemp("dashboard-data")
    pools = data / "cost-pools.yaml"
    pools.write_text(COST_POOLS)
    settings = make_settings(
        chdb_path,
        data,
        f"t_{uuid.uuid4().hex[:12]}",
        api={"tokens": [TOKEN]},
        cost_pools=str(pools),
        allocation={"interval_seconds": 3600},
    )
    app = OtelSpend(settings)
    app.start()
    try:
        server = Running(app)
        # `otelspend demo` as `make run` users run it (outcomes on the spans). Its --api mode is
        # left out: posting outcomes while runs wait in the emission batch double-counts some
        # runs today (reported); outcomes are posted over the API below, once runs are emitted.
        code, output = run_cli(
            "demo", "--endpoint", server.grpc_endpoint, "--runs", str(DEMO_RUNS), "--days", str(DEMO_DAYS),
            "--seed", str(DEMO_SEED),
        )  # fmt: skip
        assert code == 0, output
        view_run_id = _send_call_seen_twice(server)
        server.wait_idle(timeout=90)
        reviewed = _post_outcomes(server)
        server.wait_idle(timeout=90)
        _allocate_and_import_revenue(server)
        yield Loaded(server, output, view_run_id, reviewed)
    finally:
        app.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard's browser tests drive Debian's headless Chromium. "
            "Install it with `apt-get install chromium` (`make test` does it).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """Everything a page did that a clean page must not: console errors, script errors,
    failed or 4xx/5xx requests, and any request leaving the server's origin."""

    origin: str
    problems: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("request", self._request)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _request(self, request: Request) -> None:
        if not (request.url == self.origin or request.url.startswith(self.origin + "/")):
            self.foreign.append(request.url)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def assert_clean(self) -> None:
        assert self.foreign == [], f"requests outside {self.origin}: {self.foreign}"
        assert self.problems == [], "\n".join(self.problems)

    def reset(self) -> None:
        self.problems.clear()
        self.foreign.clear()


@dataclass
class Tab:
    """A signed-in page plus its watch; ``open`` asserts a clean 200."""

    page: Page
    watch: Watch
    origin: str

    def open(self, path: str) -> Any:
        self.watch.reset()
        response = self.page.goto(self.origin + path, wait_until="load")
        assert response is not None and response.status == 200, (path, response and response.status)
        canary.check_text(response.body(), f"dashboard page {path}")
        self.watch.assert_clean()
        return response


def new_context(browser: Browser, loaded: Loaded, *, signed_in: bool) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=loaded.url)
    context.set_default_timeout(TIMEOUT_MS)
    if signed_in:
        context.add_cookies([{"name": COOKIE, "value": TOKEN, "url": loaded.url, "httpOnly": True}])
    return context


@pytest.fixture
def tab(browser: Browser, loaded: Loaded) -> Iterator[Tab]:
    context = new_context(browser, loaded, signed_in=True)
    page = context.new_page()
    watch = Watch(loaded.url)
    watch.attach(page)
    try:
        yield Tab(page, watch, loaded.url)
        canary.check_text(page.content(), f"dashboard page {page.url} as rendered")
    finally:
        context.close()
