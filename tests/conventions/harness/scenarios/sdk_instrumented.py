"""The raw OpenAI or Anthropic SDK under one instrumentor (``RC_INSTRUMENTOR``): the scenario of
the captures recorded before this harness existed, so ``make captures`` reproduces them."""

import os

import kit
from kit import agent_run, finish, tracer_provider
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
    session = using_attributes(session_id=kit.CONVERSATION_ID, user_id=kit.KEYS["user.id"])
elif which == "traceloop-openai":
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)
elif which == "traceloop-anthropic":
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=provider)
elif which != "anthropic-native":  # the Anthropic SDK's own spans need no instrumentor
    raise SystemExit(f"unknown RC_INSTRUMENTOR {which!r}")


def conversation() -> object:
    """util-genai's ambient conversation id (the genai-* instrumentations read it)."""
    try:
        from opentelemetry.util.genai.context import conversation_context  # type: ignore[import-not-found]
    except ImportError:
        from contextlib import nullcontext

        return nullcontext()
    return conversation_context(kit.CONVERSATION_ID)


with agent_run(), session or conversation():
    if which.endswith("openai") or which.startswith("otel-openai"):
        import openai

        openai_calls(openai.OpenAI())
    else:
        import anthropic

        client = anthropic.Anthropic(open_telemetry={"conversation_id": kit.CONVERSATION_ID})
        anthropic_calls(client)
finish(provider)
