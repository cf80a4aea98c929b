"""End to end through the OTel SDK's OTLP exporters: a retry loop alerts a real webhook within
5 s with a valid signature and stops the run; a model outside policy alerts within 5 s."""

from __future__ import annotations

import json
import time

import pytest

from tests.controls.conftest import SECRET, api, chat, run_trace
from tests.otel import tracer_provider

POLICY = """\
version: 1
rules:
  - id: support-small-models
    match: {workflow_type: "support_*"}
    models: ["gpt-4o-mini*", "claude-haiku-*"]
    action: deny
"""


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_retry_loop_alerts_within_five_seconds_signed_and_the_run_is_told_to_stop(controlled, hook, transport):
    server = controlled()
    attributes = {"workflow.type": "support_triage", "tenant.id": "acme"}
    with tracer_provider(server, transport, service="support-bot") as provider:
        healthy, _ = run_trace(provider, lambda tracer: chat(tracer, "gpt-4o-mini"), **attributes)
        tracer = provider.get_tracer("controls-test")
        with tracer.start_as_current_span("workflow", attributes=attributes) as root:
            looping = format(root.get_span_context().trace_id, "032x")
            for _ in range(3):
                chat(tracer, "gpt-4o-mini", failed=True)
            chat(tracer, "gpt-4o-mini")
            acked = time.monotonic()  # the retry after three failures is exported (acknowledged)
            alerts = hook.wait_for(lambda events: [e for e in events if e["type"] == "run.retry_loop"], 5)
    received = next(r for r in hook.received if r.event["type"] == "run.retry_loop")
    assert received.at - acked < 5.0, f"alerted {received.at - acked:.2f}s after the span was acknowledged"
    assert received.signed_by(SECRET)
    (alert,) = alerts
    assert alert["details"]["run_id"] == looping != healthy  # the healthy run raised nothing
    assert alert["schema"] == "otelspend.alert.v1" and alert["status"] == "firing"
    assert alert["links"]["stop"] == f"{server.api_url}/v1/controls/runs/{looping}"
    with api(server) as client:
        stop = client.get(f"/v1/controls/runs/{looping}").json()
        assert stop["action"] == "stop" and stop["reason"] == "3 retries within 60 s (more than 2)"
        assert client.get(f"/v1/controls/runs/{healthy}").json()["action"] == "continue"
        check = client.get("/v1/controls/check", params={"run_id": looping, "tenant": "acme"}).json()
        assert check["action"] == "deny" and check["reasons"][0]["control"] == "retry_loop"
        server.wait_idle()
        history = client.get("/v1/alerts", params={"type": "run.retry_loop"}).json()["alerts"]
        assert [a["id"] for a in history] == [alert["id"]]
        deliveries = {d["sink"]: d for d in history[0]["deliveries"]}
        assert deliveries["ops"]["status"] == "delivered"
        # The suite's canary webhook (tests/canary.py) listens nowhere: retried, and shown so.
        assert deliveries["default"]["status"] in ("pending", "retrying")
        stored = server.scalar("SELECT retry_loop FROM {db}.runs FINAL WHERE run_id = {r:String}", r=looping)
        assert stored == 1  # the stored run agrees once it closes


def test_a_model_outside_policy_alerts_within_five_seconds(controlled, hook, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    server = controlled(controls={"policy": str(policy)})
    with tracer_provider(server, "grpc", service="support-bot") as provider:
        tracer = provider.get_tracer("controls-test")
        with tracer.start_as_current_span("workflow", attributes={"workflow.type": "support_triage"}):
            chat(tracer, "gpt-4o-mini", **{"workflow.type": "support_triage"})
            chat(tracer, "gpt-4o", **{"workflow.type": "support_triage"})  # the call knows its workflow
            acked = time.monotonic()
            (alert,) = hook.wait_for(lambda events: [e for e in events if e["type"] == "policy.model_violation"], 5)
    received = next(r for r in hook.received if r.event["type"] == "policy.model_violation")
    assert received.at - acked < 5.0 and received.signed_by(SECRET)
    assert alert["details"]["rule"] == "support-small-models" and alert["observed"] == {
        "value": "gpt-4o",
        "unit": "model",
    }
    assert alert["dimensions"]["workflow_type"] == "support_triage"
    with api(server) as client:
        metrics = client.get("/metrics").text.splitlines()
        assert 'otelspend_policy_violations_total{rule="support-small-models"} 1' in metrics
        denied = client.get("/v1/controls/check", params={"workflow_type": "support_triage", "model": "gpt-4o"})
        assert denied.json()["action"] == "deny"
        allowed = client.get("/v1/controls/check", params={"workflow_type": "support_triage", "model": "gpt-4o-mini"})
        assert allowed.json() == {"action": "allow", "reasons": []}
        unknown = client.get("/v1/controls/check", params={"model": "gpt-4o", "tenat": "x"})
        assert unknown.status_code == 422 and "tenat" in json.dumps(unknown.json())
