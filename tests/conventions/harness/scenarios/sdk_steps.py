"""The scripted provider calls of the SDK-level scenarios (the same calls, in the same order,
as the captures recorded before this harness): OpenAI chat, stream, embeddings, a 500 then
success, a call failing every attempt with 429, a reasoning model and the Responses API;
Anthropic with cache reads and writes, a stream, a 500 then success and a 429 that never
succeeds."""

from __future__ import annotations

from typing import Any

from kit import QUESTION, SYSTEM, app_tool, step

MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


def openai_calls(client: Any, responses: bool = True) -> None:
    with step("openai.chat gpt-4o-mini"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=200)
    with step("openai.chat gpt-4o"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=300)
    with step("openai.chat stream gpt-4o-mini include_usage"):
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        for _ in stream:
            pass
    with step("openai.embeddings text-embedding-3-small"):
        client.embeddings.create(model="text-embedding-3-small", input=["refund policy", "shipping times"])
    app_tool()
    with step("openai.chat gpt-4o-mini 500-then-retry", fail=[500]):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with step("openai.chat gpt-4o 429-then-retry", fail=[429]):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=300)
    with step("openai.chat gpt-4o-mini 429x3 -> final error", always=429, expect_error=True):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with step("openai.chat o4-mini (reasoning)"):
        client.chat.completions.create(model="o4-mini", messages=MESSAGES, max_completion_tokens=1000)
    if responses:
        with step("openai.responses gpt-4o-mini"):
            client.responses.create(model="gpt-4o-mini", instructions=SYSTEM, input=QUESTION)


def anthropic_calls(client: Any) -> None:
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    user = [{"role": "user", "content": QUESTION}]
    with step("anthropic.messages claude-sonnet-4-5"):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=256, system=system, messages=user)
    with step("anthropic.messages claude-haiku-4-5"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=256, system=system, messages=user)
    with step("anthropic.messages stream claude-sonnet-4-5"):
        stream = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=256, system=system, messages=user, stream=True
        )
        for _ in stream:
            pass
    app_tool()
    with step("anthropic.messages claude-sonnet-4-5 500-then-retry", fail=[500]):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=256, system=system, messages=user)
    with step("anthropic.messages claude-haiku-4-5 429-then-retry", fail=[429]):
        client.messages.create(model="claude-haiku-4-5", max_tokens=256, system=system, messages=user)
    with step("anthropic.messages claude-haiku-4-5 429x3 -> final error", always=429, expect_error=True):
        client.messages.create(model="claude-haiku-4-5", max_tokens=256, system=system, messages=user)
