"""Amazon Bedrock Runtime through boto3 (endpoint_url: the fake provider), instrumented by
opentelemetry-instrumentation-botocore: Converse with a cache point (reads and writes),
Converse with a second model, ConverseStream, InvokeModel and InvokeModelWithResponseStream
with an Anthropic body, a 500 then success and a throttled call failing every attempt."""

import json
import os

import boto3
from botocore.config import Config
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

provider = tracer_provider()
BotocoreInstrumentor().instrument(tracer_provider=provider)
client = boto3.client(
    "bedrock-runtime",
    endpoint_url=os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"],
    config=Config(retries={"max_attempts": 3, "mode": "standard"}),
)
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
CONVERSE = {
    "system": [{"text": SYSTEM}, {"cachePoint": {"type": "default"}}],
    "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
    "inferenceConfig": {"maxTokens": 256, "temperature": 0.2},
}
INVOKE = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 256,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": QUESTION}],
    }
)

with agent_run():
    with step("bedrock converse claude-sonnet-4-5 (cache point)"):
        client.converse(modelId=SONNET, **CONVERSE)
    with step("bedrock converse nova-lite"):
        client.converse(modelId=NOVA, **CONVERSE)
    with step("bedrock converse_stream claude-sonnet-4-5"):
        for _ in client.converse_stream(modelId=SONNET, **CONVERSE)["stream"]:
            pass
    with step("bedrock invoke_model claude-3-5-haiku"):
        json.loads(client.invoke_model(modelId=HAIKU, body=INVOKE)["body"].read())
    with step("bedrock invoke_model_with_response_stream claude-3-5-haiku"):
        for _ in client.invoke_model_with_response_stream(modelId=HAIKU, body=INVOKE)["body"]:
            pass
    app_tool()
    with step("bedrock converse claude-sonnet-4-5 500-then-retry", fail=[500]):
        client.converse(modelId=SONNET, **CONVERSE)
    with step("bedrock converse nova-lite 429-then-retry", fail=[429]):
        client.converse(modelId=NOVA, **CONVERSE)
    with step("bedrock converse nova-lite throttled every attempt", always=429, expect_error=True):
        client.converse(modelId=NOVA, **CONVERSE)
finish(provider)
