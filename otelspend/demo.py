"""``otelspend demo``: realistic GenAI traffic, sent through the official OpenTelemetry SDK.

Two halves:

* **The traffic model** (this module; pure, seeded): ``plan_runs`` turns a seed, a run count and a time
  range into planned span trees for six workflows of six services. Each run is one trace:
  a root span carrying the business keys (``workflow.*``, ``tenant.id``, ``customer.id``,
  ``feature.id``, ``user.id``, ``prompt.version``, ``deployment.environment.name``), one
  or more ``invoke_agent`` spans, model calls with GenAI semantic-convention usage (cache
  reads and writes, reasoning tokens) on real genai-prices models of OpenAI, Anthropic,
  Gemini, Vertex AI and Bedrock, ``execute_tool`` spans, failures (``error.type`` + ERROR
  status) followed by retries, SDK resends (``http.request.resend_count``), and outcomes
  (``otelspend.outcome`` attributes or ``gen_ai.evaluation.result`` events). One
  self-hosted model (an OpenAI-compatible vLLM server) stays unpriced on purpose.
* **The sender** (``otelspend.demo_sender``) replays the plan through the SDK.

The model needs nothing beyond the standard library.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

AttributeValue = str | int | float | bool
SECOND_NS = 10**9
DAY_NS = 86_400 * SECOND_NS


# -- the traffic model: what exists ---------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One provider model as an instrumentation reports it."""

    provider: str
    """``gen_ai.provider.name`` (semconv spelling)."""
    request_model: str
    response_model: str
    server: str
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    operation: str = "chat"
    cache: str = "none"
    """``none``, ``read`` (automatic prefix caching: reads only) or ``explicit`` (reads and writes)."""
    reasoning_share: float = 0.0
    """Part of the output that is reasoning (counted inside output_tokens, as the semconv says)."""
    ms_per_output_token: float = 12.0
    public_price: bool = True
    """False for a self-hosted model: no public rate card has it, so otelspend leaves it unpriced."""


@dataclass(frozen=True)
class AgentSpec:
    """An agent of a demo workflow: its name, model, how many calls it makes (min, max) and its tools."""

    name: str
    model: str
    calls: tuple[int, int]
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowSpec:
    """A demo workflow: its service, feature, share of the runs, agents, review and prompt versions."""

    type: str
    service: str
    feature: str
    weight: float
    agents: tuple[AgentSpec, ...]
    reviewed: bool
    """Runs get human outcomes (accepted / edited / rejected / escalated)."""
    prompt_versions: tuple[str, ...]
    embedding_model: str = ""
    """Retrieval workflows embed the question first."""


MODELS: Mapping[str, ModelSpec] = {
    "claude-haiku": ModelSpec(
        "anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "api.anthropic.com",
        (1_800, 6_000), (60, 400), cache="explicit", ms_per_output_token=6,
    ),
    "claude-sonnet": ModelSpec(
        "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "api.anthropic.com",
        (4_000, 16_000), (200, 1_400), cache="explicit", ms_per_output_token=14,
    ),
    "gpt-5": ModelSpec(
        "openai", "gpt-5", "gpt-5-2025-08-07", "api.openai.com",
        (2_000, 9_000), (400, 3_000), cache="read", reasoning_share=0.6, ms_per_output_token=9,
    ),
    "gpt-4.1-mini": ModelSpec(
        "openai", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", "api.openai.com",
        (800, 3_000), (100, 600), cache="read", ms_per_output_token=5,
    ),
    "embedding": ModelSpec(
        "openai", "text-embedding-3-small", "text-embedding-3-small", "api.openai.com",
        (20, 400), (0, 0), operation="embeddings", ms_per_output_token=0,
    ),
    "gemini-flash": ModelSpec(
        "gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", "generativelanguage.googleapis.com",
        (6_000, 30_000), (150, 900), operation="generate_content", cache="read", reasoning_share=0.3,
        ms_per_output_token=4,
    ),
    "gemini-pro": ModelSpec(
        "gcp.vertex_ai", "gemini-2.5-pro", "gemini-2.5-pro", "us-central1-aiplatform.googleapis.com",
        (3_000, 20_000), (300, 2_000), operation="generate_content", reasoning_share=0.5, ms_per_output_token=10,
    ),
    "nova-pro": ModelSpec(
        "aws.bedrock", "amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", "bedrock-runtime.us-east-1.amazonaws.com",
        (2_500, 9_000), (150, 800), ms_per_output_token=8,
    ),
    "bedrock-sonnet": ModelSpec(
        "aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "bedrock-runtime.us-east-1.amazonaws.com", (3_000, 12_000), (150, 900), cache="explicit",
        ms_per_output_token=15,
    ),
    # Self-hosted behind an OpenAI-compatible vLLM server: instrumentations report it as
    # "openai", no public rate card has it, so it lands in the unpriced view.
    "llama-selfhosted": ModelSpec(
        "openai", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "vllm.internal",
        (2_000, 12_000), (200, 900), ms_per_output_token=7, public_price=False,
    ),
}  # fmt: skip

WORKFLOWS: tuple[WorkflowSpec, ...] = (
    WorkflowSpec(
        "support_triage", "support-bot", "support-inbox", 30,
        (
            AgentSpec("triage-agent", "claude-haiku", (1, 1), ("search_kb",)),
            AgentSpec("resolution-agent", "claude-sonnet", (1, 3), ("lookup_order", "search_kb", "create_ticket")),
        ),
        reviewed=True, prompt_versions=("v3", "v4"),
    ),
    WorkflowSpec(
        "code_review", "review-bot", "pr-review", 15,
        (AgentSpec("reviewer-agent", "gpt-5", (1, 2), ("fetch_diff", "run_linter")),),
        reviewed=True, prompt_versions=("v7",),
    ),
    WorkflowSpec(
        "docs_qa", "docs-assistant", "docs-search", 25,
        (AgentSpec("answer-agent", "gemini-flash", (1, 1), ("vector_search",)),),
        reviewed=True, prompt_versions=("v1", "v2"), embedding_model="embedding",
    ),
    WorkflowSpec(
        "invoice_extraction", "ap-automation", "invoice-capture", 12,
        (
            AgentSpec("extraction-agent", "nova-pro", (1, 2), ("ocr_page",)),
            AgentSpec("validation-agent", "bedrock-sonnet", (1, 1), ("erp_lookup",)),
        ),
        reviewed=True, prompt_versions=("v2",),
    ),
    WorkflowSpec(
        "lead_enrichment", "crm-enricher", "crm-sync", 10,
        (
            AgentSpec("research-agent", "gemini-pro", (1, 3), ("web_search", "fetch_page")),
            AgentSpec("writer-agent", "gpt-4.1-mini", (1, 1)),
        ),
        reviewed=False, prompt_versions=("v5",),
    ),
    WorkflowSpec(
        "meeting_summary", "notes-service", "meeting-notes", 8,
        (AgentSpec("summarizer-agent", "llama-selfhosted", (1, 2), ("fetch_transcript",)),),
        reviewed=True, prompt_versions=("v1",),
    ),
)  # fmt: skip

TENANTS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("acme", 0.30, ("acme-us", "acme-eu")),
    ("globex", 0.20, ("globex",)),
    ("initech", 0.15, ("initech-hq", "initech-labs")),
    ("umbrella", 0.15, ("umbrella",)),
    ("hooli", 0.10, ("hooli",)),
    ("stark", 0.10, ("stark-industries",)),
)
OUTCOMES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("accepted", 0.62, (0.8, 1.0)),
    ("edited", 0.20, (0.5, 0.8)),
    ("rejected", 0.11, (0.0, 0.3)),
    ("escalated", 0.07, (0.1, 0.4)),
)
CALL_ERRORS: Mapping[str, tuple[str, ...]] = {
    "anthropic": ("overloaded_error", "rate_limit_error"),
    "openai": ("429", "APITimeoutError"),
    "gcp.gemini": ("RESOURCE_EXHAUSTED", "503"),
    "gcp.vertex_ai": ("RESOURCE_EXHAUSTED",),
    "aws.bedrock": ("ThrottlingException", "ModelTimeoutException"),
}
TOOL_ERRORS = ("TimeoutError", "HTTPError", "PermissionDenied")

CALL_FAILURE_RATE = 0.08
RESEND_RATE = 0.06
TOOL_FAILURE_RATE = 0.05
RUN_FAILURE_RATE = 0.04
OUTCOME_RATE = 0.75
STAGING_RATE = 0.1


# -- the traffic model: what a run looks like ----------------------------------------------


@dataclass
class PlannedSpan:
    """One span to emit: timing, attributes, status, events and children."""

    name: str
    kind: str
    """``server``, ``client`` or ``internal``."""
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    error_type: str = ""
    """Non-empty: the span failed (``error.type`` set, status ERROR)."""
    events: list[tuple[str, dict[str, AttributeValue], int]] = field(default_factory=list)
    children: list[PlannedSpan] = field(default_factory=list)

    def walk(self) -> Iterator[PlannedSpan]:
        """This span and every span below it, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class PlannedRun:
    """One trace: the root span tree plus the facts the summary reports."""

    service: str
    workflow: WorkflowSpec
    root: PlannedSpan
    outcome: tuple[str, float] | None = None
    """Outcome and score decided for the run (on its spans, or posted later with ``--api``)."""
    outcome_on_spans: bool = True
    run_id: str = ""
    """The trace id the SDK gave the run (hex), known once ``send`` has emitted it."""

    def spans(self) -> list[PlannedSpan]:
        """Every span of the run, parents first."""
        return list(self.root.walk())


class _Clock:
    """Lays spans out one after another inside a run."""

    def __init__(self, start_ns: int) -> None:
        self.now = start_ns

    def take(self, rng: random.Random, low_ms: float, high_ms: float) -> tuple[int, int]:
        start = self.now + int(rng.uniform(2, 25) * 1e6)  # a little scheduling gap between steps
        end = start + int(rng.uniform(low_ms, high_ms) * 1e6)
        self.now = end
        return start, end


def plan_runs(
    runs: int,
    days: float,
    *,
    seed: int | None = None,
    now_ns: int | None = None,
    api_outcome_share: float = 0.0,
) -> list[PlannedRun]:
    """``runs`` planned traces whose start times spread over the last ``days`` days.

    ``api_outcome_share`` of the runs given an outcome do not carry it on their spans: it
    is left for ``post_outcomes`` to send over the REST API later, as a review tool would.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    if days <= 0:
        raise ValueError("days must be positive")
    rng = random.Random(seed)
    now_ns = time.time_ns() if now_ns is None else now_ns
    weights = [w.weight for w in WORKFLOWS]
    plans = []
    for _ in range(runs):
        workflow = rng.choices(WORKFLOWS, weights)[0]
        # Spread over the range with a business-hours bias; the last hour is kept free so
        # every run has ended before "now".
        start = now_ns - _age_ns(rng, days, now_ns) - 3600 * SECOND_NS
        plan = _plan_run(rng, workflow, start, now_ns)
        # Drawn for every run, so the traffic does not depend on api_outcome_share.
        placement, as_event = rng.random(), rng.random() < 0.5
        if plan.outcome is not None:
            plan.outcome_on_spans = placement >= api_outcome_share
            if plan.outcome_on_spans:
                _attach_outcome(plan, as_event=as_event)
        plans.append(plan)
    plans.sort(key=lambda plan: plan.root.start_ns)
    return plans


def _age_ns(rng: random.Random, days: float, now_ns: int) -> int:
    total = max(days * DAY_NS - 3600 * SECOND_NS, 60 * SECOND_NS)
    while True:
        age = int(rng.random() * total)
        hour_of_day = ((now_ns - age) // (3600 * SECOND_NS)) % 24
        # Traffic peaks in (UTC) working hours but never stops.
        if rng.random() < (1.0 if 7 <= hour_of_day <= 19 else 0.35):
            return age


def _plan_run(rng: random.Random, workflow: WorkflowSpec, start_ns: int, now_ns: int) -> PlannedRun:
    tenant, customers = _tenant(rng)
    recent = now_ns - start_ns < DAY_NS
    prompt_version = rng.choice(workflow.prompt_versions)
    # A prompt change shipped yesterday doubled the support context: the "spend jump" to find.
    bloat = 1.0
    if workflow.type == "support_triage" and recent:
        prompt_version, bloat = "v5", 3.0
    workflow_id = f"wf-{rng.getrandbits(48):012x}"
    clock = _Clock(start_ns)
    route = f"/v1/{workflow.type.replace('_', '-')}"
    root = PlannedSpan(
        f"POST {route}",
        "server",
        start_ns,
        start_ns,
        {
            "workflow.id": workflow_id,
            "workflow.type": workflow.type,
            "tenant.id": tenant,
            "customer.id": rng.choice(customers),
            "feature.id": workflow.feature,
            "user.id": f"user-{rng.randint(1, 400):04d}",
            "prompt.version": prompt_version,
            "deployment.environment.name": "staging" if rng.random() < STAGING_RATE else "production",
            "http.request.method": "POST",
            "http.route": route,
        },
    )
    conversation = f"conv-{rng.getrandbits(40):010x}"
    failed = rng.random() < RUN_FAILURE_RATE
    if workflow.embedding_model:
        root.children.extend(_call(rng, MODELS[workflow.embedding_model], clock, conversation, 1.0, failures=0))
    for position, agent in enumerate(workflow.agents):
        last = position == len(workflow.agents) - 1
        root.children.append(_agent(rng, agent, clock, conversation, bloat, fail_final=failed and last))
    root.end_ns = clock.now + int(rng.uniform(5, 40) * 1e6)
    plan = PlannedRun(workflow.service, workflow, root)
    if failed:
        root.error_type = "WorkflowError"
    elif workflow.reviewed and rng.random() < OUTCOME_RATE:
        outcome, (low, high) = _weighted(rng, [(o, w) for o, w, _ in OUTCOMES], {o: r for o, _, r in OUTCOMES})
        plan.outcome = (outcome, round(rng.uniform(low, high), 2))
    return plan


def _attach_outcome(plan: PlannedRun, *, as_event: bool) -> None:
    """As attributes on the root span, or as a ``gen_ai.evaluation.result`` event on it."""
    assert plan.outcome is not None
    outcome, score = plan.outcome
    root = plan.root
    if not as_event:
        root.attributes["otelspend.outcome"] = outcome
        root.attributes["otelspend.outcome.score"] = score
    else:
        event: dict[str, AttributeValue] = {
            "gen_ai.evaluation.name": "human_review",
            "gen_ai.evaluation.score.label": outcome,
            "gen_ai.evaluation.score.value": score,
        }
        root.events.append(("gen_ai.evaluation.result", event, root.end_ns))


def _tenant(rng: random.Random) -> tuple[str, tuple[str, ...]]:
    tenant = rng.choices(TENANTS, [w for _, w, _ in TENANTS])[0]
    return tenant[0], tenant[2]


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]], extra: Mapping[str, Any]) -> tuple[str, Any]:
    name = rng.choices([c for c, _ in choices], [w for _, w in choices])[0]
    return name, extra[name]


def _agent(
    rng: random.Random, agent: AgentSpec, clock: _Clock, conversation: str, bloat: float, *, fail_final: bool
) -> PlannedSpan:
    model = MODELS[agent.model]
    start = clock.now
    span = PlannedSpan(
        f"invoke_agent {agent.name}",
        "internal",
        start,
        start,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent.name,
            "gen_ai.agent.id": f"agent-{agent.name}",
            "gen_ai.provider.name": model.provider,
            "gen_ai.request.model": model.request_model,
            "gen_ai.conversation.id": conversation,
        },
    )
    calls = rng.randint(*agent.calls)
    for step in range(calls):
        if agent.tools:
            span.children.extend(_tool(rng, rng.choice(agent.tools), clock))
        final = step == calls - 1
        failures = 3 if (final and fail_final) else _failures(rng)
        give_up = final and fail_final
        span.children.extend(_call(rng, model, clock, conversation, bloat, failures=failures, give_up=give_up))
    span.end_ns = clock.now + int(rng.uniform(1, 10) * 1e6)
    clock.now = span.end_ns
    if fail_final:
        span.error_type = "AgentError"
    return span


def _failures(rng: random.Random) -> int:
    """Failed attempts before a call succeeds: mostly none, sometimes one, rarely a retry loop."""
    roll = rng.random()
    if roll < 0.01:
        return 3
    if roll < CALL_FAILURE_RATE:
        return 1
    return 0


def _call(
    rng: random.Random,
    model: ModelSpec,
    clock: _Clock,
    conversation: str,
    bloat: float,
    *,
    failures: int,
    give_up: bool = False,
) -> list[PlannedSpan]:
    """One model call: ``failures`` failed attempts, then (unless ``give_up``) the successful one.

    The attempts are siblings under the same parent, as an application retrying its SDK
    call produces them; otelspend counts each failure followed by a success as a retry.
    """
    attempts: list[PlannedSpan] = []
    for _ in range(failures):
        start, end = clock.take(rng, 150, 2_500)
        error = rng.choice(CALL_ERRORS.get(model.provider, ("503",)))
        attempts.append(_call_span(model, start, end, conversation, {}, error=error))
    if not give_up:
        attempts.append(_successful_call(rng, model, clock, conversation, bloat))
    return attempts


def _successful_call(
    rng: random.Random, model: ModelSpec, clock: _Clock, conversation: str, bloat: float
) -> PlannedSpan:
    input_tokens = int(rng.randint(*model.input_tokens) * bloat)
    usage: dict[str, AttributeValue] = {"gen_ai.usage.input_tokens": input_tokens}
    output_tokens = 0
    if model.operation != "embeddings":
        output_tokens = rng.randint(*model.output_tokens)
        usage["gen_ai.usage.output_tokens"] = output_tokens
        if model.reasoning_share:
            usage["gen_ai.usage.reasoning.output_tokens"] = int(output_tokens * model.reasoning_share)
    if model.cache != "none" and rng.random() < 0.7:
        # Semconv: input_tokens includes cached reads and writes.
        cached = int(input_tokens * rng.uniform(0.4, 0.85))
        usage["gen_ai.usage.cache_read.input_tokens"] = cached
        if model.cache == "explicit" and rng.random() < 0.25:
            usage["gen_ai.usage.cache_write.input_tokens"] = int((input_tokens - cached) * rng.uniform(0.3, 0.9))
    latency_ms = 250 + output_tokens * model.ms_per_output_token * rng.uniform(0.7, 1.4) + input_tokens / 200
    start, end = clock.take(rng, latency_ms * 0.9, latency_ms * 1.1)
    if rng.random() < RESEND_RATE:
        usage["http.request.resend_count"] = rng.randint(1, 2)
    return _call_span(model, start, end, conversation, usage, response_id=f"resp_{rng.getrandbits(64):016x}")


def _call_span(
    model: ModelSpec,
    start: int,
    end: int,
    conversation: str,
    usage: Mapping[str, AttributeValue],
    *,
    error: str = "",
    response_id: str = "",
) -> PlannedSpan:
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": model.operation,
        "gen_ai.provider.name": model.provider,
        "gen_ai.request.model": model.request_model,
        "server.address": model.server,
        "server.port": 443,
    }
    if model.operation != "embeddings":
        attributes["gen_ai.conversation.id"] = conversation
        attributes["gen_ai.request.max_tokens"] = 4096
        attributes["gen_ai.request.temperature"] = 0.2
    if not error:
        attributes["gen_ai.response.model"] = model.response_model
        attributes["gen_ai.response.id"] = response_id
        if model.operation != "embeddings":
            attributes["gen_ai.response.finish_reasons"] = "stop"
    attributes.update(usage)
    return PlannedSpan(f"{model.operation} {model.request_model}", "client", start, end, attributes, error_type=error)


def _tool(rng: random.Random, name: str, clock: _Clock) -> list[PlannedSpan]:
    """A tool execution; a failed one is retried once by the agent."""
    spans = []
    failed = rng.random() < TOOL_FAILURE_RATE
    for attempt in range(2 if failed else 1):
        start, end = clock.take(rng, 40, 900)
        spans.append(
            PlannedSpan(
                f"execute_tool {name}",
                "internal",
                start,
                end,
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": name,
                    "gen_ai.tool.type": "function",
                    "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):012x}",
                },
                error_type=rng.choice(TOOL_ERRORS) if failed and attempt == 0 else "",
            )
        )
    return spans
