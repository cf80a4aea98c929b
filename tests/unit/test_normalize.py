"""Normalisation of spans as real instrumentations emit them (one table, no per-library code)."""

from __future__ import annotations

import math

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otelspend.conventions import load_conventions
from otelspend.receiver.normalize import NormalizeOptions, Normalizer
from otelspend.record import F
from tests.otlp import request, span

TABLE = load_conventions()


def normalize(spans, options=None, **kwargs):
    return Normalizer(TABLE, options).normalize(request(spans, **kwargs))


def one(attrs, options=None, **kwargs):
    batch = normalize([span(attrs=attrs, **kwargs.pop("span_kwargs", {}))], options, **kwargs)
    assert batch.rejected == 0, batch.error_message
    return batch.rows[0]


def test_otel_genai_current_names():
    row = one(
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.input_tokens": 3570,
            "gen_ai.usage.output_tokens": 120,
            "gen_ai.usage.cache_read.input_tokens": 3000,
            "gen_ai.usage.cache_write.input_tokens": 500,
            "gen_ai.usage.reasoning.output_tokens": 40,
            "gen_ai.agent.name": "triage",
            "gen_ai.conversation.id": "conv-1",
            "gen_ai.response.id": "msg_1",
            "error.type": "rate_limit_error",
            "http.request.resend_count": 2,
            "server.address": "api.anthropic.com",
        },
        scope="com.anthropic.sdk.python",
    )
    assert row[F.span_class] == "llm" and row[F.operation] == "chat" and row[F.provider] == "anthropic"
    assert (row[F.request_model], row[F.response_model], row[F.model]) == (
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5-20250929",
    )
    assert (row[F.input_tokens], row[F.output_tokens]) == (3570, 120)
    assert (row[F.cache_read_tokens], row[F.cache_write_tokens], row[F.reasoning_tokens]) == (3000, 500, 40)
    assert (row[F.agent_name], row[F.conversation_id], row[F.response_id]) == ("triage", "conv-1", "msg_1")
    assert (row[F.error_type], row[F.resend_count]) == ("rate_limit_error", 2)
    assert row[F.scope_name] == "com.anthropic.sdk.python"
    keys, values = row[F.attributes]
    assert dict(zip(keys, values, strict=True)) == {"server.address": "api.anthropic.com"}


def test_deprecated_names_map_to_current_columns():
    row = one(
        {
            "gen_ai.system": "vertex_ai",
            "gen_ai.usage.prompt_tokens": "1500",
            "gen_ai.usage.completion_tokens": 60.0,
            "gen_ai.usage.cache_creation.input_tokens": 200,
            "gen_ai.request.model": "gemini-2.5-pro",
        }
    )
    assert row[F.provider] == "gcp.vertex_ai"
    assert (row[F.input_tokens], row[F.output_tokens], row[F.cache_write_tokens]) == (1500, 60, 200)
    assert row[F.span_class] == "llm"  # no operation, but usage: an inference call


def test_current_name_wins_over_deprecated_one_in_any_order():
    row = one({"gen_ai.system": "openai", "gen_ai.provider.name": "azure.ai.openai"})
    assert row[F.provider] == "azure.ai.openai"


def test_openinference_llm_span_is_internal_and_still_a_call():
    row = one(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.invocation_parameters": '{"model": "gpt-4o-mini", "temperature": 0}',
            "llm.token_count.prompt": 1200,
            "llm.token_count.completion": 80,
            "llm.token_count.prompt_details.cache_read": 1000,
            "llm.token_count.completion_details.reasoning": 10,
            "llm.token_count.total": 1280,
            "session.id": "sess-9",
            "user.id": "user-7",
            "input.value": "What is my invoice total?",
            "llm.input_messages.0.message.content": "What is my invoice total?",
        },
        span_kwargs={"kind": Span.SPAN_KIND_INTERNAL},
    )
    assert row[F.kind] == "INTERNAL" and row[F.span_class] == "llm" and row[F.operation] == "chat"
    assert row[F.provider] == "openai"
    assert (row[F.request_model], row[F.response_model]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (row[F.input_tokens], row[F.output_tokens], row[F.cache_read_tokens]) == (1200, 80, 1000)
    assert (row[F.reasoning_tokens], row[F.total_tokens]) == (10, 1280)
    assert (row[F.conversation_id], row[F.user]) == ("sess-9", "user-7")
    assert row[F.payload_bytes] == 2 * len("What is my invoice total?")
    keys, _ = row[F.attributes]
    assert "input.value" not in keys and not any(k.startswith("llm.input_messages") for k in keys)


def test_openinference_kinds_classify_tools_and_agents():
    tool = one({"openinference.span.kind": "TOOL", "tool.name": "search_kb"})
    agent = one({"openinference.span.kind": "AGENT", "agent.name": "planner"})
    assert (tool[F.span_class], tool[F.operation], tool[F.tool_name]) == ("tool", "execute_tool", "search_kb")
    assert (agent[F.span_class], agent[F.agent_name]) == ("agent", "planner")


def test_openllmetry_traceloop_workflow_and_association_properties():
    workflow = one(
        {
            "traceloop.span.kind": "workflow",
            "traceloop.workflow.name": "support_triage",
            "traceloop.association.properties.tenant_id": "acme",
            "traceloop.association.properties.user_id": "u-1",
            "traceloop.entity.input": '{"question": "hi"}',
        }
    )
    assert workflow[F.span_class] == "workflow" and workflow[F.operation] == "invoke_workflow"
    assert (workflow[F.workflow_type], workflow[F.tenant], workflow[F.user]) == ("support_triage", "acme", "u-1")
    assert workflow[F.payload_bytes] == len('{"question": "hi"}')
    chat = one(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 100,
            "gen_ai.usage.completion_tokens": 20,
            "llm.usage.total_tokens": 120,
            "gen_ai.prompt.0.content": "hello",
            "gen_ai.completion.0.content": "hi there",
        }
    )
    assert (chat[F.operation], chat[F.provider]) == ("chat", "openai")
    assert (chat[F.input_tokens], chat[F.output_tokens], chat[F.total_tokens]) == (100, 20, 120)
    assert chat[F.payload_bytes] == len("hello") + len("hi there")


def test_content_is_kept_only_when_configured():
    attrs = {"gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"héllo"}]}]'}
    dropped = one(attrs)
    kept = one(attrs, NormalizeOptions(keep_content=True))
    assert dropped[F.payload_bytes] == kept[F.payload_bytes] == len(attrs["gen_ai.input.messages"].encode())
    assert "gen_ai.input.messages" not in dropped[F.attributes][0]
    assert dict(zip(*kept[F.attributes], strict=True))["gen_ai.input.messages"] == attrs["gen_ai.input.messages"]


def test_structured_content_size_is_counted():
    row = one({"gen_ai.output.messages": [{"role": "assistant", "content": "x" * 1000}]})
    assert 1000 < row[F.payload_bytes] < 1100


def test_business_keys_from_resource_span_and_links():
    row = one(
        {"tenant.id": "span-tenant"},
        resource={"tenant.id": "resource-tenant", "deployment.environment.name": "prod", "feature.id": "search"},
        span_kwargs={"links": [{"workflow.id": "wf-from-link", "tenant.id": "link-tenant"}]},
    )
    assert row[F.tenant] == "span-tenant"  # the span wins over its resource and its links
    assert row[F.environment] == "prod" and row[F.feature] == "search"  # from the resource
    assert row[F.workflow_id] == "wf-from-link"  # only a link carries it


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param(-5, "between 0 and", id="negative"),
        pytest.param(math.nan, "whole numbers", id="nan"),
        pytest.param(12.5, "whole numbers", id="fraction"),
        pytest.param("lots", "must be numbers", id="text"),
        pytest.param(10**12, "between 0 and", id="absurd"),
        pytest.param(True, "must be numbers", id="bool"),
    ],
)
def test_bad_token_counts_reject_only_that_span(value, fragment):
    good = span(attrs={"gen_ai.usage.input_tokens": 10})
    bad = span(attrs={"gen_ai.usage.input_tokens": value})
    batch = normalize([good, bad])
    assert len(batch.rows) == 1 and batch.rejected == 1
    assert "gen_ai.usage.input_tokens" in batch.error_message and fragment in batch.error_message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"trace_id": b"\x01" * 15}, "trace_id must be 16", id="short-trace-id"),
        pytest.param({"trace_id": bytes(16)}, "trace_id must be 16 non-zero", id="zero-trace-id"),
        pytest.param({"span_id": b"\x01" * 9}, "span_id must be 8", id="long-span-id"),
        pytest.param({"parent": b"\x01" * 3}, "parent_span_id", id="bad-parent"),
        pytest.param({"start_ns": 5}, "not between year 2000", id="epoch-start"),
        pytest.param({"start_ns": 4_000_000_000 * 10**9}, "not between year 2000", id="far-future"),
    ],
)
def test_invalid_ids_and_times_are_rejected_with_a_reason(kwargs, fragment):
    batch = normalize([span(**kwargs), span()])
    assert len(batch.rows) == 1 and batch.rejected == 1
    assert fragment in batch.error_message


def test_end_before_start_is_rejected():
    bad = span(duration_ms=-1)
    batch = normalize([bad])
    assert batch.rejected == 1 and "before start" in batch.error_message


def test_token_strings_and_doubles_are_coerced():
    row = one({"gen_ai.usage.input_tokens": " 42 ", "gen_ai.usage.output_tokens": 7.0})
    assert (row[F.input_tokens], row[F.output_tokens]) == (42, 7)


def test_exception_and_evaluation_events():
    row = one(
        {"gen_ai.operation.name": "chat"},
        span_kwargs={
            "status": 2,
            "events": [
                ("exception", {"exception.type": "openai.RateLimitError", "exception.message": "slow down"}),
                (
                    "gen_ai.evaluation.result",
                    {"gen_ai.evaluation.score.label": "accepted", "gen_ai.evaluation.score.value": 0.8},
                ),
            ],
        },
    )
    assert (row[F.status_code], row[F.error_type], row[F.status_message]) == (
        "ERROR",
        "openai.RateLimitError",
        "slow down",
    )
    assert (row[F.outcome], row[F.outcome_score], row[F.outcome_label]) == ("accepted", 0.8, "accepted")
    assert row[F.outcome_time] > 0


def test_an_evaluation_label_outside_the_outcome_vocabulary_stays_a_label():
    row = one({"gen_ai.evaluation.score.label": "relevant", "gen_ai.evaluation.score.value": 0.7})
    assert (row[F.outcome], row[F.outcome_label], row[F.outcome_score]) == ("", "relevant", 0.7)


def test_non_genai_spans_are_kept():
    http = one({"http.request.method": "POST", "url.full": "https://example.com"})
    plain = one({"app.step": "load"})
    assert http[F.span_class] == "http" and plain[F.span_class] == "other"


def test_reported_cost_is_kept_apart_and_a_zero_with_usage_is_not_trusted():
    priced = one({"operation.cost": 0.0123, "gen_ai.usage.input_tokens": 10})
    zero = one({"gen_ai.usage.cost": 0.0, "gen_ai.usage.input_tokens": 10})
    assert priced[F.reported_cost_usd] == 12_300_000_000_000  # femto-USD
    assert zero[F.reported_cost_usd] is None
    assert priced[F.cost_usd] is None  # calculated cost is the pricer's job, never the hint


def test_attribute_values_and_counts_are_bounded():
    options = NormalizeOptions(max_value_chars=64, max_attributes=8)
    row = one({f"k{i}": "v" * 500 for i in range(20)}, options)
    keys, values = row[F.attributes]
    assert len(keys) == 8 and all(len(v) == 64 for v in values)


def test_deeply_nested_values_are_cut_not_fatal():
    nested: dict = {"leaf": 1}
    for _ in range(20):  # deeper than the stored-JSON cut-off, within protobuf's own limit
        nested = {"n": nested}
    row = one({"deep": nested})
    value = dict(zip(*row[F.attributes], strict=True))["deep"]
    assert "…" in value
