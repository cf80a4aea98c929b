"""What one wire format answers: a whole body or a stream of frames, plus what the ledger
records about it (the provider's raw usage, response model and id)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

REPLY = "Refunds are processed within five business days of approval."
TOOL_ARGUMENTS = {"query": "refund"}
"""Every scripted tool takes one string argument, ``query``; the fake always asks for this."""


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes = b""
    frames: list[bytes] | None = None
    """A streamed answer: frames written one by one, with a short pause between them."""
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    """The provider's raw usage for this answer, in its own wire shape (None: not billed)."""
    usage_withheld: bool = False
    """Billed, but the usage was not sent (an OpenAI stream without include_usage)."""
    response_model: str | None = None
    response_id: str | None = None
    tool_call: bool = False


def json_answer(document: Any, status: int = 200, **extra: Any) -> Answer:
    return Answer(status, "application/json", json.dumps(document).encode(), **extra)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (``event:`` line only where the real API sends one)."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def pieces(text: str, size: int = 4) -> list[str]:
    """The reply in a few word-sized deltas."""
    words = text.split(" ")
    return [" ".join(words[i : i + size]) + (" " if i + size < len(words) else "") for i in range(0, len(words), size)]
