"""What every scenario shares, inside the library's own virtual environment: the OTLP export
to the harness's sink (the real exporter), the application's root and tool spans, business
keys in baggage, and the steps, each telling the fake provider which failures to script.

Only the standard library and the OpenTelemetry API / SDK / OTLP-HTTP exporter are used
here: every library's environment has those.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

FAKE = os.environ["RC_FAKE_URL"]
LIBRARY = os.environ["RC_LIBRARY"]
RUN_ID = f"{LIBRARY}-r0-{uuid.uuid4().hex[:8]}"
CONVERSATION_ID = f"conv-{RUN_ID}"
KEYS = {
    "workflow.id": f"wf-{RUN_ID}",
    "workflow.type": "support_triage",
    "tenant.id": "tenant-acme",
    "feature.id": "ticket-triage",
    "user.id": "user-000",
}
APP_SCOPE = "rc.app"
SYSTEM = "You are a support agent. Answer from the knowledge base. " * 20
"""A long system prompt: the part providers cache."""
QUESTION = "How long does a refund take?"

steps: list[dict[str, Any]] = []
runs: list[dict[str, Any]] = []


def span_processor() -> BatchSpanProcessor:
    """The real OTLP/HTTP exporter, to the harness's sink."""
    return BatchSpanProcessor(OTLPSpanExporter(endpoint=os.environ["RC_OTLP_ENDPOINT"]))


def tracer_provider() -> TracerProvider:
    """A global SDK TracerProvider exporting to the sink (resource from OTEL_* variables)."""
    provider = TracerProvider(resource=Resource.create({}))
    provider.add_span_processor(span_processor())
    trace.set_tracer_provider(provider)
    return provider


def control(step: str, fail: Sequence[int] = (), always: int | None = None) -> None:
    doc = {"run": RUN_ID, "library": LIBRARY, "step": step, "fail": list(fail), "always": always}
    request = urllib.request.Request(
        f"{FAKE}/_control/step", json.dumps(doc).encode(), {"content-type": "application/json"}
    )
    # The harness's own request: instrumentations that trace urllib (openlit) must not see it.
    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        urllib.request.urlopen(request, timeout=10).read()
    finally:
        context.detach(token)


@contextmanager
def step(name: str, fail: Sequence[int] = (), always: int | None = None, expect_error: bool = False) -> Iterator[None]:
    """One scripted step. An exception ends the step (recorded), never the run."""
    control(name, fail, always)
    started = time.perf_counter()
    record: dict[str, Any] = {"step": name}
    try:
        yield
        record.update(ok=not expect_error, s=round(time.perf_counter() - started, 3))
    except Exception as exc:
        record.update(ok=expect_error, raised=f"{type(exc).__name__}: {str(exc)[:300]}")
        if not expect_error:
            record["traceback"] = traceback.format_exc()[-2000:]
    finally:
        control("", ())
    steps.append(record)


async_step = step  # the same context manager works around awaited calls


@contextmanager
def agent_run(name: str = "agent run") -> Iterator[trace.Span]:
    """The application's root span, business keys on it and in baggage."""
    tracer = trace.get_tracer(APP_SCOPE, "1.0")
    token = None
    ctx = context.get_current()
    for key, value in KEYS.items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = context.attach(ctx)
    attributes = {
        **KEYS,
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "support-triage",
        "gen_ai.conversation.id": CONVERSATION_ID,
        "rc.run_id": RUN_ID,
    }
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as root:
            context_of = root.get_span_context()
            runs.append(
                {
                    "run_id": RUN_ID,
                    "trace_id": f"{context_of.trace_id:032x}",
                    "root_span_id": f"{context_of.span_id:016x}",
                    "conversation_id": CONVERSATION_ID,
                    **KEYS,
                }
            )
            yield root
    finally:
        context.detach(token)


def app_tool(name: str = "search_kb") -> str:
    """The application's own tool span (a tool the application runs itself)."""
    tracer = trace.get_tracer(APP_SCOPE, "1.0")
    with step(f"app tool span {name}"):
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": f"call_{RUN_ID}",
        }
        with tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes):
            time.sleep(0.005)
    return "Refunds take five business days."


def search_kb(query: str) -> str:
    """Search the knowledge base (the scripted tool every framework scenario offers)."""
    return f"Result for {query}: refunds take five business days."


def finish(provider: Any = None) -> None:
    """Flush every span to the sink, then tell the harness the runs and steps."""
    provider = provider or trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
    with open(os.environ["RC_RESULT"], "w") as out:
        json.dump({"runs": runs, "steps": steps}, out)
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is not None:
        shutdown()
