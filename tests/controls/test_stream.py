"""Stream controls: retry loops counted once per provider call, in a window; policy checked once
the run's attributes are known."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelspend.controls.events import POLICY_VIOLATION, RETRY_LOOP
from otelspend.controls.policy import Policy, PolicyRule, UnitPrices
from otelspend.controls.stream import StreamControls, StreamLimits
from otelspend.record import L
from tests.controls.spans import MS, T0, call, lite


def controls(**limits: Any) -> StreamControls:
    return StreamControls(StreamLimits(**limits), lambda *_: UnitPrices(Fraction(5), Fraction(15)))


def feed(stream: StreamControls, *batches: list[tuple[Any, ...]]) -> list[Any]:
    found = []
    for batch in batches:
        found += stream.observe(batch, 0.0)
    return found


def root_and_agent(**root_fields: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    root = lite(duration_ms=60_000, **root_fields)
    agent = lite(parent_span_id=root[L.span_id], span_class="agent", operation="invoke_agent", start_ms=1)
    return root, agent


@pytest.mark.parametrize(
    ("failed", "expected"),
    [pytest.param(2, 0, id="two-retries-within-bounds"), pytest.param(3, 1, id="three-retries-alert")],
)
def test_failed_calls_retried_by_the_application(failed, expected):
    root, agent = root_and_agent()
    attempts = [call(agent[L.span_id], failed=True, start_ms=10 * i) for i in range(failed)]
    success = call(agent[L.span_id], start_ms=10 * failed)
    found = feed(controls(), attempts, [success], [agent, root])  # children first, root last
    loops = [d for d in found if d.type == RETRY_LOOP]
    assert len(loops) == expected
    if loops:
        assert loops[0].run_id == root[L.trace_id] and loops[0].observed.value == str(failed)
        assert loops[0].details["reason"] == f"{failed} retries within 60 s (more than 2)"


def test_a_loop_is_raised_once_per_run():
    _, agent = root_and_agent()
    stream = controls()
    found = feed(stream, *[[call(agent[L.span_id], failed=True, start_ms=i)] for i in range(8)])
    assert [d.type for d in found] == [RETRY_LOOP]


def test_views_of_one_call_count_its_resends_once():
    """The Anthropic SDK's span (resend_count 2) nested in an instrumentor's span that repeats it:
    one call with two retries, not four."""
    _, agent = root_and_agent()
    outer = call(agent[L.span_id], resend_count=2, response_id="msg_1", scope_name="traceloop", duration_ms=900)
    inner = call(outer[L.span_id], resend_count=2, response_id="msg_1", scope_name="anthropic-sdk", start_ms=1)
    stream = controls(screen=False)  # analysed from the first span: the counts below are visible
    assert feed(stream, [inner], [outer]) == []
    assert (stream.stats.calls, stream.stats.views) == (1, 1)
    third = call(agent[L.span_id], resend_count=1, start_ms=2000)
    assert [d.type for d in feed(stream, [third])] == [RETRY_LOOP]  # 2 + 1 retries > 2


def test_sibling_views_from_two_libraries_are_one_call():
    _, agent = root_and_agent()
    outer = call(agent[L.span_id], failed=True, scope_name="traceloop", duration_ms=500)
    inner = call(agent[L.span_id], failed=True, scope_name="anthropic-sdk", start_ms=10, duration_ms=400)
    stream = controls(screen=False)
    feed(stream, [inner, outer])
    assert (stream.stats.calls, stream.stats.views) == (1, 1)


def test_per_attempt_http_spans_are_retries():
    _, agent = root_and_agent()
    chat = call(agent[L.span_id])
    attempts = [
        lite(parent_span_id=chat[L.span_id], span_class="http", http_method="POST", start_ms=i) for i in range(4)
    ]
    found = feed(controls(), attempts[:2], [chat], attempts[2:])  # attempts before and after their call
    assert [d.observed.value for d in found] == ["3"]


@pytest.mark.parametrize(
    ("spacing_ms", "expected"),
    [pytest.param(1_000, 1, id="ten-calls-in-ten-seconds"), pytest.param(60_000, 0, id="ten-calls-in-ten-minutes")],
)
def test_many_calls_of_one_step_within_the_window(spacing_ms, expected):
    _, agent = root_and_agent()
    calls = [call(agent[L.span_id], start_ms=i * spacing_ms) for i in range(10)]
    found = feed(controls(), calls)
    assert len(found) == expected
    if found:
        assert found[0].details["max_step_calls_in_window"] == 10 and found[0].observed.unit == "calls"


def test_a_tool_called_in_a_loop():
    _, agent = root_and_agent()
    tools = [
        lite(parent_span_id=agent[L.span_id], span_class="tool", tool_name="search", start_ms=i * 100)
        for i in range(10)
    ]
    (found,) = feed(controls(), tools)
    assert found.details["busiest_step"] == {"kind": "tool", "parent_span_id": agent[L.span_id], "tool": "search"}


RULE = PolicyRule("support-mini", (("workflow_type", "support*"),), ("gpt-4o-mini*",), (), None, None, "deny")


def test_a_call_outside_policy_waits_for_the_attributes_its_rule_needs():
    root, agent = root_and_agent(workflow_type="support_triage", tenant="acme")
    stream = controls()
    stream.set_policy(Policy((RULE,)))
    outer = call(agent[L.span_id], model="gpt-4o", response_id="r1", scope_name="a")
    inner = call(outer[L.span_id], model="gpt-4o", response_id="r1", scope_name="b")
    allowed = call(agent[L.span_id], model="gpt-4o-mini-2024-07-18", start_ms=500)
    assert feed(stream, [inner, allowed], [outer]) == []  # workflow type unknown until the root arrives
    (violation,) = feed(stream, [agent, root])
    assert violation.type == POLICY_VIOLATION and violation.details["rule"] == "support-mini"
    assert violation.dimensions["workflow_type"] == "support_triage" and violation.observed.value == "gpt-4o"
    assert dict(stream.stats.violations) == {"support-mini": 1}  # the view is not a second violation


def test_a_call_knowing_its_attributes_is_checked_at_once_and_caps_use_list_prices():
    stream = controls()
    cap = PolicyRule("cap", (), None, (), Fraction(3), None, "warn")
    stream.set_policy(Policy((cap,)))
    (found,) = feed(stream, [call("p" * 16, model="gpt-4o")])  # priced 5 USD/MTok input by the lookup above
    assert (found.observed.value, found.threshold.value) == ("5", "3")  # type: ignore[union-attr]
    assert found.observed.unit == "USD per million tokens"


def test_memory_is_bounded():
    stream = controls(max_runs=100)
    for index in range(300):
        feed(stream, [call("p" * 16, trace_id=f"{index:032x}")])
    assert len(stream.runs) == 100 and stream.stats.runs_evicted == 200


# -- screening changes the cost, never the detections ---------------------------------------------

_SPAN_KIND = st.sampled_from(["ok", "failed", "resend", "retry_attr", "view_nested", "view_sibling", "http", "tool"])


@st.composite
def _runs(draw: st.DrawFn) -> list[list[tuple[Any, ...]]]:
    """A few runs' spans in an arbitrary order, split into arbitrary batches."""
    spans: list[tuple[Any, ...]] = []
    for run_index in range(draw(st.integers(1, 3))):
        trace = f"{run_index + 1:032x}"
        root = lite(trace_id=trace, duration_ms=600_000, workflow_type=draw(st.sampled_from(["support", "batch"])))
        agent = lite(trace_id=trace, parent_span_id=root[L.span_id], span_class="agent", start_ms=1)
        run_spans = [root, agent]
        calls: list[tuple[Any, ...]] = []
        for _ in range(draw(st.integers(0, 14))):
            kind = draw(_SPAN_KIND)
            start = draw(st.integers(0, 120_000))
            model = draw(st.sampled_from(["gpt-4o-mini", "gpt-4o"]))
            parent = agent[L.span_id]
            if kind in ("view_nested", "http") and calls:
                parent = draw(st.sampled_from(calls))[L.span_id]
            if kind == "http":
                run_spans.append(lite(trace_id=trace, parent_span_id=parent, span_class="http", start_ms=start))
                continue
            if kind == "tool":
                run_spans.append(lite(trace_id=trace, parent_span_id=parent, span_class="tool", tool_name="search",
                                      start_ms=start))  # fmt: skip
                continue
            extra: dict[str, Any] = {}
            if kind == "resend":
                extra["resend_count"] = draw(st.integers(1, 3))
            if kind == "retry_attr":
                extra["retry_count"] = draw(st.integers(1, 3))
            if kind == "view_sibling" and calls:
                sibling = draw(st.sampled_from(calls))
                extra.update(scope_name="other-lib", provider=sibling[L.provider], model=sibling[L.model])
                start = (sibling[L.start_time] - T0) // MS + 1
                parent = sibling[L.parent_span_id]
            span = call(parent, failed=kind == "failed", trace_id=trace, start_ms=start, duration_ms=50,
                        **{"model": model, **extra})  # fmt: skip
            calls.append(span)
            run_spans.append(span)
        spans += draw(st.permutations(run_spans))
    cuts = sorted(draw(st.lists(st.integers(0, len(spans)), max_size=4)))
    bounds = [0, *cuts, len(spans)]
    return [spans[a:b] for a, b in itertools.pairwise(bounds)]


def _summary(detections: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (d.type, d.key, d.observed.value, d.observed.unit, str(sorted(d.details.items()))) for d in detections
    )


@settings(max_examples=300, deadline=None)
@given(batches=_runs(), with_policy=st.booleans())
def test_screening_never_changes_what_is_detected(batches, with_policy):
    """The cheap screen (upper bounds of retries and calls) analyses a run in full before any rule
    could fire, so the detections equal those of analysing every span at once."""
    results = []
    for screen in (True, False):
        stream = controls(screen=screen)
        if with_policy:
            stream.set_policy(Policy((RULE,)))
        found = feed(stream, *batches)
        found += stream.forget_idle(10**9, 0)  # waiting calls checked with what is known
        results.append(_summary(found))
    assert results[0] == results[1]
