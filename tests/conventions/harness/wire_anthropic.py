"""Anthropic Messages wire format (also the body of Anthropic models on Bedrock InvokeModel):
JSON, or server-sent events where ``message_start`` carries the input and cache usage (and
``output_tokens: 1``) and ``message_delta`` only the cumulative output tokens, as the API's
streaming documentation shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conventions.harness.answer import REPLY, TOOL_ARGUMENTS, Answer, json_answer, pieces, sse
from tests.conventions.harness.billing import Billed


def error(status: int) -> Answer:
    kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}.get(status, "invalid_request_error")
    return json_answer({"type": "error", "error": {"type": kind, "message": f"injected {status}"}}, status)


def usage(bill: Billed) -> dict[str, Any]:
    return {
        "input_tokens": bill.uncached,
        "cache_creation_input_tokens": bill.cache_write,
        "cache_read_input_tokens": bill.cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": bill.cache_write, "ephemeral_1h_input_tokens": 0},
        "output_tokens": bill.output,
        "service_tier": "standard",
    }


def wants_tool_call(request: dict[str, Any]) -> str | None:
    tools = request.get("tools") or []
    for message in request.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return None
    return tools[0].get("name") if tools else None


def message(request: dict[str, Any], bill: Billed, model: str, response_id: str) -> dict[str, Any]:
    tool = wants_tool_call(request)
    content: list[dict[str, Any]]
    if tool:
        content = [{"type": "tool_use", "id": "toolu_" + response_id[4:], "name": tool, "input": TOOL_ARGUMENTS}]
    else:
        content = [{"type": "text", "text": REPLY}]
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": usage(bill),
    }


def messages(request: dict[str, Any], bill: Billed, model: str, response_id: str) -> Answer:
    body = message(request, bill, model, response_id)
    extra = {"usage": body["usage"], "response_model": model, "response_id": response_id}
    extra["tool_call"] = body["stop_reason"] == "tool_use"
    if not request.get("stream"):
        return json_answer(body, headers={"request-id": f"req_{response_id}"}, **extra)
    frames = [sse(event, event=event["type"]) for event in stream_events(body)]
    return Answer(200, "text/event-stream", frames=frames, headers={"request-id": f"req_{response_id}"}, **extra)


def stream_events(body: dict[str, Any], last: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[Any]:
    """The Messages stream for a complete message body (``last`` may decorate message_stop)."""
    full = body["usage"]
    start_usage = {k: v for k, v in full.items() if k != "output_tokens"} | {"output_tokens": 1}
    start = {**body, "content": [], "stop_reason": None, "usage": start_usage}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    block = body["content"][0]
    if block["type"] == "tool_use":
        events.append({"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}})
        partial = json.dumps(block["input"])
        events.append(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": partial}}
        )
    else:
        events.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        events.append({"type": "ping"})
        for piece in pieces(block["text"]):
            events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
    events.append({"type": "content_block_stop", "index": 0})
    delta = {"stop_reason": body["stop_reason"], "stop_sequence": None}
    events.append({"type": "message_delta", "delta": delta, "usage": {"output_tokens": full["output_tokens"]}})
    stop: dict[str, Any] = {"type": "message_stop"}
    events.append(last(stop) if last else stop)
    return events
