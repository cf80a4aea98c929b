"""``otelspend demo``: the traffic model (pure) and what a real server makes of it."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import time
from collections import Counter

import httpx
import pytest

from otelspend.cli import main
from otelspend.demo import MODELS, WORKFLOWS, PlannedRun, plan_runs
from otelspend.demo_sender import (
    Queryable,
    grpc_target,
    http_traces_url,
    outcome_route,
    run_window,
    summarize,
    wait_until_queryable,
)
from otelspend.enrich.pricing import PriceBook, Unpriced
from tests import canary
from tests.ecosystem.conftest import DEMO_DAYS, DemoData

NOW_NS = 1_790_000_000 * 10**9
HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
SELF_HOSTED = {m.request_model for m in MODELS.values() if not m.public_price}


def _signature(plans: list[PlannedRun]) -> list[tuple]:
    return [
        (p.service, p.outcome, [(s.name, s.start_ns, s.end_ns, sorted(s.attributes.items())) for s in p.spans()])
        for p in plans
    ]


# -- the traffic model --------------------------------------------------------------------------


def test_same_seed_same_traffic_other_seed_other_traffic():
    first = plan_runs(40, 2, seed=7, now_ns=NOW_NS)
    assert _signature(first) == _signature(plan_runs(40, 2, seed=7, now_ns=NOW_NS))
    assert _signature(first) != _signature(plan_runs(40, 2, seed=8, now_ns=NOW_NS))


@pytest.mark.parametrize(
    ("runs", "days", "message"), [pytest.param(0, 1, "runs", id="no-runs"), pytest.param(5, 0, "days", id="no-days")]
)
def test_rejects_empty_plans(runs, days, message):
    with pytest.raises(ValueError, match=message):
        plan_runs(runs, days)


def test_every_workflow_provider_and_failure_kind_appears():
    plans = plan_runs(400, 7, seed=11, now_ns=NOW_NS)
    spans = [s for p in plans for s in p.spans()]
    assert {p.workflow.type for p in plans} == {w.type for w in WORKFLOWS}
    providers = {s.attributes.get("gen_ai.provider.name") for s in spans if s.kind == "client"}
    assert {"openai", "anthropic", "gcp.gemini", "gcp.vertex_ai", "aws.bedrock"} <= providers
    operations = Counter(s.attributes.get("gen_ai.operation.name") for s in spans)
    assert {"chat", "generate_content", "embeddings", "invoke_agent", "execute_tool"} <= set(operations)
    assert any(s.error_type and s.kind == "client" for s in spans), "failed model calls"
    assert any(s.error_type and s.attributes.get("gen_ai.operation.name") == "execute_tool" for s in spans)
    assert any(p.root.error_type for p in plans), "failed runs"
    assert any("http.request.resend_count" in s.attributes for s in spans)
    for key in ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_write.input_tokens",
                "gen_ai.usage.reasoning.output_tokens"):  # fmt: skip
        assert any(key in s.attributes for s in spans), key
    assert any(s.attributes.get("gen_ai.request.model") in SELF_HOSTED for s in spans)
    assert len({p.root.attributes["tenant.id"] for p in plans}) >= 5
    assert {p.root.attributes["deployment.environment.name"] for p in plans} == {"production", "staging"}


def test_spans_are_well_formed_and_inside_the_time_range():
    days = 3
    plans = plan_runs(200, days, seed=5, now_ns=NOW_NS)
    response_ids = set()
    for plan in plans:
        root = plan.root
        assert NOW_NS - days * DAY_NS <= root.start_ns and root.end_ns <= NOW_NS - HOUR_NS + 10 * 60 * 10**9
        for key in ("workflow.id", "workflow.type", "tenant.id", "customer.id", "feature.id", "user.id",
                    "prompt.version", "deployment.environment.name"):  # fmt: skip
            assert root.attributes[key], key
        for span in plan.spans():
            assert span.start_ns <= span.end_ns
            for child in span.children:
                assert span.start_ns <= child.start_ns and child.end_ns <= span.end_ns, (span.name, child.name)
            attrs = span.attributes
            if span.kind != "client":
                continue
            if span.error_type:
                assert "gen_ai.usage.input_tokens" not in attrs and "gen_ai.response.model" not in attrs
                continue
            inputs = attrs["gen_ai.usage.input_tokens"]
            cached = attrs.get("gen_ai.usage.cache_read.input_tokens", 0) + attrs.get(
                "gen_ai.usage.cache_write.input_tokens", 0
            )
            assert inputs > 0 and cached <= inputs, "semconv: input_tokens includes cached tokens"
            assert attrs.get("gen_ai.usage.reasoning.output_tokens", 0) <= attrs.get("gen_ai.usage.output_tokens", 0)
            assert attrs["gen_ai.response.id"] not in response_ids
            response_ids.add(attrs["gen_ai.response.id"])
        agents = [s for s in plan.spans() if s.attributes.get("gen_ai.operation.name") == "invoke_agent"]
        assert agents and all(s.attributes["gen_ai.agent.name"] for s in agents)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_demo_model_is_a_real_genai_prices_model_except_the_self_hosted_one(name):
    model = MODELS[name]
    book = PriceBook()
    if model.request_model in SELF_HOSTED:
        with pytest.raises(Unpriced) as caught:
            book.quote(model.provider, model.response_model, model.request_model, NOW_NS)
        assert caught.value.reason == "unknown_model"
    else:
        quote = book.quote(model.provider, model.response_model, model.request_model, NOW_NS)
        assert quote.compiled.source.startswith("genai-prices")


def test_outcomes_travel_as_attributes_or_events_unless_kept_for_the_api():
    plans = plan_runs(300, 2, seed=3, now_ns=NOW_NS)
    with_outcome = [p for p in plans if p.outcome]
    as_attribute = [p for p in with_outcome if p.root.attributes.get("otelspend.outcome") == p.outcome[0]]
    as_event = [p for p in with_outcome if any(e[0] == "gen_ai.evaluation.result" for e in p.root.events)]
    assert as_attribute and as_event and len(as_attribute) + len(as_event) == len(with_outcome)
    assert all(p.workflow.reviewed and not p.root.error_type for p in with_outcome)

    kept = plan_runs(300, 2, seed=3, now_ns=NOW_NS, api_outcome_share=1.0)
    assert [p.outcome for p in kept] == [p.outcome for p in plans]
    assert all(not p.outcome_on_spans for p in kept if p.outcome)
    assert not any("otelspend.outcome" in p.root.attributes or p.root.events for p in kept)
    assert summarize(kept).outcomes_for_api == len(with_outcome)


@pytest.mark.parametrize(
    ("given", "grpc", "http"),
    [
        pytest.param("localhost:4317", "localhost:4317", "http://localhost:4317/v1/traces", id="bare"),
        pytest.param("http://otel:4318/", "otel:4318", "http://otel:4318/v1/traces", id="url"),
        pytest.param("https://x:443/v1/traces", "x:443/v1/traces", "https://x:443/v1/traces", id="full"),
    ],
)
def test_endpoint_forms(given, grpc, http):
    assert grpc_target(given) == grpc
    assert http_traces_url(given) == http


# -- against a real server (the package's demo fixture) -----------------------------------------


def test_demo_populates_runs_spans_and_every_dimension(demo: DemoData):
    server, plans, summary = demo.server, demo.plans, demo.summary
    assert demo.sent.failed_spans == 0 and demo.sent.exported_spans == summary.spans
    assert server.scalar("SELECT count() FROM {db}.spans FINAL") == summary.spans
    runs = server.dicts("SELECT * FROM {db}.runs FINAL")
    assert len(runs) == summary.runs == len(plans)
    by_id = {r["run_id"]: r for r in runs}
    assert set(by_id) == {p.run_id for p in plans}

    assert Counter(r["workflow_type"] for r in runs) == Counter(p.workflow.type for p in plans)
    assert {r["tenant"] for r in runs} == {p.root.attributes["tenant.id"] for p in plans}
    assert {r["feature"] for r in runs} == {p.workflow.feature for p in plans}
    assert {r["customer"] for r in runs} == {p.root.attributes["customer.id"] for p in plans}
    assert {r["environment"] for r in runs} == {"production", "staging"}
    planned_agents = {
        s.attributes["gen_ai.agent.name"] for p in plans for s in p.spans() if "gen_ai.agent.name" in s.attributes
    }
    planned_tools = {
        s.attributes["gen_ai.tool.name"] for p in plans for s in p.spans() if "gen_ai.tool.name" in s.attributes
    }
    assert {a for r in runs for a in r["agents"]} == planned_agents
    assert {t for r in runs for t in r["tools"]} == planned_tools
    assert {"openai", "anthropic", "gcp.gemini", "gcp.vertex_ai", "aws.bedrock"} <= {
        p for r in runs for p in r["providers"]
    }
    assert sum(r["tool_calls"] for r in runs) == summary.tool_calls
    assert sum(r["llm_calls"] for r in runs) == summary.calls
    assert sum(r["status"] == "error" for r in runs) == summary.failed_runs > 0
    assert sum(r["retries"] for r in runs) > 0 and sum(r["retry_loop"] for r in runs) > 0
    for column in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        assert sum(r[column] for r in runs) > 0, column
    assert server.scalar("SELECT count() FROM {db}.spans FINAL WHERE resend_count > 0") == summary.resends > 0

    # Priced everywhere except the self-hosted model, which is unpriced (NULL), never $0.
    unpriced = server.rows(
        "SELECT DISTINCT model, unpriced_reason FROM {db}.spans FINAL WHERE call_role = 'call' AND cost_usd IS NULL "
        "AND NOT (unpriced_reason = 'no_usage' AND status_code = 'ERROR')"
    )
    assert unpriced == [(next(iter(SELF_HOSTED)), "unknown_model")]
    assert sum(r["unpriced_calls"] for r in runs) == summary.unpriced_calls > 0
    for workflow in {p.workflow for p in plans}:
        costs = [r["cost_usd"] for r in runs if r["workflow_type"] == workflow.type]
        if workflow.type == "meeting_summary":
            assert all(c is None for c in costs)
        else:
            assert sum(c or 0 for c in costs) > 0, workflow.type


def test_demo_outcomes_reach_their_runs(demo: DemoData):
    runs = {
        r["run_id"]: r
        for r in demo.server.dicts("SELECT run_id, outcome, outcome_score, outcome_source FROM {db}.runs FINAL")
    }
    expected = {p.run_id: p.outcome for p in demo.plans if p.outcome}
    assert len(expected) == demo.summary.outcomes > 0
    got = {run_id: (r["outcome"], r["outcome_score"]) for run_id, r in runs.items() if r["outcome"]}
    assert got == expected
    assert {r["outcome_source"] for r in runs.values() if r["outcome"]} == {"span"}
    assert {o for o, _ in expected.values()} == {"accepted", "edited", "rejected", "escalated"}


def test_demo_spreads_runs_over_the_range_and_exports_children_before_roots(demo: DemoData):
    server = demo.server
    first, last = server.rows(
        "SELECT min(toUnixTimestamp(start_time)), max(toUnixTimestamp(start_time)) FROM {db}.runs FINAL"
    )[0]
    now_s = demo.now_ns // 10**9
    assert now_s - DEMO_DAYS * 86400 <= first and last <= now_s - 3600
    assert last - first > (DEMO_DAYS - 1) * 86400
    # A root is ingested no earlier than any span below it (BatchSpanProcessor exports in end order).
    late_children = server.scalar(
        "SELECT count() FROM {db}.spans AS child FINAL "
        "INNER JOIN (SELECT trace_id, ingested_at FROM {db}.spans FINAL WHERE parent_span_id = '') AS root "
        "ON child.trace_id = root.trace_id WHERE child.ingested_at > root.ingested_at"
    )
    assert late_children == 0


# -- the command ------------------------------------------------------------------------------------


def _run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_command_sends_over_grpc_and_http_and_reports(start_server):
    server = start_server()
    code, out, _ = _run_cli("demo", "--endpoint", server.grpc_endpoint, "--runs", "12", "--days", "1", "--seed", "3")
    assert code == 0, out
    assert "sent 12 runs" in out and "spans acknowledged" in out
    http_endpoint = server.http_url.removeprefix("http://")
    code, out, _ = _run_cli("demo", "--protocol", "http", "--endpoint", http_endpoint, "--runs", "8", "--days", "2")
    assert code == 0, out
    server.wait_idle()
    assert server.scalar("SELECT count() FROM {db}.runs FINAL") == 20
    assert server.scalar("SELECT uniqExact(service) FROM {db}.runs FINAL") >= 3


def test_command_with_api_posts_outcomes_when_the_api_has_the_route(start_server):
    server = start_server()
    route = outcome_route(server.api_url)
    code, out, _ = _run_cli(
        "demo",
        "--endpoint",
        server.grpc_endpoint,
        "--runs",
        "30",
        "--days",
        "1",
        "--seed",
        "9",
        "--api",
        server.api_url,
        "--api-token",
        canary.API_TOKEN,
    )
    assert code == 0, out
    server.wait_idle()
    sources = dict(server.rows("SELECT outcome_source, count() FROM {db}.runs FINAL WHERE outcome != '' GROUP BY 1"))
    if route is None:
        # The REST API does not publish an outcome route yet: the demo says so and keeps
        # every outcome on the spans.
        assert "publishes no outcome route" in out
        assert set(sources) == {"span"}
    else:
        posted = int(re.search(r"\((\d+) posted via .*, 0 failed\)", out).group(1))
        assert posted > 0 and sources.get("api") == posted, out
        assert sources.get("span", 0) > 0, "the other outcomes still travel on the spans"


def test_command_fails_loudly_when_nothing_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    code, _out, err = _run_cli("demo", "--endpoint", f"127.0.0.1:{port}", "--runs", "1", "--timeout", "1")
    assert code == 1
    assert "not acknowledged" in err


def test_runs_are_queryable_as_soon_as_the_demo_returns(start_server, monkeypatch, tmp_path):
    """The README's flow: ``otelspend demo`` with the local settings, then at once the rollups query."""
    # Runs settle for 2 s here: a demo returning on the last acknowledgement would leave the
    # next command with "rows": [].
    server = start_server(runs={"settle_seconds": 2.0})
    monkeypatch.setenv("OTELSPEND_OTLP_GRPC_ADDRESS", server.grpc_endpoint)
    monkeypatch.setenv("OTELSPEND_API_ADDRESS", server.addresses.api)
    for name, path in canary.secret_files(tmp_path / "secrets").items():  # the local settings' tokens
        monkeypatch.setenv(name, path)
    code, out, err = _run_cli("demo", "--runs", "25", "--days", "2", "--seed", "4")
    assert code == 0, (out, err)
    assert f"all 25 runs queryable at {server.api_url} after" in out

    readme_query = {"group_by": "workflow_type", "metrics": "cost_usd,runs,cost_per_success_usd",
                    "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * 86400))}  # fmt: skip
    rows = httpx.get(f"{server.api_url}/v1/rollups", params=readme_query, timeout=30).json()["rows"]
    assert sum(row["runs"] for row in rows) == 25


def test_waiting_for_queryable_runs_is_bounded(server):
    plans = plan_runs(3, 1, seed=2)
    ticks = iter(range(1000))
    found = wait_until_queryable(
        server.api_url, run_window(plans), expected=3, before=0, timeout_seconds=2.0, token=canary.API_TOKEN,
        clock=lambda: next(ticks) * 0.5, sleep=lambda _seconds: None,
    )  # fmt: skip
    assert found == Queryable(found=0, expected=3, seconds=2.0) and not found.complete


def test_demo_without_an_api_to_ask_says_so_and_still_succeeds(start_server):
    server = start_server()
    code, out, _ = _run_cli("demo", "--endpoint", server.grpc_endpoint, "--runs", "2", "--days", "1")
    assert code == 0 and "give --api URL to wait until the runs are queryable" in out
    code, out, _ = _run_cli("demo", "--endpoint", server.grpc_endpoint, "--runs", "2", "--days", "1", "--wait", "0")
    assert code == 0 and "queryable" not in out
