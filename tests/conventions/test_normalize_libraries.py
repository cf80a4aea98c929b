"""The one convention table reads every library's spans right, span by span (no server).

Each library's spans are encoded exactly as the OTLP exporter encodes them and normalised;
every inference span must show the provider, model, operation, tokens by kind (the ledger's,
as far as the library reports them), response id, error type and conversation id of the
provider call it reports, from attributes alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource

from otelspend.conventions import load_conventions
from otelspend.receiver.normalize import Normalizer
from otelspend.record import F
from tests.conventions.capture import call_groups
from tests.conventions.ledger import logical_calls
from tests.conventions.libraries import LIBRARIES
from tests.conventions.replay import readable_span, shift_to_now
from tests.conventions.stored import tokens_tuple
from tests.otlp import request, span

NORMALIZER = Normalizer(load_conventions())
SDK_SCOPE = "com.anthropic.sdk.python"
ALL = [pytest.param(name, id=f"{name}-constructed" if lib.constructed else name) for name, lib in LIBRARIES.items()]


def normalized(capture: Any) -> dict[str, list[Any]]:
    shift = shift_to_now(capture.spans)
    resource = Resource(capture.resource)
    batch = NORMALIZER.normalize(encode_spans([readable_span(s, resource, shift) for s in capture.spans]))
    assert batch.rejected == 0, batch.error_message
    return {row[F.span_id]: row for row in batch.rows}


@pytest.mark.parametrize("library", ALL)
def test_every_inference_span_reads_as_the_call_it_reports(library):
    lib = LIBRARIES[library]
    capture = lib.capture()
    rows = normalized(capture)
    calls = [c for c in logical_calls(capture.ledger, capture.runs) if lib.visibility.sees(c)]
    groups = call_groups(capture)
    assert len(groups) == len(calls)
    conversation = capture.runs[0]["conversation_id"]
    for call, group in zip(calls, groups, strict=True):
        inference = [rows[s["span_id"]] for s in group if rows[s["span_id"]][F.span_class] == "llm"]
        assert inference, f"{call.api} {call.request_model}: no span classified as a call"
        where = f"{library} {call.api} {call.request_model}{' stream' if call.stream else ''}"
        for row in inference:
            assert row[F.provider] == call.provider, where
            assert row[F.operation] == ("embeddings" if call.api == "openai.embeddings" else "chat"), where
            assert row[F.model] in (call.model, call.request_model), f"{where}: model {row[F.model]}"
            if row[F.response_id]:
                assert row[F.response_id] == call.response_id, where
            if row[F.conversation_id]:
                assert row[F.conversation_id] == conversation, f"{where}: conversation id"
            elif lib.conversation and row[F.operation] == "chat":
                # The SDK's span only has one when set as a client option; genai-openai
                # leaves it off embeddings.
                assert row[F.scope_name] == SDK_SCOPE and library != "anthropic-native", f"{where}: no conversation id"
        with_usage = [row for row in inference if row[F.input_tokens] is not None]
        if call.failed:
            assert not with_usage, f"{where}: a failed call reported usage"
            errors = {row[F.error_type] for row in inference} - {""}
            assert errors, f"{where}: no error type on the failed call"
            assert not any(e.startswith("<class") for e in errors), errors  # v2's repr is cleaned
            continue
        # Streams included: every successful call's usage is on at least one of its spans.
        assert with_usage, f"{where}: no span carries the call's usage"
        want = tokens_tuple(lib.visibility.project(call).tokens)
        for row in with_usage:
            got = tuple(row[getattr(F, k)] or 0 for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                          "cache_write_tokens", "reasoning_tokens"))  # fmt: skip
            assert got == want, f"{where} ({row[F.scope_name]}): tokens {got} != ledger {want}"


def _one(scope: str, attributes: dict[str, Any]) -> list[Any]:
    batch = NORMALIZER.normalize(request([span(attrs=attributes)], scope=scope))
    assert batch.rejected == 0, batch.error_message
    return batch.rows[0]


def test_cache_exclusive_input_is_known_by_scope_not_guessed_from_its_size():
    # openlit reports Anthropic's raw input_tokens (cache EXCLUDED). With a prompt larger than
    # its cached part nothing in the numbers says so: only the scope rule does.
    attributes = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 5000,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 200,
    }
    openlit = _one("openlit.instrumentation.anthropic", attributes)
    semconv = _one("opentelemetry.instrumentation.anthropic", attributes)
    assert (openlit[F.input_tokens], openlit[F.cache_read_tokens], openlit[F.cache_write_tokens]) == (6200, 1000, 200)
    assert semconv[F.input_tokens] == 5000  # already inclusive: not charged twice


def test_logfire_raw_usage_keeps_one_hour_cache_writes_apart():
    raw = {
        "input_tokens": 40,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 1500,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
        "output_tokens": 80,
    }
    row = _one(
        "logfire.anthropic",
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 1540,
            "gen_ai.usage.output_tokens": 80,
            "gen_ai.usage.raw": json.dumps(raw),
        },
    )
    assert (row[F.cache_write_tokens], row[F.cache_write_1h_tokens], row[F.cache_read_tokens]) == (1500, 1000, 0)
