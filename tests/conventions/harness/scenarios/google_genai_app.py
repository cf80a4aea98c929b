"""The Google GenAI SDK against the Gemini API wire format (base_url: the fake provider),
instrumented by opentelemetry-instrumentation-google-genai: a thinking model with cached
content, a second model, a stream, a 500 then success and a call failing every attempt
(SDK retries on)."""

import os

from google import genai
from google.genai import types
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider
from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

provider = tracer_provider()
GoogleGenAiSdkInstrumentor().instrument(tracer_provider=provider)
retry = types.HttpRetryOptions(attempts=3, initial_delay=0.05, max_delay=0.2)
client = genai.Client(
    api_key=os.environ["GOOGLE_API_KEY"],
    http_options=types.HttpOptions(base_url=os.environ["GOOGLE_GEMINI_BASE_URL"], retry_options=retry),
)
CONFIG = types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=512, temperature=0.2)

with agent_run():
    with step("google generate_content gemini-2.5-flash (thinking, cached)"):
        client.models.generate_content(model="gemini-2.5-flash", contents=QUESTION, config=CONFIG)
    with step("google generate_content gemini-2.0-flash"):
        client.models.generate_content(model="gemini-2.0-flash", contents=QUESTION, config=CONFIG)
    with step("google generate_content_stream gemini-2.5-flash"):
        for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents=QUESTION, config=CONFIG):
            pass
    app_tool()
    with step("google generate_content gemini-2.5-flash 500-then-retry", fail=[500]):
        client.models.generate_content(model="gemini-2.5-flash", contents=QUESTION, config=CONFIG)
    with step("google generate_content gemini-2.0-flash 429-then-retry", fail=[429]):
        client.models.generate_content(model="gemini-2.0-flash", contents=QUESTION, config=CONFIG)
    with step("google generate_content gemini-2.0-flash 429 every attempt", always=429, expect_error=True):
        client.models.generate_content(model="gemini-2.0-flash", contents=QUESTION, config=CONFIG)
finish(provider)
