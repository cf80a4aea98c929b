"""Run-level and call-level figures of one run must agree (rollups by tenant and by model
add up to the same tokens). Pure: ``compute_run`` on hand-made spans.

Usage on an agent span with no inference below it is one call: it once counted twice in the
run's tokens (run level) but once in the breakdown (call level)."""

from __future__ import annotations

from typing import Any

from otelspend.enrich.runs import compute_run
from otelspend.record import LITE_FIELDS


def _span(**values: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = dict.fromkeys(LITE_FIELDS)
    base.update(
        trace_id="t" * 32, parent_span_id="", name="span", start_time=0, end_time=10**9, duration_ns=10**9,
        status_code="OK", status_message="", service_name="svc", span_class="other", operation="", provider="",
        model="", agent_name="", tool_name="", response_id="", error_type="", resend_count=0, retry_count=0,
        http_method="", outcome="", outcome_label="", outcome_time=0, workflow_id="", workflow_type="", tenant="",
        customer="", feature="", user="", environment="", prompt_version="", payload_bytes=0, ingest_token="",
        unpriced_reason="", call_role="other", version=1, resource_id=0, attributes=None, scope_name="",
    )  # fmt: skip
    base.update(values)
    return tuple(base[name] for name in LITE_FIELDS)


def test_usage_on_an_agent_span_without_calls_counts_once() -> None:
    root = _span(span_id="r" * 16)
    agent = _span(
        span_id="a" * 16, parent_span_id="r" * 16, span_class="agent", operation="invoke_agent", agent_name="bot",
        input_tokens=100, output_tokens=10, cost_usd=5_000,
    )  # fmt: skip
    result = compute_run([root, agent])
    assert result.run.llm_calls == 1
    assert result.run.input_tokens == sum(row.input_tokens for row in result.calls) == 100
