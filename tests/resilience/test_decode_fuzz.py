"""Bad input through the protobuf decoder and the normaliser: every span gets a defined
answer (stored, or rejected with a reason), nothing crashes, no valid span is lost.

Examples are derandomized so the suite is repeatable; ``bench/fuzz_decode.py`` explores
at random (or under atheris) for as long as you let it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otelspend.conventions import load_conventions
from otelspend.receiver.decode import Decoded, UndecodableRequest, decode_protobuf
from otelspend.receiver.normalize import NormalizeOptions, Normalizer
from otelspend.record import F
from tests.resilience.otlp_cases import (
    NOW_NS,
    RequestCase,
    attribute,
    field_bytes,
    nested_any,
    request_bytes,
    request_case,
)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MUTATIONS = settings(FUZZ, max_examples=40)
OPTIONS = NormalizeOptions(max_value_chars=256, max_attributes=32)
NORMALIZER = Normalizer(load_conventions(), OPTIONS)


def answer(body: bytes) -> tuple[Decoded, list[list[object]], int, list[str]] | None:
    """Decode and normalise like the receiver; None when the request is undecodable as a whole."""
    try:
        decoded = decode_protobuf(body)
    except UndecodableRequest as exc:
        assert str(exc), "an undecodable request must say why"
        return None
    batch = NORMALIZER.normalize(decoded.request, now_ns=NOW_NS)
    spans_decoded = sum(len(ss.spans) for rs in decoded.request.resource_spans for ss in rs.scope_spans)
    # Every decoded span is either a row or a rejection: nothing silently vanishes.
    assert len(batch.rows) + batch.rejected == spans_decoded
    rejected = decoded.rejected + batch.rejected
    messages = [*decoded.errors, *batch.errors]
    if rejected:
        assert messages, "rejections must carry a reason"
    return decoded, batch.rows, rejected, messages


@FUZZ
@given(request_case())
def test_every_span_is_stored_or_rejected_as_specified(case: RequestCase) -> None:
    result = answer(case.payload)
    assert result is not None, "a well-framed request is never rejected as a whole"
    _, rows, rejected, _ = result
    stored = Counter(row[F.span_id] for row in rows)
    assert stored == Counter(span.span_id.hex() for span in case.expected_stored)
    assert rejected == case.expected_rejected
    by_id = {row[F.span_id]: row for row in rows}
    for span in case.expected_stored:
        row = by_id[span.span_id.hex()]
        tokens = span.tokens
        for column in ("cache_read_tokens", "reasoning_tokens"):
            if column in tokens:
                assert row[getattr(F, column)] == tokens[column]
        # Input and output may be normalised upwards (cache / reasoning reported outside them).
        if "input_tokens" in tokens and "cache_read_tokens" not in tokens:
            assert row[F.input_tokens] == tokens["input_tokens"]
        if "output_tokens" in tokens and "reasoning_tokens" not in tokens:
            assert row[F.output_tokens] == tokens["output_tokens"]
        keys, values = row[F.attributes]
        assert len(keys) <= OPTIONS.max_attributes
        assert all(len(value) <= OPTIONS.max_value_chars for value in values)


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    answer(data)


@MUTATIONS
@given(request_case(), st.data())
def test_truncated_requests_never_invent_spans(case: RequestCase, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, max(0, len(case.payload) - 1)))
    result = answer(case.payload[:cut])
    if result is not None:
        stored = {row[F.span_id] for row in result[1]}
        assert stored <= {span.span_id.hex() for span in case.expected_stored}


@MUTATIONS
@given(request_case(), st.lists(st.integers(0, 2**20), min_size=1, max_size=8))
def test_bit_flips_never_crash(case: RequestCase, positions: list[int]) -> None:
    body = bytearray(case.payload)
    if not body:
        return
    for position in positions:
        body[(position // 8) % len(body)] ^= 1 << (position % 8)
    answer(bytes(body))


def _span(span_id: int, attributes: bytes = b"") -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes(range(1, 17))
    span.span_id = span_id.to_bytes(8, "big")
    span.start_time_unix_nano = NOW_NS - 10**9
    span.end_time_unix_nano = NOW_NS
    return span.SerializeToString() + attributes


@pytest.mark.parametrize(
    ("count", "value_chars"),
    [pytest.param(5_000, 10, id="5000-attributes"), pytest.param(3, 1_000_000, id="1MB-values")],
)
def test_huge_attribute_counts_and_values_are_stored_bounded(count: int, value_chars: int) -> None:
    attributes = b"".join(
        attribute(f"x.attr{n}".encode(), field_bytes(1, b"%d" % n + b"v" * value_chars)) for n in range(count)
    )
    body = request_bytes([(b"", [_span(1, attributes), _span(2)])])
    result = answer(body)
    assert result is not None
    _, rows, rejected, _ = result
    assert rejected == 0 and len(rows) == 2
    keys, values = rows[0][F.attributes]
    assert len(keys) == min(count, OPTIONS.max_attributes)
    assert all(len(value) == min(value_chars + len(str(n)), OPTIONS.max_value_chars) for n, value in enumerate(values))


@pytest.mark.parametrize("depth", [pytest.param(30, id="depth-30-stored"), pytest.param(5_000, id="depth-5000")])
def test_deep_nesting_is_stored_flattened_or_rejected_alone(depth: int) -> None:
    body = request_bytes([(b"", [_span(1, attribute(b"x.deep", nested_any(depth))), _span(2)])])
    result = answer(body)
    assert result is not None
    _, rows, rejected, messages = result
    ids = {row[F.span_id] for row in rows}
    assert (2).to_bytes(8, "big").hex() in ids, "the sibling span survives"
    if depth <= 30:
        assert rejected == 0
        value = dict(zip(*rows[0][F.attributes], strict=True))["x.deep"]
        assert "…" in value, "nesting beyond MAX_NESTING is cut, not recursed into"
    else:
        reasons = " ".join(messages).lower()
        assert rejected == 1 and ("nesting" in reasons or "depth" in reasons)


def test_token_counts_of_every_type_get_a_defined_answer() -> None:
    cases = [
        (AnyValue(int_value=120), 120),
        (AnyValue(double_value=120.0), 120),
        (AnyValue(string_value=" 120 "), 120),
        (AnyValue(string_value="1.2e2"), 120),
        (AnyValue(double_value=float("nan")), None),
        (AnyValue(double_value=float("inf")), None),
        (AnyValue(int_value=-1), None),
        (AnyValue(double_value=1.5), None),
        (AnyValue(string_value="twelve"), None),
        (AnyValue(int_value=10**12), None),
        (AnyValue(bool_value=True), None),
    ]
    spans = []
    for n, (value, _) in enumerate(cases, start=1):
        spans.append(_span(n, attribute(b"gen_ai.usage.input_tokens", value.SerializeToString())))
    result = answer(request_bytes([(b"", spans)]))
    assert result is not None
    _, rows, rejected, messages = result
    stored = {row[F.span_id]: row[F.input_tokens] for row in rows}
    for n, (_, expected) in enumerate(cases, start=1):
        span_id = n.to_bytes(8, "big").hex()
        if expected is None:
            assert span_id not in stored
        else:
            assert stored[span_id] == expected
    assert rejected == sum(expected is None for _, expected in cases)
    assert any("token counts must" in message for message in messages)
