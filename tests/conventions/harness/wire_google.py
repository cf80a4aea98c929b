"""Gemini API wire format (google-genai's default backend): ``generateContent`` and
``streamGenerateContent?alt=sse``. ``promptTokenCount`` includes cached tokens
(``cachedContentTokenCount``); ``candidatesTokenCount`` excludes thinking tokens
(``thoughtsTokenCount``), which are billed as output."""

from __future__ import annotations

from typing import Any

from tests.conventions.harness.answer import REPLY, TOOL_ARGUMENTS, Answer, json_answer, pieces, sse
from tests.conventions.harness.billing import Billed

_STATUS = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error(status: int) -> Answer:
    body = {
        "error": {"code": status, "message": f"injected {status}", "status": _STATUS.get(status, "INVALID_ARGUMENT")}
    }
    return json_answer(body, status)


def usage_metadata(bill: Billed) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": bill.prompt,
        "candidatesTokenCount": bill.output - bill.reasoning,
        "totalTokenCount": bill.prompt + bill.output,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": bill.prompt}],
    }
    if bill.cache_read:
        usage["cachedContentTokenCount"] = bill.cache_read
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": bill.cache_read}]
    if bill.reasoning:
        usage["thoughtsTokenCount"] = bill.reasoning
    return usage


def _tool(request: dict[str, Any]) -> str | None:
    declarations = [d for t in request.get("tools") or [] for d in t.get("functionDeclarations") or []]
    answered = any("functionResponse" in part for c in request.get("contents") or [] for part in c.get("parts") or [])
    return None if not declarations or answered else declarations[0].get("name")


def generate(request: dict[str, Any], bill: Billed, model: str, response_id: str, stream: bool) -> Answer:
    usage = usage_metadata(bill)
    tool = _tool(request)
    extra = {"usage": usage, "response_model": model, "response_id": response_id, "tool_call": bool(tool)}

    def candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        found: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            found["finishReason"] = finish
        return found

    final_parts = [{"functionCall": {"name": tool, "args": TOOL_ARGUMENTS}}] if tool else [{"text": REPLY}]
    common = {"modelVersion": model, "responseId": response_id}
    if not stream:
        return json_answer({"candidates": [candidate(final_parts, "STOP")], "usageMetadata": usage, **common}, **extra)
    chunks = [[{"text": piece}] for piece in pieces(REPLY)] if not tool else [final_parts]
    frames = []
    for index, parts in enumerate(chunks):
        last = index == len(chunks) - 1
        chunk: dict[str, Any] = {"candidates": [candidate(parts, "STOP" if last else None)], **common}
        # The API reports the prompt on every chunk and the full usage on the last.
        chunk["usageMetadata"] = usage if last else {"promptTokenCount": bill.prompt, "totalTokenCount": bill.prompt}
        frames.append(sse(chunk).replace(b"\n\n", b"\r\n\r\n"))
    return Answer(200, "text/event-stream", frames=frames, **extra)
