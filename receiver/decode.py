"""Decode OTLP trace export requests: protobuf (upb) and OTLP/JSON.

A request that cannot be framed at all is undecodable (INVALID_ARGUMENT / 400). A request
whose framing is sound but where single spans or resources do not decode (invalid UTF-8,
a broken nested field) is salvaged: the good spans are kept and the bad ones are counted
as rejected with a reason, so one bad span never costs the batch.

OTLP/JSON follows the spec's deviations from proto3 JSON: trace and span ids are hex, not
base64; int64 fields may be strings; enum fields may be integers; unknown fields ignored.
https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

MAX_REPORTED = 5


class UndecodableRequest(ValueError):
    """The body is not an OTLP trace export request at all."""


@dataclass
class Decoded:
    """An export request as decoded, plus what could not be: spans rejected and why (first few reasons)."""

    request: ExportTraceServiceRequest
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, count: int, reason: str) -> None:
        """Count ``count`` spans as rejected for ``reason`` (the first MAX_REPORTED reasons are kept)."""
        self.rejected += count
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(reason)


def decode_protobuf(body: bytes) -> Decoded:
    """Decode an OTLP/protobuf body. A body the protobuf parser refuses as a whole is salvaged
    field by field: resources and spans that decode are kept, the others counted as rejected.
    Raises UndecodableRequest when nothing of it is an export request.
    """
    try:
        return Decoded(ExportTraceServiceRequest.FromString(body))
    except DecodeError:
        return _salvage(body)
    except RecursionError:
        raise UndecodableRequest("protobuf nesting too deep") from None


# -- protobuf salvage: walk the wire format of the three container levels ------------------

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise UndecodableRequest("truncated or malformed varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for each top-level field; raises on bad framing."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    size = len(data)
    value: int | bytes
    while pos < size:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise UndecodableRequest("field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _I64:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == _I32:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise UndecodableRequest(f"unsupported wire type {wire}")
        if pos > size:
            raise UndecodableRequest("truncated field")
        out.append((number, wire, value))
    return out


def _salvage(body: bytes) -> Decoded:
    result = Decoded(ExportTraceServiceRequest())
    for number, wire, resource_spans_bytes in _fields(body):
        if number != 1 or wire != _LEN:
            continue
        target = result.request.resource_spans.add()
        scope_parts: list[bytes] = []
        for rs_number, rs_wire, value in _fields(resource_spans_bytes):
            if rs_wire != _LEN:
                continue
            if rs_number == 1:
                try:
                    target.resource.CopyFrom(Resource.FromString(value))
                except DecodeError as exc:
                    spans = sum(_count_spans(part) for part in _scope_parts(resource_spans_bytes))
                    result.reject(spans, f"resource undecodable ({exc}); its {spans} span(s) rejected")
                    del result.request.resource_spans[-1]
                    break
            elif rs_number == 2:
                scope_parts.append(value)
            elif rs_number == 3:
                target.schema_url = _text(value)
        else:
            for part in scope_parts:
                _salvage_scope(part, target, result)
    return result


def _scope_parts(resource_spans_bytes: bytes) -> list[bytes]:
    return [v for n, w, v in _fields(resource_spans_bytes) if n == 2 and w == _LEN]


def _count_spans(scope_bytes: bytes) -> int:
    return sum(1 for n, w, _ in _fields(scope_bytes) if n == 2 and w == _LEN)


def _salvage_scope(data: bytes, resource_target: ResourceSpans, result: Decoded) -> None:
    target: ScopeSpans = resource_target.scope_spans.add()
    for number, wire, value in _fields(data):
        if wire != _LEN:
            continue
        if number == 1:
            try:
                target.scope.CopyFrom(InstrumentationScope.FromString(value))
            except DecodeError as exc:
                spans = _count_spans(data)
                result.reject(spans, f"instrumentation scope undecodable ({exc}); its {spans} span(s) rejected")
                del resource_target.scope_spans[-1]
                return
        elif number == 2:
            try:
                target.spans.append(Span.FromString(value))
            except DecodeError as exc:
                result.reject(1, f"span undecodable: {exc}")
            except RecursionError:
                result.reject(1, "span undecodable: nesting too deep")
        elif number == 3:
            target.schema_url = _text(value)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


# -- OTLP/JSON ----------------------------------------------------------------------------


def decode_json(body: bytes) -> Decoded:
    """Decode an OTLP/JSON body (hex trace and span ids, camelCase or snake_case keys); a
    span that does not parse is rejected on its own. Raises UndecodableRequest for a body that
    is not a JSON object of resourceSpans.
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise UndecodableRequest(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UndecodableRequest("expected a JSON object with resourceSpans")
    result = Decoded(ExportTraceServiceRequest())
    for rs in _list(doc, "resourceSpans", "resource_spans"):
        if not isinstance(rs, dict):
            result.reject(0, "resourceSpans entry is not an object")
            continue
        target = result.request.resource_spans.add()
        try:
            json_format.ParseDict(rs.get("resource") or {}, target.resource, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError) as exc:
            spans = sum(len(_list(ss, "spans")) for ss in _list(rs, "scopeSpans", "scope_spans"))
            result.reject(spans, f"resource invalid ({_short(exc)}); its {spans} span(s) rejected")
            del result.request.resource_spans[-1]
            continue
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            if not isinstance(ss, dict):
                continue
            scope_target = target.scope_spans.add()
            try:
                json_format.ParseDict(ss.get("scope") or {}, scope_target.scope, ignore_unknown_fields=True)
            except (json_format.ParseError, RecursionError) as exc:
                result.reject(len(_list(ss, "spans")), f"scope invalid ({_short(exc)})")
                del target.scope_spans[-1]
                continue
            for span in _list(ss, "spans"):
                try:
                    converted = _hex_ids_to_base64(span)
                except (ValueError, TypeError) as exc:
                    result.reject(1, f"span invalid: {_short(exc)}")
                    continue
                target_span = scope_target.spans.add()
                try:
                    json_format.ParseDict(converted, target_span, ignore_unknown_fields=True)
                except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
                    del scope_target.spans[-1]
                    result.reject(1, f"span invalid: {_short(exc)}")
    return result


def _list(doc: Any, *names: str) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    for name in names:
        value = doc.get(name)
        if isinstance(value, list):
            return value
    return []


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(span: Any) -> dict[str, Any]:
    if not isinstance(span, dict):
        raise ValueError("span is not an object")
    converted = dict(span)
    for name in _ID_FIELDS:
        if name in converted:
            converted[name] = _hex_to_b64(converted[name], name)
    links = converted.get("links")
    if isinstance(links, list):
        converted["links"] = [
            {k: (_hex_to_b64(v, k) if k in _ID_FIELDS else v) for k, v in link.items()}
            for link in links
            if isinstance(link, dict)
        ]
    return converted


def _hex_to_b64(value: Any, name: str) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{name} {value[:40]!r} is not hex") from None
    return base64.b64encode(raw).decode()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"
