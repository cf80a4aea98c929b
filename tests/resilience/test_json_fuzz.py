"""Bad OTLP/JSON: arbitrary documents, wrongly typed fields and broken bytes are undecodable
as a whole or rejected span by span with a reason; the decoder and normaliser never crash
and never drop a well-formed span next to a broken one."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelspend.conventions import load_conventions
from otelspend.receiver.decode import UndecodableRequest, decode_json
from otelspend.receiver.normalize import Normalizer
from otelspend.record import F

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NORMALIZER = Normalizer(load_conventions())
NOW_NS = time.time_ns()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _answer(body: bytes) -> tuple[set[str], int] | None:
    try:
        decoded = decode_json(body)
    except UndecodableRequest as exc:
        assert str(exc)
        return None
    batch = NORMALIZER.normalize(decoded.request, now_ns=NOW_NS)
    spans = sum(len(ss.spans) for rs in decoded.request.resource_spans for ss in rs.scope_spans)
    assert len(batch.rows) + batch.rejected == spans
    if decoded.rejected + batch.rejected:
        assert decoded.errors or batch.errors
    return {row[F.span_id] for row in batch.rows}, decoded.rejected + batch.rejected


def _valid_span(n: int) -> dict[str, Any]:
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": f"{n:016x}",
        "name": "chat",
        "startTimeUnixNano": str(NOW_NS - 2 * 10**9),
        "endTimeUnixNano": str(NOW_NS - 10**9),
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}],
    }


# Wrongly typed or shaped values for each span field.
_BAD_FIELDS = {
    "traceId": st.sampled_from(["zz", "00", 7, None, ["a"], "5b8efff798038103d269b633813fc60c00"]),
    "spanId": st.sampled_from(["xyz", "", 1.5, {"a": 1}]),
    "startTimeUnixNano": st.sampled_from(["soon", -1, 1.5e30, [], "99999999999999999999999"]),
    "kind": st.sampled_from(["SPAN_KIND_NOPE", 3.7, [1]]),
    "attributes": st.sampled_from(
        [
            "not a list",
            [{"key": 1}],
            [{"key": "k", "value": {"intValue": "one"}}],
            [{"key": "k", "value": {"kvlistValue": {"values": [{"key": "x", "value": {"arrayValue": 5}}]}}}],
        ]
    ),
    "status": st.sampled_from([{"code": "BROKEN"}, "ok", {"message": 5}]),
    "events": st.sampled_from([[{"timeUnixNano": "x"}], 3]),
}


@FUZZ
@given(json_values)
def test_arbitrary_json_documents_never_crash(doc: Any) -> None:
    _answer(json.dumps(doc).encode())
    _answer(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [doc]}]}]}).encode())


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _answer(data)


@FUZZ
@given(st.lists(st.sampled_from(sorted(_BAD_FIELDS)), min_size=1, max_size=3, unique=True), st.data())
def test_a_broken_span_never_costs_its_valid_neighbours(fields: list[str], data: st.DataObject) -> None:
    broken = _valid_span(99)
    for name in fields:
        broken[name] = data.draw(_BAD_FIELDS[name])
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [_valid_span(1), broken, _valid_span(2)]}]}]}
    result = _answer(json.dumps(doc).encode())
    assert result is not None
    stored, rejected = result
    assert {f"{1:016x}", f"{2:016x}"} <= stored
    assert rejected + len(stored) == 3
