"""OpenInference's Anthropic instrumentor on the Anthropic SDK (whose own spans are on by
default once a TracerProvider exists)."""

import anthropic
import kit
from kit import agent_run, finish, tracer_provider
from openinference.instrumentation import using_attributes
from openinference.instrumentation.anthropic import AnthropicInstrumentor
from sdk_steps import anthropic_calls

provider = tracer_provider()
AnthropicInstrumentor().instrument(tracer_provider=provider)
with agent_run(), using_attributes(session_id=kit.CONVERSATION_ID, user_id=kit.KEYS["user.id"]):
    anthropic_calls(anthropic.Anthropic())
finish(provider)
