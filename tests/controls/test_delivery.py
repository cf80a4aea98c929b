"""Webhook delivery against a real HTTP receiver on loopback: signed, retried with backoff,
refused for good on a 4xx; the journal keeps what is not delivered yet."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import pytest

from otelspend.controls.decision import Flag
from otelspend.controls.delivery import Policy, Sink, SinkWorker, backoff_seconds, classify
from otelspend.controls.events import RETRY_LOOP, Detection, count, event_payload, resolved_payload
from otelspend.controls.incidents import Incident
from otelspend.controls.journal import Journal, done_record, event_record, flag_record, incident_record, recorded_record
from otelspend.controls.signing import signature, signature_header, verify
from otelspend.controls.store import DeliveryState
from otelspend.metrics import Metrics
from tests.conftest import wait_for
from tests.controls.receiver import webhook_receiver

FAST = Policy(timeout_seconds=0.5, initial_seconds=0.05, max_seconds=0.2, give_up_seconds=60)


def an_event(run_id: str = "a" * 32) -> dict[str, Any]:
    detection = Detection(RETRY_LOOP, f"k:{run_id}", "warning", "Retry loop", {"tenant": "acme"}, count(4, "retries"),
                          count(2, "retries"), details={"run_id": run_id}, run_id=run_id)  # fmt: skip
    return event_payload(detection, event_id="evt_" + "1" * 32, incident_id="inc_1", now_ns=time.time_ns(),
                         node="n1", base_url="http://otelspend.example:8000")  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.done: list[tuple[str, str, str]] = []
        self.states: list[DeliveryState] = []
        self.lock = threading.Lock()

    def on_done(self, event_id: str, sink: str, status: str, _at: int) -> None:
        with self.lock:
            self.done.append((event_id, sink, status))

    def on_state(self, state: DeliveryState) -> None:
        with self.lock:
            self.states.append(state)


def deliver(receiver_url: str, *, secret: str | None = "hook-secret", fmt: str = "json", policy: Policy = FAST):
    recorder = Recorder()
    sink = Sink("ops", receiver_url, secret.encode() if secret else None, fmt)  # type: ignore[arg-type]
    worker = SinkWorker(sink, policy, Metrics(), on_done=recorder.on_done, on_state=recorder.on_state, seed=1)
    worker.start()
    return worker, recorder


def test_a_signed_delivery_verifies_and_carries_the_event_id():
    with webhook_receiver() as hook:
        worker, recorder = deliver(hook.url)
        event = an_event()
        worker.enqueue(event, time.time_ns())
        wait_for(lambda: recorder.done, 10, "delivered")
        worker.stop()
    (received,) = hook.received
    assert received.event == event and received.signed_by("hook-secret") and not received.signed_by("other")
    assert received.headers["otelspend-event-id"] == event["id"]
    assert received.headers["otelspend-event-type"] == "run.retry_loop"
    assert received.headers["content-type"] == "application/json"
    assert recorder.done == [(event["id"], "ops", "delivered")] and recorder.states[-1].status == "delivered"


def test_signature_scheme_and_replay_window():
    body = b'{"id":"evt_x"}'
    header = signature_header(b"k", body, 1_000)
    assert header == f"t=1000,v1={signature(b'k', body, 1_000)}"
    assert verify(b"k", body, header, now=1_100)
    assert not verify(b"k", body + b" ", header, now=1_100)  # body changed
    assert not verify(b"k", body, header, now=1_000 + 301)  # replayed after the tolerance
    assert not verify(b"k", body, "t=1000", now=1_000)


def test_errors_and_timeouts_are_retried_with_backoff_until_delivered():
    with webhook_receiver() as hook:
        hook.answer = lambda n: 503 if n < 2 else 200
        hook.delay = lambda n: 1.0 if n == 2 else 0.0  # the third attempt times out (0.5 s)
        worker, recorder = deliver(hook.url)
        worker.enqueue(an_event(), time.time_ns())
        wait_for(lambda: recorder.done, 15, "delivered after retries")
        worker.stop()
    assert [r.answered for r in hook.received] == [503, 503, 200, 200]
    assert len({r.event["id"] for r in hook.received}) == 1  # the same event id every time
    states = [(s.status, s.attempts) for s in recorder.states]
    assert states == [("retrying", 1), ("retrying", 2), ("retrying", 3), ("delivered", 4)]
    assert "timed out after 0.5 s" in recorder.states[2].last_error
    assert recorder.states[0].last_error.startswith("HTTP 503")
    gaps = [b.at - a.at for a, b in zip(hook.received, hook.received[1:], strict=False)]
    assert gaps[0] >= 0.02  # waited (jittered backoff) before retrying


def test_a_4xx_is_refused_for_good_and_slack_gets_a_message():
    with webhook_receiver() as hook:
        hook.answer = lambda _n: 404
        worker, recorder = deliver(hook.url, secret=None, fmt="slack")
        worker.enqueue(an_event(), time.time_ns())
        wait_for(lambda: recorder.done, 10, "refused")
        worker.stop()
    (received,) = hook.received
    assert recorder.done[0][2] == "failed" and "otelspend-signature" not in received.headers
    message = json.loads(received.body)
    assert message["text"].endswith("Retry loop") and message["blocks"][0]["type"] == "header"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (204, "delivered"), (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"),
     (400, "failed"), (401, "failed"), (None, "retry")],
)  # fmt: skip
def test_classify(status, outcome):
    assert classify(status, "").outcome == outcome


def test_backoff_doubles_with_jitter_and_honours_retry_after():
    policy = Policy(initial_seconds=1, max_seconds=60)
    rng = random.Random(3)
    delays = [backoff_seconds(n, policy, rng) for n in range(1, 9)]
    assert all(0.5 * min(2 ** (n - 1), 60) <= d <= min(2 ** (n - 1), 60) for n, d in enumerate(delays, 1))
    assert backoff_seconds(1, policy, rng, retry_after=30) == 30 and backoff_seconds(1, policy, rng, 999) == 60


def test_the_journal_keeps_undelivered_events_incidents_and_flags_across_a_reopen(tmp_path):
    journal = Journal(tmp_path)
    journal.open(keep_incidents_after_ns=0, keep_flags_after_ns=0)
    delivered, pending = an_event("b" * 32), {**an_event("c" * 32), "id": "evt_" + "2" * 32}
    incident = Incident("k", "inc_1", RETRY_LOOP, pending, 5, 5, True)
    journal.append([event_record(delivered, ["ops", "slack"]), event_record(pending, ["ops", "slack"]),
                    incident_record(incident), flag_record(Flag("c" * 32, "loop", 7, "inc_1"))])  # fmt: skip
    journal.append(
        [
            done_record(delivered["id"], "ops", "delivered", 9),
            done_record(delivered["id"], "slack", "failed", 9),
            recorded_record(delivered["id"]),
            done_record(pending["id"], "ops", "delivered", 9),
        ]
    )
    journal.close()
    with (tmp_path / "journal.jsonl").open("a") as handle:
        handle.write('{"k": "done", "id": "evt_2222')  # a write torn by a crash
    state = Journal(tmp_path).open(keep_incidents_after_ns=0, keep_flags_after_ns=0)
    assert state.pending == {pending["id"]: ["slack"]} and state.unrecorded == {pending["id"]}
    assert set(state.events) == {pending["id"]} and state.skipped_lines == 1
    assert state.incidents["k"].incident_id == "inc_1" and state.flags["c" * 32].reason == "loop"
    resolved = resolved_payload(pending, event_id="evt_" + "3" * 32, now_ns=10**18, resolution="quiet")
    assert (resolved["type"], resolved["incident_id"]) == ("run.retry_loop.resolved", "inc_1")
    assert resolved["status"] == "resolved"
    assert resolved["links"]["api"].endswith("/v1/alerts/evt_" + "3" * 32)
