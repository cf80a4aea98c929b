from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.otel import tracer_provider


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_agent_run_is_stored_priced_and_stitched(server, transport):
    with tracer_provider(server, transport, service="support-bot") as provider:
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("agent run", kind=SpanKind.SERVER) as root:
            root.set_attribute("workflow.id", "wf-1")
            root.set_attribute("workflow.type", "support_triage")
            root.set_attribute("tenant.id", "acme")
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
                span.set_attributes(
                    {
                        "gen_ai.provider.name": "openai",
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "gen_ai.usage.input_tokens": 1200,
                        "gen_ai.usage.output_tokens": 100,
                        "gen_ai.usage.cache_read.input_tokens": 1000,
                        "gen_ai.response.id": "chatcmpl-1",
                    }
                )
            with tracer.start_as_current_span("execute_tool search", kind=SpanKind.INTERNAL) as tool:
                tool.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
                tool.set_status(Status(StatusCode.OK))
    server.wait_idle()
    spans = server.dicts("SELECT * FROM {db}.spans FINAL ORDER BY start_time")
    assert len(spans) == 3
    chat = next(s for s in spans if s["span_class"] == "llm")
    assert chat["provider"] == "openai"
    assert chat["model"] == "gpt-4o-mini-2024-07-18"
    assert chat["input_tokens"] == 1200 and chat["cache_read_tokens"] == 1000
    # gpt-4o-mini: $0.15/MTok input, $0.075/MTok cached input, $0.60/MTok output
    assert str(chat["cost_input_usd"]) == "0.000030000000000"
    assert str(chat["cost_cache_read_usd"]) == "0.000075000000000"
    assert str(chat["cost_output_usd"]) == "0.000060000000000"
    assert str(chat["cost_usd"]) == "0.000165000000000"
    runs = server.dicts("SELECT * FROM {db}.runs FINAL")
    assert len(runs) == 1
    run = runs[0]
    assert run["workflow_type"] == "support_triage" and run["tenant"] == "acme"
    assert run["llm_calls"] == 1 and run["tool_calls"] == 1 and run["status"] == "success"
    assert str(run["cost_usd"]) == "0.000165000000000"
    rollup = server.rows("SELECT sum(runs), sum(cost_usd), sum(calls) FROM {db}.rollup_runs_hourly")
    assert rollup == [(1, run["cost_usd"], 1)]


def test_outcome_posted_later_updates_run_and_rollups(server):
    with tracer_provider(server, "grpc") as provider:
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("agent run") as root:
            root.set_attribute("workflow.id", "wf-outcome")
            with tracer.start_as_current_span("chat") as span:
                span.set_attributes(
                    {
                        "gen_ai.provider.name": "anthropic",
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "claude-sonnet-4-5",
                        "gen_ai.usage.input_tokens": 3570,
                        "gen_ai.usage.output_tokens": 120,
                        "gen_ai.usage.cache_read.input_tokens": 3000,
                        "gen_ai.usage.cache_write.input_tokens": 500,
                    }
                )
    server.wait_idle()
    run_id = server.scalar("SELECT run_id FROM {db}.runs FINAL")
    assert server.scalar("SELECT outcome FROM {db}.runs FINAL") == ""
    updated = server.app.record_outcome(workflow_id="wf-outcome", outcome="accepted", score=0.9, label="good")
    assert updated == [run_id]
    server.wait_idle()
    run = server.dicts("SELECT * FROM {db}.runs FINAL")[0]
    assert (run["outcome"], run["outcome_score"], run["outcome_label"], run["outcome_source"]) == (
        "accepted",
        0.9,
        "good",
        "api",
    )
    # claude-sonnet-4-5: 70 input x $3 + 3000 cache read x $0.30 + 500 cache write x $3.75 + 120 output x $15 per MTok
    assert str(run["cost_usd"]) == "0.004785000000000"
    rollup = server.rows("SELECT sum(runs), sum(accepted_runs), sum(cost_usd) FROM {db}.rollup_runs_hourly")
    assert rollup == [(1, 1, run["cost_usd"])]
