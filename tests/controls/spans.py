"""Stitcher tuples (``otelspend.record.L``) built by hand for the stream controls' unit tests."""

from __future__ import annotations

import itertools
from typing import Any

from otelspend.record import LITE_FIELDS

_ids = itertools.count(1)
T0 = 1_800_000_000 * 10**9
MS = 10**6


def lite(**values: Any) -> tuple[Any, ...]:
    """A span tuple; unspecified fields empty, ``start_ms`` / ``duration_ms`` relative to T0."""
    start = T0 + int(values.pop("start_ms", 0) * MS)
    duration = int(values.pop("duration_ms", 100) * MS)
    base: dict[str, Any] = dict.fromkeys(LITE_FIELDS)
    base.update(
        trace_id="a" * 32, span_id=f"{next(_ids):016x}", parent_span_id="", name="span", start_time=start,
        end_time=start + duration, duration_ns=duration, status_code="UNSET", status_message="", service_name="svc",
        span_class="other", operation="", provider="", model="", agent_name="", tool_name="", response_id="",
        error_type="", resend_count=0, retry_count=0, http_method="", outcome="", outcome_label="", outcome_time=0,
        workflow_id="", workflow_type="", tenant="", customer="", feature="", user="", environment="",
        prompt_version="", payload_bytes=0, ingest_token="", unpriced_reason="", call_role="other", version=1,
        resource_id=0, attributes=None, scope_name="app",
    )  # fmt: skip
    base.update(values)
    return tuple(base[name] for name in LITE_FIELDS)


def call(parent: str, *, failed: bool = False, model: str = "gpt-4o-mini", **values: Any) -> tuple[Any, ...]:
    """An OpenAI chat call under ``parent``; a failed one has no usage and status ERROR."""
    fields: dict[str, Any] = {
        "parent_span_id": parent, "span_class": "llm", "operation": "chat", "provider": "openai", "model": model,
        "call_role": "call",
    }  # fmt: skip
    if failed:
        fields.update(status_code="ERROR", error_type="rate_limit_error")
    else:
        fields.update(input_tokens=1000, output_tokens=100, cost_usd=10**12)
    fields.update(values)
    return lite(**fields)
