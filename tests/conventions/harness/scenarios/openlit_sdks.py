"""openlit.init on the raw OpenAI and Anthropic SDKs (both scenarios in one run), exporting to
the sink with openlit's own OTLP setup."""

import os

import anthropic
import openai
import openlit
from kit import agent_run, finish
from opentelemetry import trace
from sdk_steps import anthropic_calls, openai_calls

openlit.init(otlp_endpoint=os.environ["RC_OTLP_BASE"], application_name="rc-openlit", disable_metrics=True)
with agent_run():
    openai_calls(openai.OpenAI())
    anthropic_calls(anthropic.Anthropic())
finish(trace.get_tracer_provider())
