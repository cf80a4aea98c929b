"""A restart in the middle of delivery: the alert queued before it is delivered after it, once
per event id, with the id it was raised with; nothing is raised twice for the same incident
(a crash replays the write-ahead log, whose spans are seen again)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import pytest

from bench.server import ServerProcess
from tests.controls.conftest import SECRET, chat
from tests.controls.receiver import webhook_receiver
from tests.otel import tracer_provider


@dataclass
class Endpoints:
    """What ``tests.otel.tracer_provider`` needs of a server."""

    grpc_endpoint: str
    http_url: str


@pytest.mark.parametrize("stop", ["kill", "terminate"], ids=["kill-9", "sigterm"])
def test_an_alert_queued_before_a_restart_is_delivered_once_after_it(tmp_path, stop):
    with webhook_receiver() as hook:
        hook.answer = lambda _n: 503  # the webhook is down
        env = {
            "OTELSPEND_NODE_ID": "restart",
            "OTELSPEND_RUNS_SETTLE_SECONDS": "0.3",
            "OTELSPEND_CLICKHOUSE_FLUSH_INTERVAL_MS": "20",
            "OTELSPEND_ALERTS_WEBHOOK_URL": hook.url,
            "OTELSPEND_ALERTS_WEBHOOK_SECRET": SECRET,
            "OTELSPEND_ALERTS_RETRY_INITIAL_SECONDS": "0.2",
            "OTELSPEND_ALERTS_RETRY_MAX_SECONDS": "0.5",
        }
        first = ServerProcess(tmp_path / "data", env=env).start()
        try:
            endpoints = Endpoints(first.grpc_address, first.http_endpoint)
            with tracer_provider(endpoints, "grpc", service="support-bot") as provider:
                tracer = provider.get_tracer("restart-test")
                with tracer.start_as_current_span("workflow", attributes={"tenant.id": "acme"}) as root:
                    run_id = format(root.get_span_context().trace_id, "032x")
                    for _ in range(4):
                        chat(tracer, "gpt-4o-mini", failed=True)
            deadline = time.monotonic() + 20
            while len(hook.received) < 2:  # raised, and retried at least once
                assert time.monotonic() < deadline, "the alert was not attempted twice"
                time.sleep(0.05)
            api = f"http://{first.api_address}"
            history = _alerts(api)
            assert history and history[0]["deliveries"][0]["status"] in ("retrying", "pending")
        finally:
            code = first.kill() if stop == "kill" else first.terminate()
        assert stop == "kill" or code == 0
        attempts_before = len(hook.received)
        event_id = hook.received[0].event["id"]
        assert {r.event["id"] for r in hook.received} == {event_id}

        hook.answer = lambda _n: 200  # the webhook is back
        second = ServerProcess(tmp_path / "data", env=env).start()
        try:
            deadline = time.monotonic() + 20
            while not any(200 <= r.answered < 300 for r in hook.received):
                assert time.monotonic() < deadline, f"not delivered after the restart:\n{second.log_tail()}"
                time.sleep(0.05)
            time.sleep(1.5)  # long enough for a duplicate to show up if one were coming
            api = f"http://{second.api_address}"
            delivered = _wait_delivered(api, event_id)
        finally:
            second.terminate()

    accepted = [r for r in hook.received if 200 <= r.answered < 300]
    assert [r.event["id"] for r in accepted] == [event_id]  # delivered once, with the id it was raised with
    assert {r.event["id"] for r in hook.received} == {event_id}  # no second alert for the same incident
    assert accepted[0].event["details"]["run_id"] == run_id and accepted[0].signed_by(SECRET)
    assert json.loads(accepted[0].body) == json.loads(hook.received[0].body)  # the same event, byte for byte
    assert len(hook.received) > attempts_before
    assert delivered["deliveries"][0]["status"] == "delivered"


def _alerts(api: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(f"{api}/v1/alerts", timeout=10).json()["alerts"]
        if found and found[0]["deliveries"]:
            return found
        assert time.monotonic() < deadline, "the alert is not in /v1/alerts"
        time.sleep(0.1)


def _wait_delivered(api: str, event_id: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(f"{api}/v1/alerts/{event_id}", timeout=10)
        if found.status_code == 200 and found.json()["deliveries"][0]["status"] == "delivered":
            return found.json()
        assert time.monotonic() < deadline, f"/v1/alerts/{event_id} does not say delivered: {found.text}"
        time.sleep(0.1)
