"""Call dedup rules of ``compute_run`` on hand-made span trees (pure, no server): what makes
two spans one call, which one is counted, and what must stay two calls."""

from __future__ import annotations

from typing import Any

import pytest

from otelspend.enrich.runs import RunRecord, compute_run
from otelspend.record import LITE_FIELDS

_NULLABLE = {
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "reported_cost_usd", "outcome_score", "cost_usd",
}  # fmt: skip
MS = 1_000_000


def span(span_id: str, parent: str = "root", start_ms: float = 0, end_ms: float = 100, **fields: Any) -> tuple:
    values: dict[str, Any] = {name: None if name in _NULLABLE else "" for name in LITE_FIELDS}
    values.update(
        trace_id="t",
        span_id=span_id,
        parent_span_id=parent,
        start_time=int(start_ms * MS),
        end_time=int(end_ms * MS),
        duration_ns=int((end_ms - start_ms) * MS),
        status_code="UNSET",
        span_class="other",
        resend_count=0,
        retry_count=0,
        payload_bytes=0,
        version=1,
        resource_id=0,
        attributes=((), ()),
        outcome_time=0,
    )
    values.update(fields)
    return tuple(values[name] for name in LITE_FIELDS)


def llm(span_id: str, scope: str, start_ms: float, end_ms: float, *, usage: bool = True, **fields: Any) -> tuple:
    fields.setdefault("model", "claude-haiku-4-5")
    if usage:
        fields = {"input_tokens": 1248, "output_tokens": 60, "cost_usd": 1_848_000_000_000, **fields}
    return span(
        span_id, start_ms=start_ms, end_ms=end_ms, span_class="llm", operation="chat", provider="anthropic",
        scope_name=scope, **fields,
    )  # fmt: skip


ROOT = span("root", parent="", start_ms=0, end_ms=1000, span_class="agent")
TRACELOOP = "opentelemetry.instrumentation.anthropic"
SDK = "com.anthropic.sdk.python"


def run_of(*spans: tuple) -> tuple[RunRecord, dict[str, str]]:
    result = compute_run([ROOT, *spans])
    return result.run, {sid: role for sid, role in result.roles.items() if sid != "root"}


def test_failed_call_seen_by_two_libraries_as_siblings_is_one_failed_call():
    # traceloop-anthropic capture: Traceloop's span and the SDK's, both ERROR, no response id.
    run, roles = run_of(
        llm("tl", TRACELOOP, 400.5, 601.0, usage=False, status_code="ERROR", error_type="RateLimitError"),
        llm("sdk", SDK, 401.7, 597.8, usage=False, status_code="ERROR", resend_count=2),
    )
    assert (run.llm_calls, run.retries, run.unpriced_calls, run.duplicate_views) == (1, 2, 0, 1)
    assert roles == {"sdk": "call", "tl": "view"}  # the inner span, nearest the wire


@pytest.mark.parametrize(
    ("inner", "why"),
    [
        (dict(scope_name=TRACELOOP), "one library never reports one call twice: parallel calls"),
        (dict(model="claude-sonnet-4-5"), "another model is another request"),
        (dict(response_id="msg_2"), "two provider responses are two calls"),
        (dict(start_ms=90, end_ms=130), "not inside the other span"),
    ],
)
def test_siblings_stay_separate_calls_when_anything_tells_them_apart(inner, why):
    spans = {"response_id": "", **inner}
    outer = llm("a", TRACELOOP, 0, 120, response_id="msg_1" if spans["response_id"] else "")
    fields = {k: v for k, v in spans.items() if k not in ("start_ms", "end_ms", "scope_name")}
    other = llm("b", spans.get("scope_name", SDK), spans.get("start_ms", 10), spans.get("end_ms", 110), **fields)
    run, _ = run_of(outer, other)
    assert run.llm_calls == 2, why


def test_dated_snapshot_and_alias_are_the_same_model_but_a_longer_name_is_not():
    def calls(outer_model: str, inner_model: str) -> int:
        run, _ = run_of(llm("a", TRACELOOP, 0, 120, model=outer_model), llm("b", SDK, 10, 110, model=inner_model))
        return run.llm_calls

    assert calls("gpt-4o-mini", "gpt-4o-mini-2024-07-18") == 1
    assert calls("claude-sonnet-4-5", "claude-sonnet-4-5-20250929") == 1
    assert calls("gpt-4o", "gpt-4o-mini") == 2


def test_the_richest_report_is_counted_even_when_a_poorer_one_is_nested_deeper():
    # Traceloop reports cached tokens; openai-v2 nested inside it does not.
    run, roles = run_of(
        llm("rich", "opentelemetry.instrumentation.openai.v1", 0, 100, response_id="c1", cache_read_tokens=1024,
            reasoning_tokens=0, cost_usd=131_400_000_000),
        llm("poor", "opentelemetry.util.genai.handler", 10, 90, parent="rich", response_id="c1",
            cost_usd=208_200_000_000),
    )  # fmt: skip
    assert roles == {"rich": "call", "poor": "view"}
    assert (run.llm_calls, run.cache_read_tokens, run.cost_usd) == (1, 1024, 131_400_000_000)


def test_a_streams_usage_record_after_the_request_completes_that_request():
    # logfire: the request span ends when the stream is returned (no usage); a zero-length
    # log record with the usage follows once the stream has been read.
    request = llm("req", "logfire.openai", 0, 20, usage=False, model="gpt-4o-mini")
    record = llm("log", "logfire.openai", 60, 60, model="gpt-4o-mini")
    run, roles = run_of(request, record)
    assert (run.llm_calls, run.unpriced_calls, roles) == (1, 0, {"log": "call", "req": "view"})


@pytest.mark.parametrize(
    ("spans", "why"),
    [
        (
            [
                llm("req", "logfire.openai", 0, 20, usage=False, status_code="ERROR"),
                llm("log", "logfire.openai", 60, 60),
            ],
            "a failed request has no stream to report on",
        ),
        (
            [llm("req", "logfire.openai", 0, 20, usage=False), llm("log", "logfire.openai", 60, 70)],
            "a record with a duration is a request of its own",
        ),
        (
            [
                llm("req", "logfire.openai", 0, 20, usage=False),
                llm("mid", "logfire.openai", 30, 50),
                llm("log", "logfire.openai", 60, 60),
            ],
            "another request of that library came in between",
        ),
    ],
)
def test_usage_records_only_complete_the_request_right_before_them(spans, why):
    run, _ = run_of(*spans)
    assert run.llm_calls == len(spans), why


def test_usage_on_an_agent_span_above_calls_is_an_aggregate_not_a_call():
    agent = span("agent", start_ms=0, end_ms=500, span_class="agent", input_tokens=2496, output_tokens=120)
    run, roles = run_of(agent, llm("c1", SDK, 10, 100, parent="agent"), llm("c2", SDK, 110, 200, parent="agent"))
    assert (run.llm_calls, run.input_tokens, roles["agent"]) == (2, 2496, "aggregate")
    alone, alone_roles = run_of(span("agent", span_class="agent", input_tokens=10, output_tokens=1, cost_usd=5))
    assert (alone.llm_calls, alone_roles["agent"]) == (1, "call")  # the only record of a call


def test_nested_spans_are_one_call_only_when_nothing_tells_them_apart():
    # An instrumentor's span around the SDK's: same provider, operation, model (a dated
    # snapshot of the alias): one call, the inner one counted.
    run, roles = run_of(
        llm("outer", TRACELOOP, 0, 100, model="claude-haiku-4-5"),
        llm("sdk", SDK, 10, 90, parent="outer", model="claude-haiku-4-5-20251001"),
    )
    assert (run.llm_calls, roles) == (1, {"outer": "view", "sdk": "call"})


def test_a_span_wrapping_calls_to_other_models_is_not_their_view():
    # LiteLLM's callback writes its last call (an Anthropic one) onto the application's own
    # span, which wraps every other call of the run: those stay calls of their own.
    app = span(
        "app", start_ms=0, end_ms=900, span_class="llm", operation="chat", provider="anthropic",
        model="claude-sonnet-4-5-20250929", input_tokens=3570, output_tokens=120, cost_usd=12_510_000_000_000,
        scope_name="rc.app",
    )  # fmt: skip
    bedrock = span(
        "b1", parent="app", start_ms=100, end_ms=200, span_class="llm", operation="chat", provider="aws.bedrock",
        model="amazon.nova-lite-v1:0", input_tokens=310, output_tokens=55,
        scope_name="opentelemetry.instrumentation.botocore.bedrock-runtime",
    )  # fmt: skip
    gemini = span(
        "g1", parent="app", start_ms=300, end_ms=400, span_class="llm", operation="generate_content",
        provider="gcp.gemini", model="gemini-2.0-flash", input_tokens=410, output_tokens=66,
        scope_name="opentelemetry.instrumentation.google_genai",
    )  # fmt: skip
    run, roles = run_of(app, bedrock, gemini)
    assert run.llm_calls == 3
    assert roles == {"app": "call", "b1": "call", "g1": "call"}
