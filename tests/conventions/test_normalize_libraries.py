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

from otelspend.enrich.genai_prices_card import PROVIDER_IDS
from otelspend.record import F
from tests.conventions.capture import call_groups
from tests.conventions.classes import NORMALIZER, normalized
from tests.conventions.libraries import LIBRARIES, visible_calls
from tests.conventions.stored import tokens_tuple
from tests.otlp import request, span

SDK_SCOPE = "com.anthropic.sdk.python"
ALL = [pytest.param(name, id=name) for name in LIBRARIES]
OPERATIONS = {"openai.embeddings": {"embeddings"}, "google.generate_content": {"generate_content"}}
"""The operation a call's spans must read as (any other API: chat)."""


@pytest.mark.parametrize("library", ALL)
def test_every_inference_span_reads_as_the_call_it_reports(library):
    lib = LIBRARIES[library]
    capture = lib.capture()
    rows = normalized(capture.spans, capture.resource)
    calls = visible_calls(lib, capture)
    groups = call_groups(capture)
    assert len(groups) == len(calls)
    conversation = capture.runs[0]["conversation_id"]
    for call, group in zip(calls, groups, strict=True):
        inference = [rows[s["span_id"]] for s in group if rows[s["span_id"]][F.span_class] == "llm"]
        assert inference, f"{call.api} {call.request_model}: no span classified as a call"
        where = f"{library} {call.api} {call.request_model}{' stream' if call.stream else ''}"
        for row in inference:
            if call.api in lib.providerless_apis:
                assert row[F.provider] == "", f"{where}: {row[F.provider]}"
            elif row[F.provider] or lib.visibility.project(call).tokens is not None:  # LlamaIndex embeddings: neither
                assert PROVIDER_IDS.get(row[F.provider], row[F.provider]) == call.provider, (
                    f"{where}: {row[F.provider]}"
                )
            own = dict(lib.operations).get(call.api)
            wanted = {own} if own else OPERATIONS.get(call.api, {"chat"})
            assert row[F.operation] in wanted, f"{where}: {row[F.operation]}"
            if row[F.model] or not call.failed:  # the Agents SDK's failed response span names no model
                assert row[F.model] in (call.model, call.request_model), f"{where}: model {row[F.model]}"
            if row[F.response_id] and lib.provider_ids:
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
            assert errors or not lib.error_type, f"{where}: no error type on the failed call"
            assert not any(e.startswith("<class") for e in errors), errors  # v2's repr is cleaned
            continue
        reported = lib.visibility.project(call)
        if reported.tokens is None:  # a documented gap: the library reports this call without usage
            assert not with_usage, f"{where}: usage reported where the library is known to send none"
            continue
        # Streams included: every successful call's usage is on at least one of its spans.
        assert with_usage, f"{where}: no span carries the call's usage"
        want = tokens_tuple(reported.tokens)
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


LLAMA_INDEX = "openinference.instrumentation.llama_index"
PREPARE = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai"}


@pytest.mark.parametrize(
    ("scope", "attributes", "status", "span_class"),
    [
        pytest.param(LLAMA_INDEX, PREPARE, 0, "other", id="request-building-span-is-not-a-call"),
        pytest.param(LLAMA_INDEX, {**PREPARE, "llm.finish_reason": "stop"}, 0, "llm", id="stream-without-usage"),
        pytest.param(LLAMA_INDEX, PREPARE, 2, "llm", id="failed-call"),
        pytest.param(LLAMA_INDEX, {**PREPARE, "llm.token_count.prompt": 10}, 0, "llm", id="call-with-usage"),
        pytest.param(
            LLAMA_INDEX,
            {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small"},
            0,
            "llm",
            id="embeddings-need-no-finish-reason",
        ),
        pytest.param("openinference.instrumentation.langchain", PREPARE, 0, "llm", id="rule-is-per-scope"),
    ],
)
def test_an_llm_span_that_sent_nothing_is_not_a_call(scope, attributes, status, span_class):
    # LlamaIndex wraps OpenAI._prepare_chat_with_tools (which only builds a request) in an
    # LLM span: conventions.yaml `inference_evidence` tells it from a call.
    batch = NORMALIZER.normalize(request([span(attrs=attributes, status=status)], scope=scope))
    assert batch.rejected == 0, batch.error_message
    assert batch.rows[0][F.span_class] == span_class
