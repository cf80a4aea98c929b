from __future__ import annotations

import json

import pytest

from otelspend.receiver.decode import UndecodableRequest, decode_json, decode_protobuf
from tests.otlp import request, span


def _with_invalid_utf8(payload: bytes, marker: str) -> bytes:
    """Replace an ASCII marker by bytes that are not UTF-8 (same length keeps framing valid)."""
    assert marker.encode() in payload
    return payload.replace(marker.encode(), b"\xff" * len(marker))


def test_valid_protobuf_decodes_whole():
    decoded = decode_protobuf(request([span(), span()]).SerializeToString())
    assert decoded.rejected == 0 and len(decoded.request.resource_spans[0].scope_spans[0].spans) == 2


def test_invalid_utf8_in_one_span_rejects_only_that_span():
    good, bad = span(name="good-span"), span(name="BADNAMEX")
    payload = _with_invalid_utf8(request([good, bad]).SerializeToString(), "BADNAMEX")
    decoded = decode_protobuf(payload)
    spans = decoded.request.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in spans] == ["good-span"]
    assert decoded.rejected == 1 and "undecodable" in decoded.errors[0]


def test_invalid_utf8_in_the_resource_rejects_its_spans():
    payload = _with_invalid_utf8(
        request([span(), span()], resource={"host.name": "HOSTNAME"}).SerializeToString(), "HOSTNAME"
    )
    decoded = decode_protobuf(payload)
    assert decoded.rejected == 2 and len(decoded.request.resource_spans) == 0


@pytest.mark.parametrize("cut", [1, 7, 50])
def test_truncated_framing_is_undecodable(cut):
    payload = request([span(attrs={"k": "v" * 100})]).SerializeToString()
    with pytest.raises(UndecodableRequest):
        decode_protobuf(payload[:-cut])


def test_garbage_is_undecodable():
    with pytest.raises(UndecodableRequest):
        decode_protobuf(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")


def _json_request(spans: list[dict]) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeSpans": [{"scope": {"name": "s"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def _json_span(**overrides) -> dict:
    base = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": "1795423047334622646",
        "endTimeUnixNano": "1795423047434622646",
        "attributes": [
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        ],
        "status": {"code": "STATUS_CODE_OK"},
        "unknownFutureField": {"ignored": True},
    }
    base.update(overrides)
    return base


def test_otlp_json_hex_ids_string_int64_enum_names_and_unknown_fields():
    decoded = decode_json(_json_request([_json_span()]))
    assert decoded.rejected == 0
    parsed = decoded.request.resource_spans[0].scope_spans[0].spans[0]
    assert parsed.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert parsed.span_id.hex() == "eee19b7ec3c1b174"
    assert parsed.start_time_unix_nano == 1795423047334622646
    assert parsed.attributes[0].value.int_value == 42
    assert parsed.status.code == 1


def test_otlp_json_bad_span_is_rejected_alone():
    decoded = decode_json(
        _json_request([_json_span(), _json_span(spanId="not-hex!"), _json_span(startTimeUnixNano="yesterday")])
    )
    assert len(decoded.request.resource_spans[0].scope_spans[0].spans) == 1
    assert decoded.rejected == 2
    assert any("not hex" in error for error in decoded.errors)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_json_that_is_not_a_request_is_undecodable(body):
    with pytest.raises(UndecodableRequest):
        decode_json(body)


def test_otlp_json_unknown_enum_value_is_tolerated_like_unknown_fields():
    decoded = decode_json(_json_request([_json_span(kind="SOME_FUTURE_KIND")]))
    assert decoded.rejected == 0
    assert decoded.request.resource_spans[0].scope_spans[0].spans[0].kind == 0
