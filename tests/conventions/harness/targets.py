"""Every library the harness captures: its pinned packages, its scenario, what it is.

``requirements`` pin the library under test and its provider clients; ``locks/<name>.txt``
(written by the first ``make captures`` on a machine with none, then committed) pins every
package of the environment, so a capture is reproducible: with a lock present, the
environment is installed from it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OTEL_PY = ("opentelemetry-sdk==1.45.2", "opentelemetry-exporter-otlp-proto-http==1.45.2")


@dataclass(frozen=True)
class Target:
    name: str
    """The capture's name (``tests/conventions/captures/<name>.json``) and library id in tests."""
    description: str
    family: str
    """Provider client(s) driven: openai, anthropic, both, aws, google."""
    scenario: str
    """A file in ``scenarios/`` (Python) or a folder in ``node/`` (npm project)."""
    requirements: tuple[str, ...] = ()
    versions_of: tuple[str, ...] = ()
    """Packages whose installed version is recorded in the capture."""
    env: dict[str, str] = field(default_factory=dict)
    node: bool = False


def _sdk(name: str, description: str, family: str, packages: tuple[str, ...], **env: str) -> Target:
    """A raw-SDK capture: the scenario of the captures recorded before this harness existed."""
    return Target(
        name,
        description,
        family,
        "sdk_instrumented.py",
        (*packages, *OTEL_PY),
        (*(p.split("==")[0] for p in packages), "opentelemetry-sdk"),
        {"RC_INSTRUMENTOR": name.removesuffix("-latest"), **env},
    )


V2 = ("opentelemetry-instrumentation-openai-v2==2.4b0", "opentelemetry-util-genai==1.1b0", "httpx", "openai==3.54.0")
SDK_TARGETS = (
    _sdk("otel-openai-v2", "opentelemetry-instrumentation-openai-v2 (official OTel, contrib repo)", "openai", V2),
    _sdk(
        "otel-openai-v2-latest",
        "opentelemetry-instrumentation-openai-v2 with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental",
        "openai",
        V2,
        OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
    ),
    _sdk(
        "otel-genai-openai",
        "opentelemetry-instrumentation-genai-openai (official OTel, opentelemetry-python-genai)",
        "openai",
        ("opentelemetry-instrumentation-genai-openai==1.3b0", "opentelemetry-util-genai==1.3b0", "openai==3.54.0"),
    ),
    _sdk(
        "otel-genai-anthropic",
        "opentelemetry-instrumentation-genai-anthropic (official OTel) on the Anthropic SDK (its own spans on)",
        "anthropic",
        (
            "opentelemetry-instrumentation-genai-anthropic==1.3b0",
            "opentelemetry-util-genai==1.3b0",
            "anthropic==2.12.0",
        ),
    ),
    _sdk(
        "openinference-openai",
        "openinference-instrumentation-openai",
        "openai",
        ("openinference-instrumentation-openai==0.1.66", "openai==3.54.0"),
    ),
    _sdk(
        "traceloop-openai",
        "Traceloop OpenLLMetry opentelemetry-instrumentation-openai",
        "openai",
        ("opentelemetry-instrumentation-openai==0.62.4", "openai==3.54.0"),
    ),
    _sdk(
        "traceloop-anthropic",
        "Traceloop OpenLLMetry opentelemetry-instrumentation-anthropic on the Anthropic SDK (its own spans on)",
        "anthropic",
        ("opentelemetry-instrumentation-anthropic==0.62.4", "anthropic==2.12.0"),
    ),
    _sdk(
        "anthropic-native",
        "anthropic SDK built-in OpenTelemetry spans (anthropic>=2.x), no instrumentor",
        "anthropic",
        ("anthropic==2.12.0",),
    ),
)


TARGETS: tuple[Target, ...] = (
    Target(
        "logfire-openai",
        "logfire.instrument_openai on the OpenAI SDK",
        "openai",
        "logfire_openai.py",
        ("logfire==5.2.0", "openai==3.54.0", *OTEL_PY),
        ("logfire", "openai", "opentelemetry-sdk"),
    ),
    Target(
        "logfire-anthropic",
        "logfire.instrument_anthropic on the Anthropic SDK (SDK spans on by default)",
        "anthropic",
        "logfire_anthropic.py",
        ("logfire==5.2.0", "anthropic==2.12.0", *OTEL_PY),
        ("logfire", "anthropic", "opentelemetry-sdk"),
    ),
    Target(
        "openinference-anthropic",
        "openinference-instrumentation-anthropic on the Anthropic SDK (SDK spans on by default)",
        "anthropic",
        "openinference_anthropic.py",
        ("openinference-instrumentation-anthropic==3.1.0", "anthropic==2.12.0", *OTEL_PY),
        ("openinference-instrumentation-anthropic", "anthropic", "opentelemetry-sdk"),
    ),
    Target(
        "openlit",
        "openlit.init on the OpenAI 2.x and Anthropic 0.x SDKs",
        "both",
        "openlit_sdks.py",
        (
            "openlit==1.44.0",
            "openai==2.54.0",
            "anthropic==0.125.0",
            # the resolver finds no OpenTelemetry set for openlit 1.44.0 on its own
            "opentelemetry-sdk==1.45.1",
            "opentelemetry-instrumentation==0.66b1",
            "opentelemetry-semantic-conventions==0.66b1",
        ),
        ("openlit", "openai", "anthropic", "opentelemetry-sdk"),
    ),
    Target(
        "pydantic-ai",
        "pydantic-ai agents (OpenAI and Anthropic models, a tool) via logfire.instrument_pydantic_ai",
        "both",
        "pydantic_ai_agents.py",
        (
            "pydantic-ai-slim[openai,anthropic]==2.68.0",
            "logfire==5.2.0",
            "openai==3.54.0",
            "anthropic==2.12.0",
            *OTEL_PY,
        ),
        ("pydantic-ai-slim", "logfire", "openai", "anthropic", "opentelemetry-sdk"),
    ),
    Target(
        "langchain-openinference",
        "LangChain (langchain-openai: chains, a tool-calling loop, embeddings, Responses) with OpenInference",
        "openai",
        "langchain_app.py",
        (
            "openinference-instrumentation-langchain==0.1.80",
            "langchain-openai==1.7.4",
            *OTEL_PY,
        ),
        (
            "openinference-instrumentation-langchain",
            "langchain-openai",
            "langchain-core",
            "openai",
            "opentelemetry-sdk",
        ),
        {"RC_LANGCHAIN_INSTRUMENTOR": "openinference"},
    ),
    Target(
        "langchain-traceloop",
        "LangChain (the same application) with Traceloop OpenLLMetry's LangChain instrumentation",
        "openai",
        "langchain_app.py",
        (
            "opentelemetry-instrumentation-langchain==0.62.4",
            "langchain-openai==1.7.4",
            *OTEL_PY,
        ),
        (
            "opentelemetry-instrumentation-langchain",
            "langchain-openai",
            "langchain-core",
            "openai",
            "opentelemetry-sdk",
        ),
        {"RC_LANGCHAIN_INSTRUMENTOR": "traceloop"},
    ),
    Target(
        "llamaindex-openinference",
        "LlamaIndex (OpenAI LLM and embeddings, OpenAIResponses, a FunctionAgent) with OpenInference",
        "openai",
        "llamaindex_app.py",
        (
            "openinference-instrumentation-llama-index==4.6.1",
            "llama-index-core==0.14.25",
            "llama-index-llms-openai==0.8.3",
            "llama-index-embeddings-openai==0.7.0",
            *OTEL_PY,
        ),
        ("openinference-instrumentation-llama-index", "llama-index-core", "llama-index-llms-openai", "openai"),
    ),
    Target(
        "litellm",
        "LiteLLM SDK (OpenAI and Anthropic through litellm.completion / embedding / responses) with its own "
        "OpenTelemetry callback",
        "both",
        "litellm_sdk.py",
        ("litellm==1.110.2", *OTEL_PY),
        ("litellm", "openai", "opentelemetry-sdk"),
        {
            "OTEL_EXPORTER": "otlp_http",
            "OTEL_ENDPOINT": "{sink}/v1/traces",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list at import
        },
    ),
    Target(
        "litellm-proxy",
        "LiteLLM proxy (litellm --config, OpenAI and Anthropic models) with its own OpenTelemetry callback, "
        "called with the OpenAI client (traceparent propagated)",
        "both",
        "litellm_proxy.py",
        (
            "litellm==1.110.2",
            # litellm[proxy] needs litellm-proxy==1.110.2, which no index serves (pip: "No
            # matching distribution"); the proxy's code is in the litellm wheel, and these are
            # the extra's other packages plus what importing litellm.proxy.proxy_server asked for.
            "gunicorn==23.0.0",
            "uvicorn==0.55.0",
            "uvloop==0.23.0",
            "fastapi==0.165.0",
            "starlette==1.10.0",
            "backoff==2.2.1",
            "rq==2.12.0",
            "granian==2.8.9",
            "websockets==17.4",
            "orjson==3.13.0",
            "APScheduler==3.11.3",
            "PyJWT==2.15.1",
            "semver==3.1.2",
            "python-multipart==0.0.34",
            "Expression==5.8.0",
            "fastapi-sso==0.23.0",
            "mcp==2.3.0",
            "soundfile==0.14.0",
            "PyNaCl==1.6.2",  # the proxy's /v1/responses answers 500 "No module named nacl" without it
            *OTEL_PY,
        ),
        ("litellm", "fastapi", "uvicorn", "openai", "opentelemetry-sdk"),
        {
            "OTEL_EXPORTER": "otlp_http",
            "OTEL_ENDPOINT": "{sink}/v1/traces",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list at start
        },
    ),
    Target(
        "openai-agents",
        "OpenAI Agents SDK (Responses and Chat Completions models, a function tool, streamed run) with "
        "openinference-instrumentation-openai-agents",
        "openai",
        "openai_agents_app.py",
        ("openai-agents==0.24.0", "openinference-instrumentation-openai-agents==2.6.0", *OTEL_PY),
        ("openai-agents", "openinference-instrumentation-openai-agents", "openai", "opentelemetry-sdk"),
    ),
    Target(
        "bedrock-botocore",
        "Amazon Bedrock Runtime through boto3 (Converse, ConverseStream, InvokeModel and its stream) with "
        "opentelemetry-instrumentation-botocore",
        "aws",
        "bedrock_boto3.py",
        ("opentelemetry-instrumentation-botocore==0.66b2", "boto3==1.44.5", "opentelemetry-exporter-otlp-proto-http"),
        ("opentelemetry-instrumentation-botocore", "boto3", "botocore", "opentelemetry-sdk"),
    ),
    Target(
        "google-genai",
        "Google GenAI SDK (Gemini API) with opentelemetry-instrumentation-google-genai",
        "google",
        "google_genai_app.py",
        (
            "opentelemetry-instrumentation-google-genai==1.3b0",
            "google-genai<3",
            "opentelemetry-exporter-otlp-proto-http",
        ),
        ("opentelemetry-instrumentation-google-genai", "google-genai", "opentelemetry-sdk"),
    ),
    Target(
        "vercel-ai",
        "Vercel AI SDK (generateText, streamText, embed, a tool loop; OpenAI and Anthropic providers) with "
        "experimental_telemetry on the Node OpenTelemetry SDK",
        "both",
        "vercel-ai",
        node=True,
        versions_of=(
            "ai",
            "@ai-sdk/openai",
            "@ai-sdk/anthropic",
            "@ai-sdk/otel",
            "@opentelemetry/sdk-node",
            "@opentelemetry/sdk-trace",
        ),
    ),
)

TARGETS = (*SDK_TARGETS, *TARGETS)
BY_NAME = {target.name: target for target in TARGETS}
