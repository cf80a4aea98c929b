"""The LiteLLM SDK with its own OpenTelemetry callback (``litellm.callbacks = ["otel"]``,
configured by OTEL_EXPORTER / OTEL_ENDPOINT), next to the application's TracerProvider:
OpenAI chat, stream, embeddings, Responses, a reasoning model, a 500 then success, a call
failing every attempt, and Anthropic with cache reads and writes (one streamed)."""

import os

import litellm
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider

provider = tracer_provider()
litellm.callbacks = ["otel"]
OPENAI = {"api_base": os.environ["OPENAI_BASE_URL"]}
ANTHROPIC = {"api_base": os.environ["ANTHROPIC_BASE_URL"]}
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
CACHED = [
    {"role": "system", "content": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": QUESTION},
]

with agent_run():
    with step("litellm.completion openai/gpt-4o-mini"):
        litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=200, **OPENAI)
    with step("litellm.completion openai/gpt-4o"):
        litellm.completion(model="openai/gpt-4o", messages=MESSAGES, max_tokens=300, **OPENAI)
    with step("litellm.completion stream openai/gpt-4o-mini include_usage"):
        stream = litellm.completion(
            model="openai/gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **OPENAI
        )
        for _ in stream:
            pass
    with step("litellm.embedding openai/text-embedding-3-small"):
        litellm.embedding(model="openai/text-embedding-3-small", input=["refund policy", "shipping times"], **OPENAI)
    app_tool()
    with step("litellm.completion openai/gpt-4o-mini 500-then-retry", fail=[500]):
        litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **OPENAI)
    with step("litellm.completion openai/gpt-4o 429-then-retry", fail=[429]):
        litellm.completion(model="openai/gpt-4o", messages=MESSAGES, max_tokens=300, **OPENAI)
    with step("litellm.completion openai/gpt-4o-mini 429 every attempt", always=429, expect_error=True):
        litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, **OPENAI)
    with step("litellm.completion openai/o4-mini (reasoning)"):
        litellm.completion(model="openai/o4-mini", messages=MESSAGES, max_completion_tokens=1000, **OPENAI)
    with step("litellm.responses openai/gpt-4o-mini"):
        litellm.responses(model="openai/gpt-4o-mini", instructions=SYSTEM, input=QUESTION, **OPENAI)
    with step("litellm.completion anthropic/claude-sonnet-4-5"):
        litellm.completion(model="anthropic/claude-sonnet-4-5", messages=CACHED, max_tokens=256, **ANTHROPIC)
    with step("litellm.completion stream anthropic/claude-sonnet-4-5"):
        stream = litellm.completion(
            model="anthropic/claude-sonnet-4-5", messages=CACHED, max_tokens=256, stream=True, **ANTHROPIC
        )
        for _ in stream:
            pass
finish(provider)
