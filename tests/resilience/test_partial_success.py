"""A request mixing valid and broken spans, over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/JSON:
the reply is a partial success counting exactly the broken spans, and every valid span is
stored and priced."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from bench.otlp_client import transport_for
from tests.conftest import Running
from tests.resilience.otlp_cases import attribute, field_bytes, request_bytes

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def _chat_span(span_id: int, **overrides: object) -> Span:
    now = time.time_ns()
    span = Span(
        trace_id=TRACE,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=(100).to_bytes(8, "big"),
        name="chat gpt-4o-mini",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=now - 2 * 10**9,
        end_time_unix_nano=now - 10**9,
    )
    for key, value in {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }.items():
        any_value = AnyValue(string_value=value) if isinstance(value, str) else AnyValue(int_value=value)
        span.attributes.add(key=key, value=any_value)
    for name, value in overrides.items():
        setattr(span, name, value)
    return span


def _mixed_request() -> tuple[bytes, set[str], int]:
    """(body, valid span ids, broken span count)."""
    year_2001 = 10**18
    valid = [
        _chat_span(1),
        _chat_span(2),
        _chat_span(3, start_time_unix_nano=year_2001, end_time_unix_nano=year_2001 + 10**9),  # old, still valid
    ]
    nan_tokens = attribute(
        b"gen_ai.usage.cache_read.input_tokens", AnyValue(double_value=float("nan")).SerializeToString()
    )
    broken = [
        _chat_span(11, trace_id=TRACE[:8]).SerializeToString(),  # wrong trace id length
        _chat_span(12, start_time_unix_nano=5, end_time_unix_nano=6).SerializeToString(),  # 1970
        _chat_span(13).SerializeToString() + nan_tokens,  # NaN token count
        _chat_span(14).SerializeToString() + field_bytes(5, b"chat \xff\xfe"),  # invalid UTF-8 name
    ]
    good_resource = field_bytes(1, field_bytes(1, b"service.name") + field_bytes(2, field_bytes(1, b"mixed")))
    bad_resource = field_bytes(1, field_bytes(1, b"host.name") + field_bytes(2, field_bytes(1, b"\xc3\x28")))
    under_bad = [_chat_span(n).SerializeToString() for n in (21, 22)]  # rejected with their resource
    spans = [valid[0].SerializeToString(), *broken[:2], valid[1].SerializeToString(), *broken[2:]]
    body = request_bytes([(good_resource, [*spans, valid[2].SerializeToString()]), (bad_resource, under_bad)])
    return body, {bytes(span.span_id).hex() for span in valid}, len(broken) + len(under_bad)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_valid_spans_are_stored_and_broken_ones_counted(start_server: Callable[..., Running], transport: str) -> None:
    server = start_server()
    body, valid_ids, broken = _mixed_request()
    endpoint = f"grpc://{server.grpc_endpoint}" if transport == "grpc" else server.http_url
    reply = transport_for(endpoint).export(body, 10)
    assert reply.ok
    assert reply.rejected_spans == broken
    for reason in ("trace_id must be 16", "start_time_unix_nano", "token counts must be whole", "undecodable"):
        assert reason in reply.message, reply.message
    server.wait_idle(30)
    stored = server.dicts("SELECT span_id, cost_usd FROM {db}.spans FINAL")
    assert {row["span_id"] for row in stored} == valid_ids
    assert all(row["cost_usd"] is not None for row in stored), "valid spans are priced"


def test_otlp_json_mixing_valid_and_broken_spans(start_server: Callable[..., Running]) -> None:
    server = start_server()
    now = time.time_ns()

    def span(span_id: str, **fields: object) -> dict[str, object]:
        return {
            "traceId": TRACE.hex(),
            "spanId": span_id,
            "name": "chat",
            "startTimeUnixNano": str(now - 2 * 10**9),
            "endTimeUnixNano": str(now - 10**9),
            "attributes": [
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
            ],
            **fields,
        }

    spans = [
        span("00000000000000a1"),
        span("00000000000000a2", kind=3),
        span("00000000000000b1", traceId="not hex"),  # undecodable id
        span("00000000000000b2", startTimeUnixNano="yesterday"),  # not a number
        span("00000000000000b3", spanId="00ff"),  # wrong length
        span("00000000000000b4", attributes=[{"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": -3}}]),
    ]
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "json"}, "spans": spans}]}]}
    response = httpx.post(
        f"{server.http_url}/v1/traces",
        content=json.dumps(doc),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert int(body["partialSuccess"]["rejectedSpans"]) == 4
    server.wait_idle(30)
    assert sorted(r[0] for r in server.rows("SELECT span_id FROM {db}.spans FINAL")) == [
        "00000000000000a1",
        "00000000000000a2",
    ]
