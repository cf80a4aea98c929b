"""Seeded GenAI agent traces, encoded straight into OTLP/protobuf export requests.

One trace is one agent run, shaped like what the official GenAI instrumentations send
(``../shared/conventions/README.md``):

* a root ``invoke_agent`` span (SERVER) carrying the business keys: ``workflow.id``,
  ``workflow.type``, ``tenant.id``, ``feature.id``, ``user.id``;
* sequential steps, some inside a nested ``invoke_agent`` span of a sub-agent;
* ``chat`` spans (CLIENT) over several providers and real genai-prices models, with input
  tokens *including* cache reads and writes, output tokens *including* reasoning, cache
  read / write and reasoning counts where the provider reports them;
* provider failures (status ERROR, ``error.type``, an ``exception`` event, no usage)
  followed by a successful retry of the same model under the same parent;
* ``execute_tool`` spans (INTERNAL), a few of them failing.

Export order mimics a fleet of BatchSpanProcessors: spans are emitted when they end
(children before their parents, the root last) and many traces are in flight at once,
so every trace is split across several requests. A request groups its spans by resource
and instrumentation scope, like an exporter or a Collector does.

Everything derives from ``random.Random(seed)`` and a base time, so the same arguments
give byte-identical requests: a reference ingest and a crashed one see the same traffic.
Per-span facts (model, tokens, failed or not) are kept per trace so the ground truth can
be computed for any subset of acknowledged requests (``bench.truth``).
"""

from __future__ import annotations

import math
import random
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MS = 1_000_000
SPAN_BITS = 8
"""A span reference packs (trace index << SPAN_BITS) | span index: at most 256 spans a trace."""
MAX_SPANS_PER_TRACE = 1 << SPAN_BITS


@dataclass(frozen=True)
class Model:
    """A model as an application calls it; ``price_provider`` is the genai-prices id."""

    provider: str
    price_provider: str
    request: str
    response: str
    cache_writes: bool = False
    reasoning: bool = False


# OpenAI calls ask for an alias and are answered by a dated snapshot (so a failed attempt,
# which reports only the request model, names the alias); the others pin the snapshot.
MODELS: tuple[Model, ...] = (
    Model("openai", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    Model("openai", "openai", "gpt-4.1", "gpt-4.1-2025-04-14"),
    Model("openai", "openai", "o4-mini", "o4-mini-2025-04-16", reasoning=True),
    Model("anthropic", "anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", cache_writes=True),
    Model("anthropic", "anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", cache_writes=True),
    Model("gcp.gemini", "google", "gemini-2.5-flash", "gemini-2.5-flash"),
    Model("mistral_ai", "mistral", "mistral-large-2411", "mistral-large-2411"),
)


@dataclass(frozen=True)
class Workflow:
    """A kind of agent run: its type, service, agents and the models it calls."""

    type: str
    service: str
    agent: str
    sub_agent: str
    models: tuple[int, ...]
    """Indexes into MODELS, drawn uniformly."""
    tools: tuple[str, ...]


WORKFLOWS: tuple[Workflow, ...] = (
    Workflow("support_triage", "support-bot", "triage", "kb-searcher", (0, 3, 4), ("search_kb", "create_ticket")),
    Workflow("research_report", "research-agent", "researcher", "summarizer", (1, 2, 3, 5), ("web_search", "fetch")),
    Workflow("code_review", "review-bot", "reviewer", "linter", (1, 3, 6), ("read_file", "run_tests")),
    Workflow("invoice_extraction", "docs-pipeline", "extractor", "validator", (0, 5, 6), ("ocr", "lookup_vendor")),
)
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
FEATURES = ("chat", "autopilot", "digest", "review")
ERROR_TYPES = ("RateLimitError", "APIConnectionError", "InternalServerError")

# Kinds of span facts (ground truth), the first element of each fact tuple.
ROOT, AGENT, CHAT, TOOL = "root", "agent", "chat", "tool"


@dataclass(frozen=True)
class Shape:
    """Distributions of the generated traffic (defaults: a mixed agent fleet)."""

    steps: tuple[int, int] = (1, 6)
    sub_agent_probability: float = 0.2
    tool_probability: float = 0.6
    tool_failure_probability: float = 0.05
    retry_probabilities: tuple[float, float] = (0.08, 0.02)
    """Probability of exactly one / exactly two failed attempts before a call succeeds."""
    root_error_probability: float = 0.03
    cache_read_probability: float = 0.5
    cache_write_probability: float = 0.2
    input_tokens_median: int = 2500
    output_tokens_median: int = 300
    trace_spacing_ms: float = 2.0
    """Start-time distance between consecutive traces."""


@dataclass
class TraceFacts:
    """What one trace contains, for the ground truth."""

    workflow_type: str
    tenant: str
    feature: str
    spans: list[tuple[Any, ...]] = field(default_factory=list)
    """Per span: (ROOT,) | (AGENT,) | (TOOL, failed) |
    (CHAT, model index, start_ns, input, output, cache_read, cache_write, reasoning, failed, retries)."""


@dataclass
class Request:
    """One encoded export request and the spans it carries."""

    payload: bytes
    spans: int
    refs: array
    """Packed span references (trace index << SPAN_BITS | span index)."""


@dataclass
class Workload:
    """The encoded requests of a seeded run and the facts of every trace they carry."""

    seed: int
    base_ns: int
    requests: list[Request]
    traces: list[TraceFacts]

    @property
    def spans(self) -> int:
        """Spans across every request."""
        return sum(r.spans for r in self.requests)


@dataclass(frozen=True, slots=True)
class SpanSpec:
    """One span to encode (ids, times, attributes); its facts live in ``TraceFacts.spans``."""

    trace_id: bytes
    span_id: bytes
    parent: bytes
    name: str
    kind: int
    start: int
    end: int
    attributes: list[tuple[str, Any]]
    status: int = 0
    error_type: str = ""


Indexed = tuple[int, SpanSpec]
"""(span index in its trace, spec)."""


@dataclass
class _Pending:
    """A trace in flight: its spans in end order, the next one to export."""

    index: int
    workflow: Workflow
    spans: list[Indexed]
    next: int = 0


def generate(
    *,
    seed: int,
    spans: int,
    batch_spans: int = 512,
    in_flight_traces: int = 64,
    base_ns: int | None = None,
    shape: Shape | None = None,
) -> Workload:
    """At least ``spans`` spans (whole traces only), in requests of ``batch_spans`` spans.

    ``base_ns`` is the first trace's start (default: ten minutes ago); traces follow every
    ``shape.trace_spacing_ms``.
    """
    if batch_spans < 1:
        raise ValueError("batch_spans must be at least 1")
    shape = shape or Shape()
    rng = random.Random(seed)
    base_ns = base_ns if base_ns is not None else time.time_ns() - 600 * 10**9
    builder = _Builder(rng, shape, base_ns)
    traces: list[TraceFacts] = []
    requests: list[Request] = []
    batch: list[tuple[int, int, Workflow, SpanSpec]] = []
    for item in _export_order(builder, traces, spans, in_flight_traces, rng):
        batch.append(item)
        if len(batch) == batch_spans:
            requests.append(_encode(batch))
            batch = []
    if batch:
        requests.append(_encode(batch))
    return Workload(seed, base_ns, requests, traces)


def _export_order(
    builder: _Builder, traces: list[TraceFacts], target: int, width: int, rng: random.Random
) -> Iterator[tuple[int, int, Workflow, SpanSpec]]:
    """Spans as a fleet of exporters would send them: many traces interleaved, roots last."""
    in_flight: list[_Pending] = []
    created = 0
    while True:
        while len(in_flight) < width and created < target:
            workflow, facts, spans = builder.trace(len(traces))
            traces.append(facts)
            in_flight.append(_Pending(len(traces) - 1, workflow, spans))
            created += len(spans)
        if not in_flight:
            return
        pick = rng.randrange(len(in_flight))
        pending = in_flight[pick]
        span_index, spec = pending.spans[pending.next]
        yield pending.index, span_index, pending.workflow, spec
        pending.next += 1
        if pending.next == len(pending.spans):
            in_flight[pick] = in_flight[-1]
            in_flight.pop()


class _Builder:
    """Draws one trace at a time: span specs in end order plus their facts."""

    def __init__(self, rng: random.Random, shape: Shape, base_ns: int) -> None:
        self.rng = rng
        self.shape = shape
        self.base_ns = base_ns

    def trace(self, index: int) -> tuple[Workflow, TraceFacts, list[Indexed]]:
        rng, shape = self.rng, self.shape
        workflow = rng.choice(WORKFLOWS)
        facts = TraceFacts(workflow.type, rng.choice(TENANTS), rng.choice(FEATURES))
        trace_id = rng.randbytes(16)
        start = self.base_ns + int(index * shape.trace_spacing_ms * MS) + rng.randrange(MS)
        root_id = rng.randbytes(8)
        out: list[Indexed] = []
        cursor = start + 2 * MS
        steps = rng.randint(*shape.steps)
        step = 0
        while step < steps:
            if rng.random() < shape.sub_agent_probability and steps - step >= 2:
                agent_id = rng.randbytes(8)
                agent_start = cursor
                cursor += MS
                for _ in range(2):
                    cursor = self._step(trace_id, agent_id, workflow, cursor, out, facts)
                cursor += MS
                agent = SpanSpec(
                    trace_id, agent_id, root_id, f"invoke_agent {workflow.sub_agent}", Span.SPAN_KIND_INTERNAL,
                    agent_start, cursor,
                    [("gen_ai.operation.name", "invoke_agent"), ("gen_ai.agent.name", workflow.sub_agent)],
                )  # fmt: skip
                out.append(_add(facts, (AGENT,), agent))
                step += 2
            else:
                cursor = self._step(trace_id, root_id, workflow, cursor, out, facts)
                step += 1
        failed = rng.random() < shape.root_error_probability
        root_attributes = [
            ("gen_ai.operation.name", "invoke_agent"),
            ("gen_ai.agent.name", workflow.agent),
            ("workflow.id", f"wf-{trace_id[:6].hex()}"),
            ("workflow.type", workflow.type),
            ("tenant.id", facts.tenant),
            ("feature.id", facts.feature),
            ("user.id", f"user-{rng.randrange(5000)}"),
        ]
        root = SpanSpec(
            trace_id, root_id, b"", f"invoke_agent {workflow.agent}", Span.SPAN_KIND_SERVER, start, cursor + 3 * MS,
            root_attributes, Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK,
            "AgentError" if failed else "",
        )  # fmt: skip
        out.append(_add(facts, (ROOT,), root))
        if len(out) > MAX_SPANS_PER_TRACE:
            raise ValueError("trace too large for the span reference packing")
        # Exported when they end: by end time, so children (which end first) precede parents.
        out.sort(key=lambda item: (item[1].end, item[0]))
        return workflow, facts, out

    def _step(
        self,
        trace_id: bytes,
        parent: bytes,
        workflow: Workflow,
        cursor: int,
        out: list[Indexed],
        facts: TraceFacts,
    ) -> int:
        """One chat call (after its failed attempts) and maybe one tool call; returns the new cursor."""
        rng, shape = self.rng, self.shape
        model_index = rng.choice(workflow.models)
        model = MODELS[model_index]
        name = f"chat {model.request}"
        draw = rng.random()
        one, two = shape.retry_probabilities
        failures = 2 if draw < two else 1 if draw < one + two else 0
        for _ in range(failures):
            duration = rng.randint(20, 400) * MS
            error = rng.choice(ERROR_TYPES)
            attributes = [
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", model.provider),
                ("gen_ai.request.model", model.request),
                ("gen_ai.request.max_tokens", 4096),
                ("error.type", error),
                ("server.address", _server(model)),
            ]
            spec = SpanSpec(
                trace_id, rng.randbytes(8), parent, name, Span.SPAN_KIND_CLIENT, cursor, cursor + duration,
                attributes, Status.STATUS_CODE_ERROR, error,
            )  # fmt: skip
            out.append(_add(facts, (CHAT, model_index, cursor, None, None, None, None, None, True, 0), spec))
            cursor += duration + rng.randint(100, 2000) * MS
        inp, output, cache_read, cache_write, reasoning = self._usage(model)
        duration = rng.randint(300, 8000) * MS
        attributes = [
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", model.provider),
            ("gen_ai.request.model", model.request),
            ("gen_ai.response.model", model.response),
            ("gen_ai.response.id", f"resp_{rng.getrandbits(64):016x}"),
            ("gen_ai.request.max_tokens", 4096),
            ("gen_ai.request.temperature", 0.2),
            ("gen_ai.response.finish_reasons", ["stop"]),
            ("gen_ai.usage.input_tokens", inp),
            ("gen_ai.usage.output_tokens", output),
            ("server.address", _server(model)),
            ("server.port", 443),
        ]
        if cache_read:
            attributes.append(("gen_ai.usage.cache_read.input_tokens", cache_read))
        if cache_write:
            attributes.append(("gen_ai.usage.cache_write.input_tokens", cache_write))
        if reasoning:
            attributes.append(("gen_ai.usage.reasoning.output_tokens", reasoning))
        spec = SpanSpec(
            trace_id, rng.randbytes(8), parent, name, Span.SPAN_KIND_CLIENT, cursor, cursor + duration, attributes
        )
        fact = (CHAT, model_index, cursor, inp, output, cache_read, cache_write, reasoning, False, failures)
        out.append(_add(facts, fact, spec))
        cursor += duration + MS
        if rng.random() < shape.tool_probability:
            tool = rng.choice(workflow.tools)
            failed = rng.random() < shape.tool_failure_probability
            duration = rng.randint(20, 2000) * MS
            attributes = [
                ("gen_ai.operation.name", "execute_tool"),
                ("gen_ai.tool.name", tool),
                ("gen_ai.tool.type", "function"),
                ("gen_ai.tool.call.id", f"call_{rng.getrandbits(48):012x}"),
            ]
            spec = SpanSpec(
                trace_id, rng.randbytes(8), parent, f"execute_tool {tool}", Span.SPAN_KIND_INTERNAL, cursor,
                cursor + duration, attributes, Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK,
                "ToolError" if failed else "",
            )  # fmt: skip
            out.append(_add(facts, (TOOL, failed), spec))
            cursor += duration + MS
        return cursor

    def _usage(self, model: Model) -> tuple[int, int, int, int, int]:
        """Input including cache reads and writes, output including reasoning (the semconv meaning)."""
        rng, shape = self.rng, self.shape
        inp = min(300_000, max(20, int(rng.lognormvariate(math.log(shape.input_tokens_median), 1.0))))
        out = min(16_000, max(1, int(rng.lognormvariate(math.log(shape.output_tokens_median), 0.8))))
        cache_read = int(inp * rng.uniform(0.3, 0.9)) if rng.random() < shape.cache_read_probability else 0
        cache_write = 0
        if model.cache_writes and rng.random() < shape.cache_write_probability:
            cache_write = int((inp - cache_read) * rng.uniform(0.1, 0.9))
        reasoning = int(out * rng.uniform(0.2, 0.8)) if model.reasoning else 0
        return inp, out, cache_read, cache_write, reasoning


def _add(facts: TraceFacts, fact: tuple[Any, ...], spec: SpanSpec) -> Indexed:
    facts.spans.append(fact)
    return len(facts.spans) - 1, spec


def _server(model: Model) -> str:
    return {
        "openai": "api.openai.com",
        "anthropic": "api.anthropic.com",
        "gcp.gemini": "generativelanguage.googleapis.com",
    }.get(model.provider, "api.mistral.ai")


# -- OTLP encoding -------------------------------------------------------------------------

_SCOPES = {
    "openai": ("opentelemetry.instrumentation.genai.openai", "1.3b0"),
    "anthropic": ("opentelemetry.instrumentation.genai.anthropic", "1.3b0"),
}
_APP_SCOPE = ("agent-app", "1.0.0")
_RESOURCES: dict[str, bytes] = {}


def _resource(service: str) -> bytes:
    cached = _RESOURCES.get(service)
    if cached is None:
        resource = Resource(
            attributes=_key_values(
                [
                    ("service.name", service),
                    ("service.version", "2.4.1"),
                    ("deployment.environment.name", "production"),
                    ("telemetry.sdk.language", "python"),
                    ("telemetry.sdk.name", "opentelemetry"),
                    ("telemetry.sdk.version", "1.45.2"),
                ]
            )
        )
        cached = _RESOURCES[service] = resource.SerializeToString()
    return cached


def _scope_of(attributes: list[tuple[str, Any]]) -> tuple[str, str]:
    """Model calls come from a GenAI instrumentation, the rest from the application's tracer."""
    for key, value in attributes:
        if key == "gen_ai.provider.name":
            return _SCOPES.get(value, ("opentelemetry.instrumentation.genai", "1.3b0"))
    return _APP_SCOPE


def _encode(batch: list[tuple[int, int, Workflow, SpanSpec]]) -> Request:
    grouped: dict[str, dict[tuple[str, str], list[SpanSpec]]] = {}
    refs = array("Q")
    for trace_index, span_index, workflow, spec in batch:
        refs.append((trace_index << SPAN_BITS) | span_index)
        grouped.setdefault(workflow.service, {}).setdefault(_scope_of(spec.attributes), []).append(spec)
    request = ExportTraceServiceRequest()
    for service, scopes in grouped.items():
        resource_spans = request.resource_spans.add()
        resource_spans.resource.MergeFromString(_resource(service))
        for (scope_name, scope_version), specs in scopes.items():
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = scope_name
            scope_spans.scope.version = scope_version
            for spec in specs:
                _fill(scope_spans.spans.add(), spec)
    return Request(request.SerializeToString(), len(batch), refs)


def _fill(span: Span, spec: SpanSpec) -> None:
    span.trace_id = spec.trace_id
    span.span_id = spec.span_id
    if spec.parent:
        span.parent_span_id = spec.parent
    span.name = spec.name
    span.kind = spec.kind
    span.start_time_unix_nano = spec.start
    span.end_time_unix_nano = spec.end
    span.attributes.extend(_key_values(spec.attributes))
    if spec.status:
        span.status.code = spec.status
        if spec.error_type:
            # As SDKs record a raised exception: status message plus an ``exception`` event.
            error_type = spec.error_type
            span.status.message = f"{error_type}: simulated failure"
            event = span.events.add()
            event.name = "exception"
            event.time_unix_nano = spec.end
            event.attributes.extend(_key_values([("exception.type", error_type), ("exception.message", "failed")]))


def _key_values(pairs: list[tuple[str, Any]]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any(value)) for key, value in pairs]


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(_any(item) for item in value)
        return out
    return AnyValue(string_value=value)
