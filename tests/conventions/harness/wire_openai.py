"""OpenAI wire format: chat completions, the Responses API and embeddings, streamed as the
real API streams (server-sent events; chat streams carry usage only when the request asked
for ``stream_options.include_usage``)."""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

from tests.conventions.harness.answer import REPLY, TOOL_ARGUMENTS, Answer, json_answer, pieces, sse
from tests.conventions.harness.billing import Billed

FINGERPRINT = "fp_rc0001"


def error(status: int) -> Answer:
    kind = {429: "rate_limit_exceeded", 500: "server_error"}.get(status, "invalid_request_error")
    return json_answer({"error": {"message": f"injected {status}", "type": kind, "param": None, "code": kind}}, status)


# -- chat completions ------------------------------------------------------------------------


def chat_usage(bill: Billed) -> dict[str, Any]:
    return {
        "prompt_tokens": bill.prompt,
        "completion_tokens": bill.output,
        "total_tokens": bill.prompt + bill.output,
        "prompt_tokens_details": {"cached_tokens": bill.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": bill.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def wants_tool_call(request: dict[str, Any]) -> str | None:
    """The first tool's name when tools are offered and no tool result came back yet."""
    tools = request.get("tools") or []
    if not tools or any(m.get("role") == "tool" for m in request.get("messages") or []):
        return None
    return tools[0].get("function", {}).get("name")


def chat(request: dict[str, Any], bill: Billed, model: str, response_id: str) -> Answer:
    usage = chat_usage(bill)
    tool = wants_tool_call(request)
    call_id = "call_" + response_id.rsplit("-", 1)[-1]
    created = int(time.time())
    base = {"id": response_id, "created": created, "model": model, "system_fingerprint": FINGERPRINT}
    base["service_tier"] = "default"
    extra = {"usage": usage, "response_model": model, "response_id": response_id, "tool_call": bool(tool)}
    if not request.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": REPLY, "refusal": None, "annotations": []}
        if tool:
            message["content"] = None
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": tool, "arguments": json.dumps(TOOL_ARGUMENTS)}}
            ]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tool else "stop"}
        return json_answer({**base, "object": "chat.completion", "choices": [choice], "usage": usage}, **extra)

    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    chunk = {**base, "object": "chat.completion.chunk"}
    if include_usage:
        chunk["usage"] = None

    def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**chunk, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]})

    if tool:
        first = {"index": 0, "id": call_id, "type": "function", "function": {"name": tool, "arguments": ""}}
        frames = [
            delta({"role": "assistant", "content": None, "tool_calls": [first]}),
            delta({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(TOOL_ARGUMENTS)}}]}),
            delta({}, "tool_calls"),
        ]
    else:
        frames = [delta({"role": "assistant", "content": "", "refusal": None})]
        frames += [delta({"content": piece}) for piece in pieces(REPLY)]
        frames.append(delta({}, "stop"))
    if include_usage:
        frames.append(sse({**chunk, "choices": [], "usage": usage}))
    frames.append(sse("[DONE]"))
    return Answer(200, "text/event-stream", frames=frames, usage_withheld=not include_usage, **extra)


# -- Responses API -------------------------------------------------------------------------


def responses_usage(bill: Billed) -> dict[str, Any]:
    return {
        "input_tokens": bill.prompt,
        "input_tokens_details": {"cached_tokens": bill.cache_read},
        "output_tokens": bill.output,
        "output_tokens_details": {"reasoning_tokens": bill.reasoning},
        "total_tokens": bill.prompt + bill.output,
    }


def _responses_tool(request: dict[str, Any]) -> str | None:
    tools = [t for t in request.get("tools") or [] if t.get("type") == "function"]
    items = request.get("input")
    answered = isinstance(items, list) and any(
        isinstance(i, dict) and i.get("type") == "function_call_output" for i in items
    )
    return None if not tools or answered else tools[0].get("name")


def responses(request: dict[str, Any], bill: Billed, model: str, response_id: str) -> Answer:
    usage = responses_usage(bill)
    tool = _responses_tool(request)
    suffix = response_id.rsplit("_", 1)[-1]
    if tool:
        item: dict[str, Any] = {
            "type": "function_call",
            "id": f"fc_{suffix}",
            "call_id": f"call_{suffix}",
            "name": tool,
            "arguments": json.dumps(TOOL_ARGUMENTS),
            "status": "completed",
        }
    else:
        text = {"type": "output_text", "text": REPLY, "annotations": [], "logprobs": []}
        item = {"type": "message", "id": f"msg_{suffix}", "status": "completed", "role": "assistant", "content": [text]}
    done = _response_object(request, response_id, model, "completed", [item], usage)
    extra = {"usage": usage, "response_model": model, "response_id": response_id, "tool_call": bool(tool)}
    if not request.get("stream"):
        return json_answer(done, **extra)

    seq = iter(range(1000))

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    started = _response_object(request, response_id, model, "in_progress", [], None)
    frames = [event("response.created", response=started), event("response.in_progress", response=started)]
    if tool:
        frames += [
            event(
                "response.output_item.added", output_index=0, item={**item, "arguments": "", "status": "in_progress"}
            ),
            event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=item["arguments"]
            ),
            event(
                "response.function_call_arguments.done", item_id=item["id"], output_index=0, arguments=item["arguments"]
            ),
            event("response.output_item.done", output_index=0, item=item),
        ]
    else:
        empty_part = {"type": "output_text", "text": "", "annotations": []}
        ids = {"item_id": item["id"], "output_index": 0}
        frames += [
            event("response.output_item.added", output_index=0, item={**item, "content": [], "status": "in_progress"}),
            event("response.content_part.added", **ids, content_index=0, part=empty_part),
        ]
        frames += [
            event("response.output_text.delta", **ids, content_index=0, delta=piece, logprobs=[])
            for piece in pieces(REPLY)
        ]
        frames += [
            event("response.output_text.done", **ids, content_index=0, text=REPLY, logprobs=[]),
            event("response.content_part.done", **ids, content_index=0, part=item["content"][0]),
            event("response.output_item.done", output_index=0, item=item),
        ]
    frames.append(event("response.completed", response=done))
    return Answer(200, "text/event-stream", frames=frames, **extra)


def _response_object(
    request: dict[str, Any], response_id: str, model: str, status: str, output: list[Any], usage: Any
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": request.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


# -- embeddings ----------------------------------------------------------------------------

DIMENSIONS = 8


def embeddings(request: dict[str, Any], bill: Billed, model: str) -> Answer:
    inputs = request.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    vector = [round(0.1 * (i + 1), 3) for i in range(DIMENSIONS)]
    if request.get("encoding_format") == "base64":
        value: Any = base64.b64encode(struct.pack(f"<{DIMENSIONS}f", *vector)).decode()
    else:
        value = vector
    usage = {"prompt_tokens": bill.prompt, "total_tokens": bill.prompt}
    data = [{"object": "embedding", "index": i, "embedding": value} for i in range(count)]
    return json_answer(
        {"object": "list", "data": data, "model": model, "usage": usage}, usage=usage, response_model=model
    )
