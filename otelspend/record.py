"""The canonical span record: one ordered list of columns shared by every stage.

A span travels as a plain ``list`` indexed by the positions below (``F.<name>``): the
normaliser fills the attribute-derived slots, the pricer the cost slots, the pipeline the
bookkeeping slots, and the writer transposes a batch of rows into Arrow columns once.
Lists indexed by constants are the cheapest record Python has on the hot path.

Money is carried as integer femto-USD (1e-15 USD) and stored as ``Decimal(38, 15)``, so
sums never drift and every figure reproduces from tokens x the rate card in force.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["str", "i8", "u8", "u32", "u64", "u64?", "f64?", "ts", "usd", "usd?", "map", "arr", "arr_u32"]

FEMTO_PER_USD = 10**15


@dataclass(frozen=True)
class Column:
    """One column of a stored record: its name, value kind (see ``Kind``) and meaning."""

    name: str
    kind: Kind
    doc: str


SPAN_COLUMNS: tuple[Column, ...] = (
    Column("trace_id", "str", "32 hex chars; the run id"),
    Column("span_id", "str", "16 hex chars"),
    Column("parent_span_id", "str", "16 hex chars, empty for a root span"),
    Column("name", "str", "span name (a template in some libraries: never used to classify)"),
    Column("kind", "str", "INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED"),
    Column("start_time", "ts", "start, ns since epoch UTC"),
    Column("end_time", "ts", "end, ns since epoch UTC"),
    Column("duration_ns", "u64", "end - start"),
    Column("status_code", "str", "UNSET | OK | ERROR"),
    Column("status_message", "str", "status description"),
    Column("service_name", "str", "resource service.name"),
    Column("scope_name", "str", "instrumentation scope (identifies the library)"),
    Column("scope_version", "str", "instrumentation scope version"),
    Column("resource_id", "u64", "key into the resources table (resource attributes stored once)"),
    Column("span_class", "str", "llm | tool | agent | workflow | retrieval | http | other (from attributes)"),
    Column("operation", "str", "gen_ai.operation.name or its equivalent"),
    Column("provider", "str", "semconv provider name (openai, anthropic, aws.bedrock, ...)"),
    Column("request_model", "str", "model asked for"),
    Column("response_model", "str", "model that answered"),
    Column("model", "str", "response model, else request model"),
    Column("input_tokens", "u64?", "input tokens INCLUDING cache reads and writes (normalised)"),
    Column("output_tokens", "u64?", "output tokens including reasoning"),
    Column("cache_read_tokens", "u64?", "input tokens read from the prompt cache"),
    Column("cache_write_tokens", "u64?", "input tokens written to the prompt cache"),
    Column("cache_write_1h_tokens", "u64?", "of cache_write_tokens, those with a 1 hour TTL"),
    Column("reasoning_tokens", "u64?", "output tokens spent reasoning"),
    Column("total_tokens", "u64?", "total as reported by the library (informational)"),
    Column("agent_name", "str", "gen_ai.agent.name or equivalent"),
    Column("agent_id", "str", "gen_ai.agent.id"),
    Column("tool_name", "str", "gen_ai.tool.name or equivalent"),
    Column("conversation_id", "str", "gen_ai.conversation.id / session.id"),
    Column("response_id", "str", "gen_ai.response.id (dedupes one call seen by several libraries)"),
    Column("error_type", "str", "error.type, else the exception event's type"),
    Column("resend_count", "u32", "http.request.resend_count"),
    Column("retry_count", "u32", "explicit retry attribute"),
    Column("http_method", "str", "set on HTTP client spans (per-attempt retries)"),
    Column("service_tier", "str", "provider service tier (selects priority/flex prices)"),
    Column("processing", "str", "pricing tier selector (e.g. batch)"),
    Column("gpu_count", "f64?", "GPUs serving a self-hosted call"),
    Column("compute_seconds", "f64?", "explicit GPU-seconds of a self-hosted call"),
    Column("reported_cost_usd", "usd?", "cost a library or gateway reported (a hint, never the ledger)"),
    Column("outcome", "str", "accepted | edited | rejected | escalated"),
    Column("outcome_score", "f64?", "evaluation score"),
    Column("outcome_label", "str", "evaluation label"),
    Column("outcome_time", "ts", "when the outcome was recorded (0 if none)"),
    Column("workflow_id", "str", "business key"),
    Column("workflow_type", "str", "business key"),
    Column("tenant", "str", "business key"),
    Column("customer", "str", "business key"),
    Column("feature", "str", "business key"),
    Column("user", "str", "business key"),
    Column("environment", "str", "business key (deployment.environment.name)"),
    Column("prompt_version", "str", "business key"),
    Column("payload_bytes", "u64", "bytes of prompt/completion content (content itself dropped by default)"),
    Column("ingest_token", "str", "name of the OTLP bearer token the span arrived with"),
    Column("token_note", "str", "how token counts were normalised, if they were"),
    Column("cost_usd", "usd?", "calculated cost, NULL when unpriced"),
    Column("cost_input_usd", "usd?", "uncached input tokens"),
    Column("cost_output_usd", "usd?", "output tokens other than separately priced reasoning"),
    Column("cost_cache_read_usd", "usd?", "cache-read tokens at the cache-read rate"),
    Column("cost_cache_write_usd", "usd?", "cache-write tokens at the cache-write rate(s)"),
    Column("cost_reasoning_usd", "usd?", "reasoning tokens where priced separately"),
    Column("cost_request_usd", "usd?", "per-request fees"),
    Column("cost_compute_usd", "usd?", "GPU-seconds of self-hosted models"),
    Column("price_source", "str", "genai-prices <version> or user:<file>"),
    Column("price_entry", "str", "provider/model id or user card entry id that priced it"),
    Column("price_effective_from", "str", "date the price in force became effective"),
    Column("unpriced_reason", "str", "why cost is NULL: no_usage, unknown_model, unknown_provider, ..."),
    Column("call_role", "str", "call | view | aggregate | tool | agent | other | charge (only call and charge count)"),
    Column("attributes", "map", "remaining attributes, values as strings"),
    Column("ingested_at", "ts", "when this node stored the span"),
    Column("ingest_node", "str", "which otelspend replica stored it"),
    Column("version", "u64", "row version (reprice and role updates insert a newer one)"),
    # issue 14: every cost signal priced
    Column("db_system", "str", "db.system.name / db.system: the database a span queried"),
    Column("db_operation", "str", "db.operation.name / db.operation"),
    Column("cost_kind", "str", "model | retrieval | tool | compute | request | ...: what its cost is; empty: none"),
)

NCOLS = len(SPAN_COLUMNS)
COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in SPAN_COLUMNS)
COLUMN_INDEX: Mapping[str, int] = {name: index for index, name in enumerate(COLUMN_NAMES)}
"""Column name -> position, for code that holds a column's name (``row[F.x]`` otherwise)."""

SpanRow = list[Any]
"""A span row: values in SPAN_COLUMNS order, read and written as ``row[F.<column>]``."""


@dataclass(frozen=True, slots=True)
class SpanFields:
    """Positions of the span row's columns, declared one by one so a type checker sees them.

    ``F`` below is the only instance: ``SpanFields(*range(NCOLS))``, so each field holds its
    column's position and the declaration order must be SPAN_COLUMNS order
    (``tests/unit/test_record.py`` checks name by name). A slot read is CPython's cheapest
    attribute access: ``row[F.x]`` costs less than it did with a SimpleNamespace
    (``bench/hotpath_bench.py``).
    """

    trace_id: int
    span_id: int
    parent_span_id: int
    name: int
    kind: int
    start_time: int
    end_time: int
    duration_ns: int
    status_code: int
    status_message: int
    service_name: int
    scope_name: int
    scope_version: int
    resource_id: int
    span_class: int
    operation: int
    provider: int
    request_model: int
    response_model: int
    model: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int
    total_tokens: int
    agent_name: int
    agent_id: int
    tool_name: int
    conversation_id: int
    response_id: int
    error_type: int
    resend_count: int
    retry_count: int
    http_method: int
    service_tier: int
    processing: int
    gpu_count: int
    compute_seconds: int
    reported_cost_usd: int
    outcome: int
    outcome_score: int
    outcome_label: int
    outcome_time: int
    workflow_id: int
    workflow_type: int
    tenant: int
    customer: int
    feature: int
    user: int
    environment: int
    prompt_version: int
    payload_bytes: int
    ingest_token: int
    token_note: int
    cost_usd: int
    cost_input_usd: int
    cost_output_usd: int
    cost_cache_read_usd: int
    cost_cache_write_usd: int
    cost_reasoning_usd: int
    cost_request_usd: int
    cost_compute_usd: int
    price_source: int
    price_entry: int
    price_effective_from: int
    unpriced_reason: int
    call_role: int
    attributes: int
    ingested_at: int
    ingest_node: int
    version: int
    db_system: int
    db_operation: int
    cost_kind: int


F = SpanFields(*range(NCOLS))
"""Column positions: ``row[F.input_tokens]``."""

COST_COLUMNS: tuple[str, ...] = tuple(c.name for c in SPAN_COLUMNS if c.name.startswith("cost_"))

_EMPTY_BY_KIND: dict[str, object] = {
    "str": "",
    "u8": 0,
    "u32": 0,
    "u64": 0,
    "u64?": None,
    "f64?": None,
    "ts": 0,
    "usd?": None,
    "map": None,
}
ROW_TEMPLATE: list[object] = [_EMPTY_BY_KIND[column.kind] for column in SPAN_COLUMNS]
"""A new span row: ``ROW_TEMPLATE.copy()``."""


BUSINESS_KEYS: tuple[str, ...] = (
    "workflow_id",
    "workflow_type",
    "tenant",
    "customer",
    "feature",
    "user",
    "environment",
    "prompt_version",
)
"""Business context columns a run takes from its root (else earliest) span."""

# -- the compact span the stitcher keeps (a tuple, fields below) ---------------------------

LITE_FIELDS: tuple[str, ...] = (
    "trace_id", "span_id", "parent_span_id", "name", "start_time", "end_time", "duration_ns",
    "status_code", "status_message", "service_name", "span_class", "operation", "provider", "model",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "agent_name", "tool_name", "response_id", "error_type", "resend_count", "retry_count",
    "http_method", "reported_cost_usd", "outcome", "outcome_score", "outcome_label", "outcome_time",
    "workflow_id", "workflow_type", "tenant", "customer", "feature", "user", "environment",
    "prompt_version", "payload_bytes", "ingest_token", "cost_usd", "unpriced_reason", "call_role",
    "version", "resource_id", "attributes", "scope_name",
    "cost_kind", "compute_seconds", "gpu_count",  # issue 14
)  # fmt: skip


LiteSpan = tuple[Any, ...]
"""The stitcher's compact span: values in LITE_FIELDS order, read as ``span[L.<field>]``."""


@dataclass(frozen=True, slots=True)
class LiteFields:
    """Positions of the compact span's fields (``span[L.cost_usd]``), declared like :class:`SpanFields`.

    ``L`` is ``LiteFields(*range(len(LITE_FIELDS)))``; the declaration order must be
    LITE_FIELDS order (``tests/unit/test_record.py``).
    """

    trace_id: int
    span_id: int
    parent_span_id: int
    name: int
    start_time: int
    end_time: int
    duration_ns: int
    status_code: int
    status_message: int
    service_name: int
    span_class: int
    operation: int
    provider: int
    model: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    agent_name: int
    tool_name: int
    response_id: int
    error_type: int
    resend_count: int
    retry_count: int
    http_method: int
    reported_cost_usd: int
    outcome: int
    outcome_score: int
    outcome_label: int
    outcome_time: int
    workflow_id: int
    workflow_type: int
    tenant: int
    customer: int
    feature: int
    user: int
    environment: int
    prompt_version: int
    payload_bytes: int
    ingest_token: int
    cost_usd: int
    unpriced_reason: int
    call_role: int
    version: int
    resource_id: int
    attributes: int
    scope_name: int
    cost_kind: int
    compute_seconds: int
    gpu_count: int


L = LiteFields(*range(len(LITE_FIELDS)))
"""Compact span positions: ``span[L.cost_usd]``."""

lite_from_row: Callable[[Sequence[Any]], LiteSpan] = operator.itemgetter(*(COLUMN_INDEX[name] for name in LITE_FIELDS))
"""Span row -> compact tuple (C speed)."""


@dataclass(frozen=True)
class ApiOutcome:
    """An outcome posted over the API for a run (or every run of a workflow)."""

    outcome: str
    score: float | None
    label: str
    recorded_ns: int


# -- run-level records (written by the stitcher, read by the rollup materialized views) ----

RUN_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "str", "= trace id"),
    Column("version", "u64", "emission version; a re-emission cancels the previous version"),
    Column("sign", "i8", "+1 current row, -1 cancels a previous emission"),
    Column("start_time", "ts", "earliest span start"),
    Column("end_time", "ts", "latest span end"),
    Column("duration_ms", "u64", "root span duration, else end - start"),
    Column("complete", "u8", "1 when the root span arrived"),
    Column("status", "str", "success | error | unknown"),
    Column("status_message", "str", "root status message"),
    Column("root_span_id", "str", ""),
    Column("root_name", "str", ""),
    Column("service", "str", "root span's service.name"),
    Column("workflow_id", "str", ""),
    Column("workflow_type", "str", ""),
    Column("tenant", "str", ""),
    Column("customer", "str", ""),
    Column("feature", "str", ""),
    Column("user", "str", ""),
    Column("environment", "str", ""),
    Column("prompt_version", "str", ""),
    Column("team", "str", ""),
    Column("cost_center", "str", ""),
    Column("product", "str", ""),
    Column("owner", "str", ""),
    Column("ingest_token", "str", ""),
    Column("outcome", "str", ""),
    Column("outcome_score", "f64?", ""),
    Column("outcome_label", "str", ""),
    Column("outcome_source", "str", "span | event | api"),
    Column("spans", "u32", ""),
    Column("llm_calls", "u32", "provider calls, each counted once"),
    Column("duplicate_views", "u32", "spans that re-report a counted call (not counted)"),
    Column("tool_calls", "u32", ""),
    Column("tool_failures", "u32", ""),
    Column("agent_invocations", "u32", ""),
    Column("errors", "u32", "spans with status ERROR"),
    Column("retries", "u32", ""),
    Column("retry_loop", "u8", ""),
    Column("input_tokens", "u64", ""),
    Column("output_tokens", "u64", ""),
    Column("cache_read_tokens", "u64", ""),
    Column("cache_write_tokens", "u64", ""),
    Column("reasoning_tokens", "u64", ""),
    Column("payload_bytes", "u64", ""),
    Column("cost_usd", "usd?", "sum of priced calls; NULL when calls exist and none could be priced"),
    Column("reported_cost_usd", "usd?", "sum of library-reported costs, NULL if none"),
    Column("priced_calls", "u32", ""),
    Column("unpriced_calls", "u32", ""),
    Column("models", "arr", ""),
    Column("providers", "arr", ""),
    Column("agents", "arr", ""),
    Column("tools", "arr", ""),
    Column("written_at", "ts", ""),
    Column("node", "str", ""),
    # issue 14: allocation signals
    Column("charges", "u32", "priced non-model spans (retrieval, tool fees, compute, request fees), each counted once"),
    Column("retrieval_queries", "u32", "retrieval and vector-database queries, nested ones counted once"),
    Column("gpu_us", "u64", "GPU-microseconds the run's spans report (explicit, or duration x GPUs)"),
)

CALL_DIMENSIONS: tuple[str, ...] = ("model", "provider", "agent", "tool", "operation", "payload_band")
"""Call-level dimensions of the run breakdown; run_mask has one bit per subset of them."""

RUN_CALL_COLUMNS: tuple[Column, ...] = (
    Column("run_id", "str", ""),
    Column("version", "u64", ""),
    Column("sign", "i8", ""),
    Column("start_time", "ts", "the run's start (rollups bucket runs, not calls)"),
    *(Column(name, "str", "") for name in CALL_DIMENSIONS),
    Column("workflow_id", "str", ""),
    Column("workflow_type", "str", ""),
    Column("service", "str", ""),
    Column("environment", "str", ""),
    Column("tenant", "str", ""),
    Column("customer", "str", ""),
    Column("feature", "str", ""),
    Column("user", "str", ""),
    Column("prompt_version", "str", ""),
    Column("team", "str", ""),
    Column("cost_center", "str", ""),
    Column("product", "str", ""),
    Column("owner", "str", ""),
    Column("status", "str", ""),
    Column("outcome", "str", ""),
    Column("run_mask", "u64", ""),
    Column("successful", "u8", ""),
    Column("accepted", "u8", ""),
    Column("calls", "u32", ""),
    Column("errors", "u32", ""),
    Column("retries", "u32", ""),
    Column("tool_calls", "u32", ""),
    Column("tool_failures", "u32", ""),
    Column("unpriced_calls", "u32", ""),
    Column("input_tokens", "u64", ""),
    Column("output_tokens", "u64", ""),
    Column("cache_read_tokens", "u64", ""),
    Column("cache_write_tokens", "u64", ""),
    Column("reasoning_tokens", "u64", ""),
    Column("payload_bytes", "u64", ""),
    Column("cost_usd", "usd", ""),
    Column("reported_cost_usd", "usd", ""),
    Column("latencies_ms", "arr_u32", "duration of each call / tool execution / priced charge in the row"),
    Column("written_at", "ts", ""),
    Column("node", "str", ""),
    Column("cost_kind", "str", "what the row's cost is: model, retrieval, tool, compute, request, ... (issue 14)"),
)
