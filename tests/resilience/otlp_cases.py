"""Hypothesis strategies for OTLP trace requests with a known answer per span.

Requests are assembled at the protobuf wire level, so a case can carry what the Python
protobuf API refuses to build: invalid UTF-8, AnyValue nested deeper than the decoder
allows, ids of the wrong length. Each span comes with its expected answer: ``stored``
(with the token counts it must be stored with) or ``rejected``; a defect on a resource
rejects every span under it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otelspend.receiver.normalize import MAX_TOKENS, MIN_START_NS

NOW_NS = time.time_ns()
DAY_NS = 86_400 * 10**9
LEN = 2  # protobuf wire type: length-delimited

TOKEN_KEYS = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_read_tokens": "llm.token_count.prompt_details.cache_read",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
}
"""One key per token column: several keys of one column compete by priority, not order."""


# -- wire encoding ----------------------------------------------------------------------------


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (bytes, string or sub-message)."""
    return varint(number << 3 | LEN) + varint(len(payload)) + payload


def nested_any(depth: int) -> bytes:
    """An AnyValue holding ``depth`` arrays, each holding the next; a string at the bottom."""
    value = field_bytes(1, b"bottom")
    for _ in range(depth):
        value = field_bytes(5, field_bytes(1, value))  # AnyValue.array_value{values: [value]}
    return value


def attribute(key: bytes, value: bytes) -> bytes:
    """A serialized Span.attributes entry (KeyValue) from raw key and AnyValue bytes."""
    return field_bytes(9, field_bytes(1, key) + field_bytes(2, value))


def request_bytes(resources: list[tuple[bytes, list[bytes]]]) -> bytes:
    """ExportTraceServiceRequest from (Resource bytes, [Span bytes]) pairs, one scope each."""
    body = b""
    for resource, spans in resources:
        scope = field_bytes(1, field_bytes(1, b"fuzz-scope")) + b"".join(field_bytes(2, s) for s in spans)
        body += field_bytes(1, field_bytes(1, resource) + field_bytes(2, scope))
    return body


# -- cases --------------------------------------------------------------------------------------


@dataclass
class SpanCase:
    payload: bytes
    span_id: bytes
    stored: bool
    defect: str = ""
    tokens: dict[str, int] = field(default_factory=dict)
    """Token columns the span must be stored with."""


@dataclass
class RequestCase:
    payload: bytes
    spans: list[SpanCase]

    @property
    def expected_stored(self) -> list[SpanCase]:
        return [s for s in self.spans if s.stored]

    @property
    def expected_rejected(self) -> int:
        return sum(not s.stored for s in self.spans)


def token_value() -> st.SearchStrategy[tuple[AnyValue, int | None]]:
    """A token count as some library might send it, with the count it must become (None: reject)."""
    ints = st.integers(-(2**63), 2**63 - 1).map(lambda n: (AnyValue(int_value=n), _in_range(n)))
    small_ints = st.integers(0, 200_000).map(lambda n: (AnyValue(int_value=n), n))
    doubles = st.floats(allow_nan=True, allow_infinity=True).map(lambda x: (AnyValue(double_value=x), _whole(x)))
    whole_doubles = st.integers(0, 10**6).map(lambda n: (AnyValue(double_value=float(n)), n))
    numeric_text = st.from_regex(r"\A[ ]?[+-]?[0-9]{1,12}(\.[05]0?)?(e[0-9]{1,2})?[ ]?\Z").map(
        lambda s: (AnyValue(string_value=s), _parse(s))
    )
    junk_text = st.sampled_from(["", "abc", "12abc", "NaN", "Infinity", "-", "0x10", "1,000"]).map(
        lambda s: (AnyValue(string_value=s), _parse(s))
    )
    other = st.sampled_from(
        [AnyValue(bool_value=True), AnyValue(bytes_value=b"\x01"), AnyValue(array_value={"values": []})]
    ).map(lambda v: (v, None))
    return st.one_of(small_ints, ints, doubles, whole_doubles, numeric_text, junk_text, other)


def _whole(x: float) -> int | None:
    if not math.isfinite(x) or x != int(x):
        return None
    return _in_range(int(x))


def _parse(text: str) -> int | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return _in_range(int(number))


def _in_range(number: int) -> int | None:
    return number if 0 <= number <= MAX_TOKENS else None


def plain_any() -> st.SearchStrategy[AnyValue]:
    """Arbitrary AnyValues (any Unicode, NaN, bytes, arrays and maps a few levels deep)."""
    scalars = st.one_of(
        st.text(max_size=40).map(lambda s: AnyValue(string_value=s)),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: AnyValue(int_value=n)),
        st.floats().map(lambda x: AnyValue(double_value=x)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.binary(max_size=20).map(lambda b: AnyValue(bytes_value=b)),
        st.just(AnyValue()),
    )

    def extend(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
        arrays = st.lists(children, max_size=4).map(lambda vs: AnyValue(array_value={"values": vs}))
        maps = st.lists(st.tuples(st.text(max_size=10), children), max_size=4).map(
            lambda kvs: AnyValue(kvlist_value={"values": [KeyValue(key=k, value=v) for k, v in kvs]})
        )
        return arrays | maps

    return st.recursive(scalars, extend, max_leaves=12)


SPAN_DEFECTS = (
    "trace_id_length",
    "zero_trace_id",
    "span_id_length",
    "parent_id_length",
    "start_before_2000",
    "start_after_tomorrow",
    "end_before_start",
    "invalid_utf8_name",
    "invalid_utf8_value",
    "invalid_utf8_key",
    "nesting_beyond_decoder",
)


@st.composite
def span_case(draw: st.DrawFn, index: int) -> SpanCase:
    """One span: valid, or valid but for one defect (or a bad token count)."""
    span, start = _valid_span(draw, index)
    tokens, token_ok = _token_attributes(draw, span)
    defect = draw(st.sampled_from(("",) * 8 + SPAN_DEFECTS))
    if defect in _WIRE_DEFECTS:
        extra = _wire_defect(draw, defect)
    else:
        _header_defect(draw, span, start, defect)
        extra = b""
    if not defect and draw(st.integers(0, 9)) == 0:
        # Nested, but within what the decoder accepts: stored, flattened past MAX_NESTING.
        extra = attribute(b"x.nested", nested_any(draw(st.integers(9, 40))))
    # Later occurrences of a singular field win when parsing: the raw field overrides.
    payload = span.SerializeToString() + extra
    stored = not defect and token_ok
    return SpanCase(payload, bytes(span.span_id), stored, defect or ("" if token_ok else "token_count"), tokens)


def _valid_span(draw: st.DrawFn, index: int) -> tuple[Span, int]:
    """A valid span (any kind, status, Unicode, attribute values; a model call or not) and its start."""
    span_id = index.to_bytes(4, "big") + draw(st.binary(min_size=4, max_size=4))
    span = Span(
        trace_id=b"\x01" + draw(st.binary(min_size=15, max_size=15)),
        span_id=span_id,
        name=draw(st.text(max_size=30)),
        kind=draw(st.integers(-5, 12)),
    )
    if draw(st.booleans()):
        span.parent_span_id = draw(st.binary(min_size=8, max_size=8))
    start = draw(st.integers(MIN_START_NS, NOW_NS + DAY_NS - 10**9))
    span.start_time_unix_nano = start
    span.end_time_unix_nano = start + draw(st.integers(0, 3_600 * 10**9))
    span.status.code = draw(st.integers(-1, 5))
    span.status.message = draw(st.text(max_size=20))
    for key, value in draw(st.lists(st.tuples(st.text(max_size=12), plain_any()), max_size=6)):
        span.attributes.add(key="x." + key, value=value)
    if draw(st.booleans()):
        span.attributes.add(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))
        span.attributes.add(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini"))
    return span, start


def _token_attributes(draw: st.DrawFn, span: Span) -> tuple[dict[str, int], bool]:
    """Up to three token counts as libraries send them: the counts they must be stored as, and
    whether every one is usable (one that is not rejects the span)."""
    tokens: dict[str, int] = {}
    token_ok = True
    for column in draw(st.lists(st.sampled_from(sorted(TOKEN_KEYS)), unique=True, max_size=3)):
        value, expected = draw(token_value())
        span.attributes.add(key=TOKEN_KEYS[column], value=value)
        if expected is None:
            token_ok = False
        else:
            tokens[column] = expected
    return tokens, token_ok


_WIRE_DEFECTS = frozenset({"invalid_utf8_name", "invalid_utf8_value", "invalid_utf8_key", "nesting_beyond_decoder"})
"""Defects the protobuf API cannot build: raw fields appended to the encoded span."""


def _header_defect(draw: st.DrawFn, span: Span, start: int, defect: str) -> None:
    """Break the span's ids or times (nothing for "")."""
    if defect == "trace_id_length":
        span.trace_id = draw(st.binary(max_size=32).filter(lambda b: len(b) != 16))
    elif defect == "zero_trace_id":
        span.trace_id = bytes(16)
    elif defect == "span_id_length":
        span.span_id = draw(st.binary(max_size=16).filter(lambda b: len(b) != 8))
    elif defect == "parent_id_length":
        span.parent_span_id = draw(st.binary(min_size=1, max_size=16).filter(lambda b: len(b) != 8))
    elif defect == "start_before_2000":
        span.start_time_unix_nano = draw(st.integers(0, MIN_START_NS - 1))
        span.end_time_unix_nano = span.start_time_unix_nano
    elif defect == "start_after_tomorrow":
        span.start_time_unix_nano = draw(st.integers(NOW_NS + 2 * DAY_NS, 2**63 - 1))
        span.end_time_unix_nano = span.start_time_unix_nano
    elif defect == "end_before_start":
        span.end_time_unix_nano = draw(st.integers(0, start - 1))


def _wire_defect(draw: st.DrawFn, defect: str) -> bytes:
    """The raw field that carries a wire-level defect."""
    if defect == "invalid_utf8_name":
        return field_bytes(5, b"caf\xc3(" + draw(st.binary(max_size=4)))
    if defect == "invalid_utf8_value":
        return attribute(b"x.bad", field_bytes(1, b"\xff\xfe" + draw(st.binary(max_size=4))))
    if defect == "invalid_utf8_key":
        return attribute(b"x.\xed\xa0\x80", field_bytes(1, b"surrogate key"))
    return attribute(b"x.deep", nested_any(draw(st.integers(60, 400))))


@st.composite
def request_case(draw: st.DrawFn) -> RequestCase:
    """Up to three resources of up to eight spans; a bad resource rejects its spans."""
    resources: list[tuple[bytes, list[bytes]]] = []
    cases: list[SpanCase] = []
    index = 0
    for _ in range(draw(st.integers(1, 3))):
        resource = field_bytes(1, field_bytes(1, b"service.name") + field_bytes(2, field_bytes(1, b"svc")))
        bad_resource = draw(st.integers(0, 9)) == 0
        if bad_resource:
            resource += field_bytes(1, field_bytes(1, b"host.name") + field_bytes(2, field_bytes(1, b"\xc0\xaf")))
        spans = []
        for _ in range(draw(st.integers(0, 8))):
            index += 1
            case = draw(span_case(index))
            if bad_resource:
                case.stored, case.defect = False, "invalid_utf8_resource"
            spans.append(case.payload)
            cases.append(case)
        resources.append((resource, spans))
    return RequestCase(request_bytes(resources), cases)
