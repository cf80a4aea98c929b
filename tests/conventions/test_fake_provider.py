"""The capture harness's fake provider answers each wire format the way the real API does and
bills what its ledger says: usage in the provider's own shape reads back (``ledger.py``) as
the billed tokens; streams carry it where the real API puts it; scripted failures give the
ledger's retry counts. (The harness itself runs with ``make captures``; this is its check.)"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conventions.harness.billing import billed
from tests.conventions.harness.fake_provider import FakeProvider
from tests.conventions.ledger import Tokens, logical_calls, provider_usage


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    provider = FakeProvider().start()
    yield provider
    provider.stop()


def post(fake: FakeProvider, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    request = urllib.request.Request(fake.url + path, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def sse_data(raw: bytes) -> list[dict[str, Any]]:
    lines = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


def event_stream(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Decode AWS event-stream frames, checking both CRCs."""
    out = []
    while raw:
        total, headers_length = struct.unpack(">II", raw[:8])
        (prelude_crc,) = struct.unpack(">I", raw[8:12])
        assert prelude_crc == binascii.crc32(raw[:8])
        (message_crc,) = struct.unpack(">I", raw[total - 4 : total])
        assert message_crc == binascii.crc32(raw[: total - 4])
        headers, at = {}, 12
        while at < 12 + headers_length:
            name_length = raw[at]
            name = raw[at + 1 : at + 1 + name_length].decode()
            at += 1 + name_length + 1
            (value_length,) = struct.unpack(">H", raw[at : at + 2])
            headers[name] = raw[at + 2 : at + 2 + value_length].decode()
            at += 2 + value_length
        out.append((headers[":event-type"], json.loads(raw[12 + headers_length : total - 4])))
        raw = raw[total:]
    return out


def billed_tokens(api: str, model: str, stream: bool = False) -> Tokens:
    bill = billed(api, model, stream, 0)
    return Tokens(bill.prompt, bill.output, bill.cache_read, bill.cache_write, 0, bill.reasoning)


MESSAGES = [{"role": "user", "content": "How long does a refund take?"}]


@pytest.mark.parametrize(
    ("path", "body", "api", "model"),
    [
        pytest.param("/v1/chat/completions", {"model": "o4-mini", "messages": MESSAGES}, "openai.chat", "o4-mini",
                     id="openai-chat"),
        pytest.param("/v1/responses", {"model": "gpt-4o-mini", "input": "q"}, "openai.responses", "gpt-4o-mini",
                     id="openai-responses"),
        pytest.param("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": MESSAGES},
                     "anthropic.messages", "claude-sonnet-4-5", id="anthropic"),
        pytest.param("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", {"messages": []},
                     "aws.converse", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", id="bedrock-converse"),
        pytest.param("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke", {"messages": MESSAGES},
                     "aws.invoke", "anthropic.claude-3-5-haiku-20241022-v1:0", id="bedrock-invoke"),
        pytest.param("/v1beta/models/gemini-2.5-flash:generateContent", {"contents": []},
                     "google.generate_content", "gemini-2.5-flash", id="gemini"),
    ],
)  # fmt: skip
def test_each_api_answers_and_bills_the_same_usage(fake, path, body, api, model):
    status, raw = post(fake, path, body)
    assert status == 200
    (entry,) = fake.ledger
    assert (entry["api"], entry["model"], entry["retry_count"]) == (api, model, 0)
    assert provider_usage(api, entry["usage"]) == billed_tokens(api, model)
    answer = json.loads(raw)
    sent = answer.get("usage") or answer.get("usageMetadata")
    assert sent == entry["usage"], "the client receives exactly what the ledger bills"


def test_openai_streams_carry_usage_only_when_asked(fake):
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    _, plain = post(fake, "/v1/chat/completions", body)
    _, asked = post(fake, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}})
    assert not any(chunk.get("usage") for chunk in sse_data(plain))
    assert sse_data(asked)[-1]["usage"] == fake.ledger[1]["usage"]
    assert [e["usage_withheld"] for e in fake.ledger] == [True, False]
    assert provider_usage("openai.chat", fake.ledger[0]["usage"]).cache_read == 1024  # billed all the same


def test_anthropic_streams_put_input_and_cache_on_message_start_and_output_on_message_delta(fake):
    _, raw = post(fake, "/v1/messages", {"model": "claude-sonnet-4-5", "messages": MESSAGES, "stream": True})
    events = sse_data(raw)
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    delta = next(e for e in events if e["type"] == "message_delta")["usage"]
    assert (start["cache_read_input_tokens"], start["cache_creation_input_tokens"], start["output_tokens"]) == (
        3000,
        500,
        1,
    )
    assert delta == {"output_tokens": 120}


def test_bedrock_streams_are_aws_event_streams(fake):
    _, converse = post(fake, "/model/amazon.nova-lite-v1%3A0/converse-stream", {"messages": []})
    events = event_stream(converse)
    assert (events[0][0], events[-1][0]) == ("messageStart", "metadata")
    assert events[-1][1]["usage"] == fake.ledger[0]["usage"]
    _, invoke = post(fake, "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream", {})
    chunks = [json.loads(base64.b64decode(payload["bytes"])) for name, payload in event_stream(invoke)]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert (metrics["inputTokenCount"], metrics["cacheWriteInputTokenCount"]) == (64, 900)


def test_gemini_streams_report_the_full_usage_on_the_last_chunk(fake):
    _, raw = post(fake, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", {"contents": []})
    chunks = sse_data(raw)
    assert chunks[-1]["usageMetadata"] == fake.ledger[0]["usage"]
    assert provider_usage("google.generate_content", chunks[-1]["usageMetadata"]) == Tokens(2288, 180, 2048, 0, 0, 128)


def test_tools_offered_get_one_tool_call_then_an_answer(fake):
    tools = [{"type": "function", "function": {"name": "search_kb", "parameters": {}}}]
    _, first = post(fake, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MESSAGES, "tools": tools})
    call = json.loads(first)["choices"][0]["message"]["tool_calls"][0]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == ("search_kb", {"query": "refund"})
    answered = [*MESSAGES, {"role": "tool", "tool_call_id": call["id"], "content": "5 days"}]
    _, second = post(fake, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": answered, "tools": tools})
    assert json.loads(second)["choices"][0]["finish_reason"] == "stop"


def test_scripted_failures_make_retries_and_a_call_that_never_succeeds(fake):
    body = {"model": "claude-haiku-4-5", "max_tokens": 9, "messages": MESSAGES}
    post(fake, "/_control/step", {"run": "r1", "step": "500 then 200", "fail": [500]})
    assert [post(fake, "/v1/messages", body)[0] for _ in range(2)] == [500, 200]
    post(fake, "/_control/step", {"run": "r1", "step": "429 always", "always": 429})
    statuses = [post(fake, "/v1/messages", body) for _ in range(3)]
    assert [s for s, _ in statuses] == [429, 429, 429]
    assert json.loads(statuses[0][1])["error"]["type"] == "rate_limit_error"
    assert [e["retry_count"] for e in fake.ledger] == [0, 1, 0, 1, 2]
    calls = logical_calls(fake.ledger, [{"run_id": "r1", "trace_id": "t"}])
    assert [(c.attempts, c.failed) for c in calls] == [(2, False), (3, True)]
