"""28 days of seeded seasonal traffic raise no anomaly; the same traffic with one tenant at 5x
for two hours raises exactly that one, delivered to a real webhook with what moved. A workflow
type whose prompts grew raises its cost-per-successful-run spike naming that driver."""

from __future__ import annotations

import time
from typing import Any

from tests.controls.conftest import SECRET, api
from tests.controls.seed import HOUR_NS, seed

DAY_NS = 24 * HOUR_NS


def detector_runs(client: Any) -> int:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("otelspend_controls_detector_runs_total "):
            return int(float(line.split()[1]))
    return 0


def after_two_more_runs(client: Any) -> dict[str, Any]:
    """The detectors' status after two complete runs that started after now."""
    target = detector_runs(client) + 2
    deadline = time.monotonic() + 60
    while detector_runs(client) < target:
        assert time.monotonic() < deadline, "the anomaly detectors did not run"
        time.sleep(0.1)
    return client.get("/v1/controls/status").json()["anomaly_detectors"]


def anomalies(hook: Any) -> list[dict[str, Any]]:
    return [e for e in hook.events() if e["type"].startswith("anomaly.")]


def test_seasonal_traffic_is_normal_and_one_tenant_at_five_times_is_the_one_anomaly(controlled, hook):
    server = controlled(controls={"anomaly_interval_seconds": 1})
    now = time.time_ns()
    current_hour = now // HOUR_NS * HOUR_NS
    # 28 days up to the end of the current hour: whichever hour is "the last complete one" while
    # the test runs, it is seeded.
    written = seed(server.store, current_hour - 28 * DAY_NS, current_hour + HOUR_NS)
    assert written > 10_000
    with api(server) as client:
        status = after_two_more_runs(client)
        assert status["tenants"] == 4 and status["workflow_types"] == 2
        assert status["judged"] == 6 and status["out_of_range"] == 0  # every series had a baseline, none flagged
        assert anomalies(hook) == []

        # tenant-a at 5x its usual traffic in the last complete hour and the current one
        extra = seed(server.store, current_hour - HOUR_NS, current_hour + HOUR_NS, seed_value=99,
                     only_tenant="tenant-a", extra_factor=4)  # fmt: skip
        assert extra > 0
        (alert,) = hook.wait_for(lambda _events: anomalies(hook), 30)
        after_two_more_runs(client)  # it stays one incident while it lasts
        assert anomalies(hook) == [alert]
    received = next(r for r in hook.received if r.event["id"] == alert["id"])
    assert received.signed_by(SECRET)
    assert alert["type"] == "anomaly.tenant_cost" and alert["dimensions"] == {"tenant": "tenant-a"}
    observed, expected = float(alert["observed"]["value"]), float(alert["expected"]["value"])
    assert 3.5 < observed / expected < 7  # about 5x (per-hour noise +-20 %)
    hour = next(w for w in alert["details"]["windows"] if w["window"] == "hour")
    assert hour["out_of_range"] and len(hour["baseline_samples"]) >= 2 and hour["modified_z"] > 3.5
    assert {m["name"] for m in alert["details"]["top_models"]} <= {"claude-haiku-4-5", "gpt-4o"}
    assert alert["details"]["top_workflows"][0]["name"] in ("support_triage", "research")
    assert alert["details"]["top_features"]


def workflow_spikes(hook: Any) -> list[dict[str, Any]]:
    return [e for e in hook.events() if e["type"] == "anomaly.workflow_cost_spike"]


def test_a_workflow_whose_prompts_grew_raises_its_cost_per_success_spike_naming_the_driver(controlled, hook):
    server = controlled(controls={"anomaly_interval_seconds": 1})
    current_hour = time.time_ns() // HOUR_NS * HOUR_NS
    spike_from = current_hour - HOUR_NS  # the last complete hour and the current one
    # Three times the traffic, so the quietest hour (a weekend night) still has runs enough
    # of each workflow type to judge; 15 days give two weeks of the same hour of the week.
    assert seed(server.store, current_hour - 15 * DAY_NS, spike_from, level=3) > 10_000
    seed(server.store, spike_from, current_hour + HOUR_NS, seed_value=7, level=3, inflated="research")
    (alert,) = hook.wait_for(lambda _events: workflow_spikes(hook), 30)
    with api(server) as client:
        after_two_more_runs(client)  # one incident while it lasts; the other workflow type is normal
    assert workflow_spikes(hook) == [alert]
    assert alert["dimensions"] == {"workflow_type": "research"} and alert["control"] == "workflow_cost_spike"
    assert alert["observed"]["unit"] == alert["expected"]["unit"] == "USD per successful run"
    assert 2 < float(alert["observed"]["value"]) / float(alert["expected"]["value"]) < 5  # input x4, output as before
    hour = next(w for w in alert["details"]["windows"] if w["window"] == "hour")
    assert hour["out_of_range"] and len(hour["baseline_samples"]) == 2 and hour["modified_z"] > 3.5
    moved = {d["driver"]: d for d in alert["details"]["drivers"]}
    assert alert["details"]["drivers"][0]["driver"] == "input_tokens_per_call"
    assert moved["input_tokens_per_call"]["moved"] and 2 < moved["input_tokens_per_call"]["change"] < 4
    assert not moved["model_mix"]["moved"] and not moved["retries_per_run"]["moved"]  # one model, no retries
    received = next(r for r in hook.received if r.event["id"] == alert["id"])
    assert received.signed_by(SECRET)
