"""The raw OpenAI or Anthropic SDK under one instrumentor (``RC_INSTRUMENTOR``): the scenario of
the captures recorded before this harness existed, so ``make captures`` reproduces them."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import kit
from kit import agent_run, finish, tracer_provider
from opentelemetry import context
from sdk_steps import anthropic_calls, openai_calls

provider = tracer_provider()
which = os.environ["RC_INSTRUMENTOR"]
session = None
if which == "otel-openai-v2":
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
elif which == "otel-genai-openai":
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
elif which == "otel-genai-anthropic":
    from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=provider)
elif which == "openinference-openai":
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
    session = using_attributes(
        session_id=kit.CONVERSATION_ID,
        user_id=kit.KEYS["user.id"],
        metadata={k: v for k, v in kit.KEYS.items() if k != "user.id"},
        tags=["support_triage"],
    )
elif which == "traceloop-openai":
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
elif which == "traceloop-anthropic":
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=provider)
elif which != "anthropic-native":  # the Anthropic SDK's own spans need no instrumentor
    raise SystemExit(f"unknown RC_INSTRUMENTOR {which!r}")


@contextmanager
def conversation() -> Iterator[None]:
    """util-genai's ambient conversation id (the genai-* instrumentations read it)."""
    try:
        from opentelemetry.util.genai._conversation_context import with_conversation_id
    except ImportError:  # util-genai 1.1b0 (openai-v2) has none
        yield
        return
    token = context.attach(with_conversation_id(kit.CONVERSATION_ID))
    try:
        yield
    finally:
        context.detach(token)


with agent_run(), session or conversation():
    if which.endswith("openai") or which.startswith("otel-openai"):
        import openai

        openai_calls(openai.OpenAI())
    else:
        import anthropic

        client = anthropic.Anthropic(open_telemetry={"conversation_id": kit.CONVERSATION_ID})
        anthropic_calls(client)
finish(provider)
