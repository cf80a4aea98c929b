"""Runs: stitching across batches, late and duplicate spans, retries, ownership, outcomes."""

from __future__ import annotations

import textwrap

from tests.conftest import wait_for
from tests.otlp import Trace, post, request

OPENAI = {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}


def usage(input_tokens: int, output_tokens: int, **extra):
    return {**OPENAI, "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens, **extra}


def run_row(server, run_id: str) -> dict:
    rows = server.dicts("SELECT * FROM {db}.runs FINAL WHERE run_id = {r:String}", r=run_id)
    assert len(rows) == 1, rows
    return rows[0]


def agent_trace():
    trace = Trace()
    root = trace.span(
        name="handle ticket",
        duration_ms=900,
        attrs={
            "workflow.id": "wf-42",
            "workflow.type": "support_triage",
            "tenant.id": "acme",
            "customer.id": "cust-9",
            "user.id": "user-1",
            "prompt.version": "v7",
        },
    )
    agent = trace.span(
        root, name="invoke_agent triage", attrs={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}
    )
    call_1 = trace.span(
        agent, name="chat", duration_ms=200, attrs=usage(1000, 100, **{"gen_ai.usage.cache_read.input_tokens": 800})
    )
    tool = trace.span(
        agent,
        name="execute_tool search_kb",
        duration_ms=50,
        attrs={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_kb"},
    )
    call_2 = trace.span(agent, name="chat", duration_ms=300, attrs=usage(2000, 200, **{"feature.id": "ticket-triage"}))
    return trace, root, agent, call_1, tool, call_2


def test_run_from_several_batches_children_first_root_last(server):
    trace, root, agent, call_1, tool, call_2 = agent_trace()
    post(server, request([call_1]))
    post(server, request([tool, call_2], resource={"deployment.environment.name": "prod"}))
    post(server, request([agent]))
    post(server, request([root]))
    server.wait_idle()
    run = run_row(server, trace.run_id)
    assert (run["complete"], run["status"], run["llm_calls"], run["tool_calls"], run["agent_invocations"]) == (
        1, "success", 2, 1, 1,
    )  # fmt: skip
    assert (run["workflow_id"], run["workflow_type"], run["tenant"], run["customer"]) == (
        "wf-42",
        "support_triage",
        "acme",
        "cust-9",
    )
    assert (run["feature"], run["environment"], run["prompt_version"], run["user"]) == (
        "ticket-triage",
        "prod",
        "v7",
        "user-1",
    )
    assert (run["input_tokens"], run["output_tokens"], run["cache_read_tokens"]) == (3000, 300, 800)
    assert run["agents"] == ["triage"] and run["tools"] == ["search_kb"] and run["models"] == ["gpt-4o-mini"]
    assert run["duration_ms"] == 900
    expected_cost = server.scalar("SELECT sum(cost_usd) FROM {db}.spans FINAL WHERE call_role = 'call'")
    assert run["cost_usd"] == expected_cost and expected_cost > 0
    # The breakdown carries the run's attribution: tenant x model and tool x workflow are exact.
    breakdown = server.dicts(
        "SELECT model, agent, tool, calls, tool_calls, tenant, workflow_type, cost_usd "
        "FROM {db}.run_calls FINAL ORDER BY tool"
    )
    assert [(b["model"], b["agent"], b["tool"], b["calls"], b["tool_calls"]) for b in breakdown] == [
        ("gpt-4o-mini", "triage", "", 2, 0),
        ("", "triage", "search_kb", 0, 1),
    ]
    assert {(b["tenant"], b["workflow_type"]) for b in breakdown} == {("acme", "support_triage")}
    assert sum(b["cost_usd"] for b in breakdown) == run["cost_usd"]
    by_tenant_model = server.rows(
        "SELECT tenant, model, sum(calls), sum(cost_usd) FROM {db}.rollup_calls_hourly "
        "WHERE model != '' GROUP BY tenant, model"
    )
    assert by_tenant_model == [("acme", "gpt-4o-mini", 2, expected_cost)]


def test_late_span_updates_its_run_and_a_resent_batch_changes_nothing(server):
    trace, root, agent, call_1, tool, call_2 = agent_trace()
    first_batch = request([call_1, tool, agent, root])
    post(server, first_batch)
    server.wait_idle()
    before = run_row(server, trace.run_id)
    assert before["llm_calls"] == 1
    post(server, request([call_2]))  # arrives after the run was emitted
    server.wait_idle()
    after = run_row(server, trace.run_id)
    assert (after["llm_calls"], after["input_tokens"], after["feature"]) == (2, 3000, "ticket-triage")
    assert after["cost_usd"] > before["cost_usd"]
    post(server, first_batch)  # an exporter retrying a batch whose answer it lost
    post(server, request([call_2]))
    server.wait_idle()
    assert run_row(server, trace.run_id) == {**after, "written_at": run_row(server, trace.run_id)["written_at"]}
    assert server.rows("SELECT sum(runs), sum(calls), sum(cost_usd) FROM {db}.rollup_runs_hourly") == [
        (1, 2, after["cost_usd"])
    ]
    assert server.rows("SELECT sum(calls), sum(input_tokens) FROM {db}.rollup_calls_hourly") == [(2, 3000)]


def test_run_without_root_closes_as_incomplete(server):
    trace = Trace()
    orphan_parent = trace.span(name="missing parent")  # never sent
    call = trace.span(orphan_parent, attrs=usage(500, 50))
    post(server, request([call]))
    server.wait_idle(timeout=30)
    run = run_row(server, trace.run_id)
    assert (run["complete"], run["status"], run["llm_calls"], run["input_tokens"]) == (0, "unknown", 1, 500)


def test_retries_from_every_source(server):
    trace = Trace()
    root = trace.span(name="root")
    sdk_resend = trace.span(root, attrs=usage(100, 10, **{"http.request.resend_count": 2}))
    explicit = trace.span(root, attrs={**usage(100, 10), "gen_ai.request.model": "gpt-4o", "otelspend.retry_count": 1})
    wrapper = trace.span(
        root, attrs={**usage(100, 10), "gen_ai.request.model": "claude-haiku-4-5", "gen_ai.provider.name": "anthropic"}
    )
    attempt_1 = trace.span(wrapper, status=2, attrs={"http.request.method": "POST", "http.response.status_code": 500})
    attempt_2 = trace.span(wrapper, attrs={"http.request.method": "POST", "http.response.status_code": 200})
    failed = trace.span(
        root, status=2, attrs={**OPENAI, "gen_ai.request.model": "gpt-4.1", "error.type": "RateLimitError"}
    )
    succeeded = trace.span(root, attrs={**usage(100, 10), "gen_ai.request.model": "gpt-4.1"})
    post(server, request([sdk_resend, explicit, attempt_1, attempt_2, wrapper, failed, succeeded, root]))
    server.wait_idle()
    run = run_row(server, trace.run_id)
    # 2 (resend_count) + 1 (explicit) + 1 (two HTTP attempts) + 1 (failed then succeeded sibling)
    assert run["retries"] == 5
    assert run["llm_calls"] == 5  # retries add no phantom calls
    assert run["retry_loop"] == 1  # default threshold: 3 retries
    assert server.scalar("SELECT sum(retries) FROM {db}.run_calls FINAL") == 5


def test_ownership_rules_and_ingest_token_attribution(start_server, tmp_path):
    rules = tmp_path / "ownership.yaml"
    rules.write_text(
        textwrap.dedent(
            """
            version: 1
            rules:
              - name: support
                match: {service.name: "support-*", environment: prod}
                set: {team: support, cost_center: CC-100, product: helpdesk, owner: ana@example.com}
              - name: shared key
                match: {ingest_token: acme-key}
                set: {tenant: acme}
              - name: fallback
                match: {service.name: "*"}
                set: {team: platform, cost_center: CC-000}
            """
        )
    )
    server = start_server(
        ownership=str(rules), otlp={"ingest_tokens": [{"name": "acme-key", "token": "acme-secret-1"}]}
    )
    auth = {"authorization": "Bearer acme-secret-1"}
    support, other = Trace(), Trace()
    post(
        server,
        request(
            [support.span(attrs=usage(10, 1))],
            resource={"service.name": "support-bot", "deployment.environment.name": "prod"},
        ),
        auth,
    )
    post(
        server,
        request([other.span(attrs={**usage(10, 1), "tenant.id": "beta"})], resource={"service.name": "billing"}),
        auth,
    )
    server.wait_idle()
    first, second = run_row(server, support.run_id), run_row(server, other.run_id)
    assert (first["team"], first["cost_center"], first["product"], first["owner"], first["tenant"]) == (
        "support", "CC-100", "helpdesk", "ana@example.com", "acme",
    )  # fmt: skip
    assert (second["team"], second["cost_center"], second["tenant"]) == ("platform", "CC-000", "beta")  # span wins
    assert server.rows("SELECT team, sum(runs) FROM {db}.rollup_runs_hourly GROUP BY team ORDER BY team") == [
        ("platform", 1),
        ("support", 1),
    ]


def test_outcomes_from_span_attribute_and_evaluation_event_latest_wins(server):
    trace = Trace()
    root = trace.span(attrs={"otelspend.outcome": "edited"}, duration_ms=100)
    judged = trace.span(
        root,
        offset_ms=50,
        attrs=usage(10, 1),
        events=[
            (
                "gen_ai.evaluation.result",
                {"gen_ai.evaluation.score.label": "rejected", "gen_ai.evaluation.score.value": 0.2},
            )
        ],
    )
    post(server, request([judged, root]))
    server.wait_idle()
    run = run_row(server, trace.run_id)
    # The root's outcome is recorded when the root ends (101 ms), after the judge's event (50 ms).
    assert (run["outcome"], run["outcome_score"], run["outcome_source"]) == ("edited", None, "span")
    later = server.app.record_outcome(run_id=trace.run_id, outcome="accepted", label="reviewed")
    assert later == [trace.run_id]
    server.wait_idle()
    run = run_row(server, trace.run_id)
    assert (run["outcome"], run["outcome_label"], run["outcome_source"]) == ("accepted", "reviewed", "api")
    history = server.rows("SELECT outcome FROM {db}.outcomes WHERE run_id = {r:String}", r=trace.run_id)
    assert history == [("accepted",)]


def test_outcome_posted_before_the_run_arrives_by_workflow_id(server):
    server.app.record_outcome(workflow_id="wf-future", outcome="escalated")
    trace = Trace()
    post(server, request([trace.span(attrs={**usage(10, 1), "workflow.id": "wf-future"})]))
    server.wait_idle(timeout=30)
    assert run_row(server, trace.run_id)["outcome"] == "escalated"


def test_outcome_and_late_span_while_the_run_waits_for_its_batch_count_once(start_server):
    server = start_server(runs={"settle_seconds": 0.1, "emit_interval_seconds": 1.5})
    trace = Trace()
    root = trace.span(attrs={"workflow.id": "wf-batch"})
    post(server, request([trace.span(root, attrs=usage(100, 10)), root]))
    wait_for(lambda: trace.run_id in server.app.stitcher.emitting, what="run waiting for its batch")
    server.app.record_outcome(run_id=trace.run_id, outcome="accepted")
    post(server, request([trace.span(root, attrs=usage(200, 20))]))  # a straggler
    server.wait_idle()
    rows = server.rows("SELECT sum(sign), count() FROM {db}.runs WHERE run_id = {r:String}", r=trace.run_id)
    assert rows[0][0] == 1
    run = run_row(server, trace.run_id)
    assert (run["llm_calls"], run["input_tokens"], run["outcome"]) == (2, 300, "accepted")
    assert server.rows("SELECT sum(runs), sum(accepted_runs), sum(calls) FROM {db}.rollup_runs_hourly") == [(1, 1, 2)]
