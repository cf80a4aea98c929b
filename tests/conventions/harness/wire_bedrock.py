"""Amazon Bedrock Runtime wire format, as boto3 reaches it through ``endpoint_url``:
Converse / ConverseStream (Bedrock's own usage shape, ``inputTokens`` excluding cache reads
and writes) and InvokeModel / InvokeModelWithResponseStream with an Anthropic model (the
Anthropic Messages body). Streams use AWS's binary event-stream framing."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

from tests.conventions.harness import wire_anthropic
from tests.conventions.harness.answer import REPLY, Answer, json_answer, pieces
from tests.conventions.harness.billing import Billed

EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERRORS = {429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException"}


def error(status: int) -> Answer:
    kind = _ERRORS.get(status, "ValidationException")
    return json_answer(
        {"message": f"injected {status}"}, status, headers={"x-amzn-ErrorType": f"{kind}:http://internal"}
    )


def frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One event-stream message (prelude, string headers, JSON payload, CRC32s)."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        raw = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


def converse_usage(bill: Billed) -> dict[str, Any]:
    return {
        "inputTokens": bill.uncached,
        "outputTokens": bill.output,
        "totalTokens": bill.prompt + bill.output,
        "cacheReadInputTokens": bill.cache_read,
        "cacheWriteInputTokens": bill.cache_write,
    }


def converse(request: dict[str, Any], bill: Billed, model: str, request_id: str, stream: bool) -> Answer:
    usage = converse_usage(bill)
    headers = {"x-amzn-RequestId": request_id}
    extra = {"usage": usage, "response_model": model, "headers": headers}
    if not stream:
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": REPLY}]}},
            "stopReason": "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 42},
        }
        return json_answer(body, **extra)
    frames = [frame("messageStart", {"role": "assistant"})]
    frames += [frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces(REPLY)]
    frames += [
        frame("contentBlockStop", {"contentBlockIndex": 0}),
        frame("messageStop", {"stopReason": "end_turn"}),
        frame("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}),
    ]
    return Answer(200, EVENT_STREAM, frames=frames, **extra)


def anthropic_model_name(model_id: str) -> str:
    """``anthropic.claude-3-5-haiku-20241022-v1:0`` -> ``claude-3-5-haiku-20241022`` (the
    ``model`` an Anthropic body on Bedrock carries)."""
    name = model_id.split("anthropic.", 1)[-1]
    return name.rsplit("-v", 1)[0]


def invoke(request: dict[str, Any], bill: Billed, model: str, request_id: str, stream: bool) -> Answer:
    body = wire_anthropic.message(request, bill, anthropic_model_name(model), f"msg_bdrk_{request_id[-12:]}")
    usage = body["usage"]
    headers = {"x-amzn-RequestId": request_id}
    extra = {"usage": usage, "response_model": model, "response_id": body["id"]}
    if not stream:
        headers.update(
            {
                "X-Amzn-Bedrock-Input-Token-Count": str(usage["input_tokens"]),
                "X-Amzn-Bedrock-Output-Token-Count": str(usage["output_tokens"]),
                "X-Amzn-Bedrock-Invocation-Latency": "42",
            }
        )
        return json_answer(body, headers=headers, **extra)

    def with_metrics(stop: dict[str, Any]) -> dict[str, Any]:
        metrics = {
            "inputTokenCount": usage["input_tokens"],
            "outputTokenCount": usage["output_tokens"],
            "invocationLatency": 42,
            "firstByteLatency": 12,
            "cacheReadInputTokenCount": usage["cache_read_input_tokens"],
            "cacheWriteInputTokenCount": usage["cache_creation_input_tokens"],
        }
        return {**stop, "amazon-bedrock-invocationMetrics": metrics}

    events = wire_anthropic.stream_events(body, last=with_metrics)
    frames = [frame("chunk", {"bytes": base64.b64encode(json.dumps(e).encode()).decode()}) for e in events]
    return Answer(200, EVENT_STREAM, frames=frames, headers=headers, **extra)
