"""A small but nasty ledger, sent to a real server over OTLP/HTTP protobuf.

~50 runs over the two days before the test, with explicit timestamps (so windows cut
through hours), several workflows, tenants, services, providers, models (one unknown:
unpriced), agents and tools; failed runs, failed calls, failed tools, retries
(``http.request.resend_count``), reported costs, a call seen twice (an instrumentor's span
around the SDK's own span, same response id: one call, one view), usage on an agent span
above its calls (an aggregate, not a call), span-borne and API outcomes (the latest wins),
a workflow outcome covering two runs, duplicate deliveries (batches re-sent, also after
their run was emitted) and late spans (a call arriving after its run was emitted).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

MS = 1_000_000
HOUR_NS = 3600 * 10**9
SERVICES = ("checkout-bot", "support-bot")
WORKFLOWS = ("support_triage", "report_generation", "lead_enrichment")
TENANTS = ("acme", "globex", "initech", "")
AGENTS = ("planner", "researcher", "writer")
TOOLS = ("search", "fetch_url", "crm_lookup")
MODELS = (
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("acme", "acme-llm-1", "acme-llm-1"),
)


@dataclass
class SpanSpec:
    trace_id: bytes
    span_id: bytes
    parent: bytes
    name: str
    start: int
    end: int
    attributes: dict[str, Any] = field(default_factory=dict)
    error: bool = False
    kind: int = Span.SPAN_KIND_INTERNAL


@dataclass
class RunSpec:
    index: int
    trace_id: bytes
    service: str
    start: int
    spans: list[SpanSpec]
    workflow_id: str

    @property
    def run_id(self) -> str:
        return self.trace_id.hex()


@dataclass
class Ledger:
    runs: list[RunSpec]
    first_ns: int
    end_ns: int
    late: list[SpanSpec] = field(default_factory=list)


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def request(service: str, spans: list[SpanSpec]) -> bytes:
    """One OTLP export request body (protobuf)."""
    proto_spans = []
    for s in spans:
        proto_spans.append(
            Span(
                trace_id=s.trace_id,
                span_id=s.span_id,
                parent_span_id=s.parent,
                name=s.name,
                kind=s.kind,
                start_time_unix_nano=s.start,
                end_time_unix_nano=s.end,
                attributes=[KeyValue(key=k, value=_any(v)) for k, v in s.attributes.items()],
                status=Status(code=Status.STATUS_CODE_ERROR if s.error else Status.STATUS_CODE_OK),
            )
        )
    body = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[KeyValue(key="service.name", value=_any(service))]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="tests.api.ledger"), spans=proto_spans)],
            )
        ]
    )
    return body.SerializeToString()


def post(http_url: str, body: bytes, deadline_seconds: float = 120.0) -> None:
    """Export like an OTLP exporter: retry 429 / 502 / 503 / 504 after Retry-After."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        response = httpx.post(
            f"{http_url}/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30
        )
        if response.status_code not in (429, 502, 503, 504) or time.monotonic() > deadline:
            break
        time.sleep(float(response.headers.get("retry-after", "1")))
    assert response.status_code == 200, response.text


def build(now_ns: int, runs: int = 48, seed: int = 7) -> Ledger:
    """Runs starting between 50 and 3 hours before ``now_ns`` (minutes and seconds vary)."""
    rng = random.Random(seed)
    first = now_ns - 50 * HOUR_NS
    step = 47 * HOUR_NS // runs
    made = []
    for i in range(runs):
        start = first + i * step + rng.randint(0, 50 * 60) * 10**9 + rng.randint(0, 10**9)
        made.append(_run(i, start, rng))
    return Ledger(made, first, now_ns - 3 * HOUR_NS + 3600 * 10**9)


def _ids(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _run(i: int, start: int, rng: random.Random) -> RunSpec:
    trace_id = _ids(rng, 16)
    root_id = _ids(rng, 8)
    workflow_id = "wf-shared" if i in (10, 11) else f"wf-{i:03d}"
    root_attrs = _root_attributes(i, workflow_id)
    spans: list[SpanSpec] = []
    clock = start + 5 * MS
    agents = 1 if i % 4 else 2
    for a in range(agents):
        agent_spans, clock = _agent(i, a, trace_id, root_id, clock, rng)
        spans.extend(agent_spans)
    end = clock + 3 * MS
    root = SpanSpec(trace_id, root_id, b"", "workflow", start, end, root_attrs, i % 9 == 4, Span.SPAN_KIND_SERVER)
    spans.insert(0, root)
    return RunSpec(i, trace_id, SERVICES[i % 2], start, spans, workflow_id)


def _root_attributes(i: int, workflow_id: str) -> dict[str, Any]:
    root_attrs: dict[str, Any] = {
        "workflow.id": workflow_id,
        "workflow.type": WORKFLOWS[i % 3],
        "tenant.id": TENANTS[(i * 7) % 4],
        "customer.id": f"cust-{i % 4}",
        "feature.id": ("summarize", "answer")[i % 2],
        "user.id": f"user-{i % 5}",
        "deployment.environment.name": "staging" if i % 8 == 0 else "production",
        "prompt.version": f"v{1 + i % 3}",
    }
    if i % 13 == 0:
        root_attrs["otelspend.outcome"] = "accepted"  # span-borne outcome
    return root_attrs


def _agent(
    i: int, a: int, trace_id: bytes, root_id: bytes, clock: int, rng: random.Random
) -> tuple[list[SpanSpec], int]:
    """An agent span, its model calls, then its tool executions; returns them and the clock after."""
    agent_id = _ids(rng, 8)
    agent_name = AGENTS[(i + a) % 3]
    agent_start = clock
    calls, clock = _model_calls(i, a, trace_id, agent_id, clock, rng)
    tools, clock = _tool_calls(i, trace_id, agent_id, clock, rng)
    agent_attrs: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent_name}
    if i == 21 and a == 0:
        # Usage summed on the agent span above its calls: an aggregate, never a call.
        agent_attrs["gen_ai.usage.input_tokens"] = 99_999
        agent_attrs["gen_ai.usage.output_tokens"] = 9_999
    clock += 2 * MS
    agent = SpanSpec(trace_id, agent_id, root_id, f"invoke_agent {agent_name}", agent_start, clock, agent_attrs)
    return [agent, *calls, *tools], clock


def _model_calls(
    i: int, a: int, trace_id: bytes, agent_id: bytes, clock: int, rng: random.Random
) -> tuple[list[SpanSpec], int]:
    agent_spans: list[SpanSpec] = []
    calls = 0 if i == 20 else 1 + (i + a) % 3
    for c in range(calls):
        provider, model, response_model = MODELS[(i + c + a) % 4] if i % 11 else MODELS[3]
        duration = (200 + rng.randint(0, 4000)) * MS
        inp = rng.randint(200, 9000)
        cached = inp // 2 if provider == "anthropic" else (inp // 4 if c % 2 else 0)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": response_model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": rng.randint(10, 900),
            "gen_ai.usage.cache_read.input_tokens": cached,
            "gen_ai.response.id": f"resp-{i}-{a}-{c}",
        }
        if provider == "anthropic":
            attrs["gen_ai.usage.cache_write.input_tokens"] = inp // 10
        if i % 5 == 0 and c == 0:
            attrs["http.request.resend_count"] = 1 + i % 2
        if i % 6 == 0:
            attrs["gen_ai.usage.cost"] = round(rng.uniform(0.0001, 0.05), 6)
        last = c == calls - 1
        failed = last and i % 7 == 5
        if failed and i % 14 == 5:
            # A failed call that reported no usage: not billed, so not "unpriced" either.
            for key in [k for k in attrs if k.startswith("gen_ai.usage")]:
                del attrs[key]
        call_id = _ids(rng, 8)
        call = SpanSpec(trace_id, call_id, agent_id, f"chat {model}", clock, clock + duration, attrs, failed, 3)
        agent_spans.append(call)
        if i % 7 == 3 and c == 0:
            # The provider SDK's own span inside the instrumentor's: same response id and
            # usage. One call: the inner span counts, the outer becomes a view.
            inner = SpanSpec(
                trace_id, _ids(rng, 8), call_id, f"{provider}.chat", clock + MS, clock + duration - MS, dict(attrs)
            )
            call.attributes.pop("http.request.resend_count", None)  # the SDK's span knows the resends
            agent_spans.append(inner)
        clock += duration + rng.randint(1, 300) * MS
    return agent_spans, clock


def _tool_calls(i: int, trace_id: bytes, agent_id: bytes, clock: int, rng: random.Random) -> tuple[list[SpanSpec], int]:
    spans: list[SpanSpec] = []
    for t in range(i % 3):
        duration = (20 + rng.randint(0, 900)) * MS
        tool_attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": TOOLS[(i + t) % 3]}
        failed = (i + t) % 5 == 4
        spans.append(
            SpanSpec(trace_id, _ids(rng, 8), agent_id, "execute_tool", clock, clock + duration, tool_attrs, failed)
        )
        clock += duration + MS
    return spans, clock


def send(http_url: str, ledger: Ledger) -> dict[str, list[bytes]]:
    """Children first, roots last (as exporters do), each run in two batches; then
    duplicate deliveries of some batches. Returns the bodies sent per run id."""
    sent: dict[str, list[bytes]] = {}
    firsts, seconds = [], []
    for run in ledger.runs:
        children = sorted(run.spans[1:], key=lambda s: s.end)
        half = len(children) // 2
        first = request(run.service, children[:half]) if half else b""
        second = request(run.service, [*children[half:], run.spans[0]])
        sent[run.run_id] = [b for b in (first, second) if b]
        if first:
            firsts.append(first)
        seconds.append(second)
    for body in firsts:
        post(http_url, body)
    for body in seconds:
        post(http_url, body)
    # An exporter that lost the response re-sends: the same bytes again.
    for run in ledger.runs[::4]:
        post(http_url, sent[run.run_id][0])
    return sent


def late_spans(ledger: Ledger, rng_seed: int = 99) -> dict[str, bytes]:
    """One extra call for every sixth run, under its first agent, inside the run's time."""
    rng = random.Random(rng_seed)
    out: dict[str, bytes] = {}
    for run in ledger.runs[1::6]:
        agent = run.spans[1]
        start = agent.start + MS
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1234 + run.index,
            "gen_ai.usage.output_tokens": 321,
            "gen_ai.response.id": f"late-{run.index}",
        }
        span = SpanSpec(run.trace_id, _ids(rng, 8), agent.span_id, "chat gpt-4o (late)", start, start + 150 * MS, attrs)
        span.kind = 3
        ledger.late.append(span)
        out[run.run_id] = request(run.service, [span])
    return out
