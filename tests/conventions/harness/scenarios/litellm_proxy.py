"""The LiteLLM proxy (``litellm --config``) with its own OpenTelemetry callback
(``litellm_settings: callbacks: ["otel"]``, exporting by OTEL_EXPORTER / OTEL_ENDPOINT),
its models routed to the fake provider, called by the application with the OpenAI client
(``traceparent`` injected, so the proxy's spans join the application's trace): OpenAI
chat, stream, embeddings, Responses, a reasoning model, a 500 then success, a 429 then
success, a call failing every attempt, and Anthropic with cache reads and writes (one
streamed)."""

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai
from kit import QUESTION, SYSTEM, agent_run, app_tool, finish, step, tracer_provider
from opentelemetry import propagate

OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "o4-mini", "text-embedding-3-small")
ANTHROPIC_MODELS = ("claude-sonnet-4-5",)
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
CACHED = [
    {"role": "system", "content": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]},
    {"role": "user", "content": QUESTION},
]


def config() -> str:
    """The proxy's config: every model to the fake provider, the otel callback on."""
    rows = []
    for model in OPENAI_MODELS:
        rows += [
            f"  - model_name: {model}",
            "    litellm_params:",
            f"      model: openai/{model}",
            f"      api_base: {os.environ['OPENAI_BASE_URL']}",
            "      api_key: os.environ/OPENAI_API_KEY",
        ]
    for model in ANTHROPIC_MODELS:
        rows += [
            f"  - model_name: {model}",
            "    litellm_params:",
            f"      model: anthropic/{model}",
            f"      api_base: {os.environ['ANTHROPIC_BASE_URL']}",
            "      api_key: os.environ/ANTHROPIC_API_KEY",
        ]
    return "\n".join(["model_list:", *rows, "litellm_settings:", '  callbacks: ["otel"]', ""])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


MASTER_KEY = f"sk-{secrets.token_hex(32)}"
"""The proxy refuses to start without one (or a flag allowing that)."""


def start_proxy(workdir: Path) -> tuple[subprocess.Popen, str]:
    (workdir / "config.yaml").write_text(config())
    port = free_port()
    litellm = Path(sys.executable).parent / "litellm"
    log = open(workdir / "proxy.log", "w")  # noqa: SIM115 - lives as long as the proxy
    proxy = subprocess.Popen(
        [str(litellm), "--config", str(workdir / "config.yaml"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # A short batch delay: the last calls' spans leave before the proxy is stopped.
        env={**os.environ, "LITELLM_MASTER_KEY": MASTER_KEY, "OTEL_BSP_SCHEDULE_DELAY": "200"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proxy.poll() is not None:
            raise RuntimeError(f"the proxy exited ({proxy.returncode}):\n{(workdir / 'proxy.log').read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/health/liveliness", timeout=2).read()
            return proxy, url
        except OSError:
            time.sleep(0.5)
    proxy.kill()
    raise RuntimeError(f"the proxy did not start:\n{(workdir / 'proxy.log').read_text()[-3000:]}")


def traced() -> dict[str, str]:
    """The application's trace context for the proxy (W3C traceparent)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


provider = tracer_provider()
with tempfile.TemporaryDirectory() as tmp:
    proxy, url = start_proxy(Path(tmp))
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY)
        with agent_run():
            with step("proxy chat gpt-4o-mini"):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=200, extra_headers=traced()
                )
            with step("proxy chat gpt-4o"):
                client.chat.completions.create(
                    model="gpt-4o", messages=MESSAGES, max_tokens=300, extra_headers=traced()
                )
            with step("proxy chat stream gpt-4o-mini include_usage"):
                stream = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=MESSAGES,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers=traced(),
                )
                for _ in stream:
                    pass
            with step("proxy embeddings text-embedding-3-small"):
                client.embeddings.create(
                    model="text-embedding-3-small", input=["refund policy", "shipping times"], extra_headers=traced()
                )
            app_tool()
            with step("proxy chat gpt-4o-mini 500-then-retry", fail=[500]):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=traced())
            with step("proxy chat gpt-4o 429-then-retry", fail=[429]):
                client.chat.completions.create(
                    model="gpt-4o", messages=MESSAGES, max_tokens=300, extra_headers=traced()
                )
            with step("proxy chat gpt-4o-mini 429 every attempt", always=429, expect_error=True):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=traced())
            with step("proxy chat o4-mini (reasoning)"):
                client.chat.completions.create(
                    model="o4-mini", messages=MESSAGES, max_completion_tokens=1000, extra_headers=traced()
                )
            with step("proxy responses gpt-4o-mini"):
                client.responses.create(
                    model="gpt-4o-mini", instructions=SYSTEM, input=QUESTION, extra_headers=traced()
                )
            with step("proxy chat claude-sonnet-4-5"):
                client.chat.completions.create(
                    model="claude-sonnet-4-5", messages=CACHED, max_tokens=256, extra_headers=traced()
                )
            with step("proxy chat stream claude-sonnet-4-5"):
                stream = client.chat.completions.create(
                    model="claude-sonnet-4-5", messages=CACHED, max_tokens=256, stream=True, extra_headers=traced()
                )
                for _ in stream:
                    pass
        time.sleep(8)  # the proxy's batch span processor (it does not flush on SIGTERM)
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proxy.kill()
        print((Path(tmp) / "proxy.log").read_text()[-4000:], file=sys.stderr)
finish(provider)
