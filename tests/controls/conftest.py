"""Servers with the controls wired to a real webhook receiver, and traffic sent through the
official OTel SDK exporters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from tests.conftest import Running
from tests.controls.receiver import Receiver, webhook_receiver

SECRET = "webhook-signing-secret"
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def controlled(start_server: Callable[..., Running], hook: Receiver) -> Callable[..., Running]:
    """Start a server whose alerts go to ``hook`` (signed with SECRET); overrides as for start_server."""

    def start(**overrides: Any) -> Running:
        alerts = {"webhooks": [{"name": "ops", "url": hook.url, "secret": SECRET}], "retry_initial_seconds": 0.1,
                  "retry_max_seconds": 0.5, **overrides.pop("alerts", {})}  # fmt: skip
        return start_server(alerts=alerts, **overrides)

    return start


def api(server: Running) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, timeout=30)


def chat(tracer: Any, model: str, *, failed: bool = False, tokens: tuple[int, int] = (1000, 100), **attrs: Any) -> None:
    """One model call: a failed attempt carries no usage and ends with status ERROR."""
    attributes = {**CHAT, "gen_ai.request.model": model, **attrs}
    if failed:
        attributes["error.type"] = "rate_limit_error"
    else:
        attributes.update({"gen_ai.usage.input_tokens": tokens[0], "gen_ai.usage.output_tokens": tokens[1]})
    with tracer.start_as_current_span(f"chat {model}", attributes=attributes) as span:
        if failed:
            span.set_status(Status(StatusCode.ERROR, "429"))


def run_trace(provider: TracerProvider, body: Callable[[Any], None], **root_attributes: Any) -> tuple[str, float]:
    """One run (root + agent + ``body(tracer)``); returns its run id and when its last span was
    acknowledged (the SDK's simple processor exports each span as it ends, synchronously)."""
    tracer = provider.get_tracer("controls-test")
    with tracer.start_as_current_span("workflow", attributes=root_attributes) as root:
        with tracer.start_as_current_span("invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent",
                                                                      "gen_ai.agent.name": "worker"}):  # fmt: skip
            body(tracer)
        run_id = format(root.get_span_context().trace_id, "032x")
    return run_id, time.monotonic()
