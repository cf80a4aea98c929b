"""What ``compute_run`` returns: a run record, its breakdown records and the spans' roles.

The records are immutable and typed, one field per stored column in the table's order
(``RUN_COLUMNS``, ``RUN_CALL_COLUMNS``; ``tests/unit/test_run_records.py`` checks name by
name), so ``list(record)`` *is* the row the emitter writes. They are ``NamedTuple``s rather
than frozen dataclasses because a run makes one run record and a few breakdown records on
the ingest hot path: a frozen dataclass of 54 fields takes about twice as long to build
(every field goes through ``object.__setattr__``), and a tuple needs no conversion to a row.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class SpanRole(StrEnum):
    """How a span counts in its run (stored in ``spans.call_role``)."""

    CALL = "call"
    """A provider call, counted once."""
    VIEW = "view"
    """Another span of a call already counted (an instrumentor's wrapper, a second library)."""
    AGGREGATE = "aggregate"
    """Usage on an agent / workflow span above counted calls: a run total, not a call."""
    TOOL = "tool"
    AGENT = "agent"
    OTHER = "other"
    CHARGE = "charge"
    """A span other than a model call priced by a rate-card entry matched on its attributes
    (retrieval, tool fee, compute, request fee), counted once (issue 14)."""


class RunStatus(StrEnum):
    """A run's status, from its root span."""

    SUCCESS = "success"
    ERROR = "error"
    UNKNOWN = "unknown"
    """No root span (yet)."""


class OutcomeSource(StrEnum):
    """Where a run's outcome came from (the latest wins)."""

    NONE = ""
    SPAN = "span"
    API = "api"


class RunRecord(NamedTuple):
    """One ``runs`` row (RUN_COLUMNS order; see ``otelspend.record`` for each column's meaning).

    ``version``, ``sign``, ``written_at`` and ``node`` are the emitter's bookkeeping:
    ``compute_run`` leaves them at 0, +1, 0 and "" and the emitter sets them in the row it writes.
    """

    run_id: str
    version: int
    sign: int
    start_time: int
    end_time: int
    duration_ms: int
    complete: int
    status: RunStatus
    status_message: str
    root_span_id: str
    root_name: str
    service: str
    workflow_id: str
    workflow_type: str
    tenant: str
    customer: str
    feature: str
    user: str
    environment: str
    prompt_version: str
    team: str
    cost_center: str
    product: str
    owner: str
    ingest_token: str
    outcome: str
    outcome_score: float | None
    outcome_label: str
    outcome_source: OutcomeSource
    spans: int
    llm_calls: int
    duplicate_views: int
    tool_calls: int
    tool_failures: int
    agent_invocations: int
    errors: int
    retries: int
    retry_loop: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    payload_bytes: int
    cost_usd: int | None
    """femto-USD; None when the run has calls and none of them could be priced."""
    reported_cost_usd: int | None
    priced_calls: int
    unpriced_calls: int
    models: tuple[str, ...]
    providers: tuple[str, ...]
    agents: tuple[str, ...]
    tools: tuple[str, ...]
    written_at: int
    node: str
    charges: int
    """Priced non-model spans, each counted once (issue 14)."""
    retrieval_queries: int
    gpu_us: int


class BreakdownRecord(NamedTuple):
    """One ``run_calls`` row: the run's calls and tool executions sharing one value of every
    call dimension (RUN_CALL_COLUMNS order), with the run's attribution copied on."""

    run_id: str
    version: int
    sign: int
    start_time: int
    model: str
    provider: str
    agent: str
    tool: str
    operation: str
    payload_band: str
    workflow_id: str
    workflow_type: str
    service: str
    environment: str
    tenant: str
    customer: str
    feature: str
    user: str
    prompt_version: str
    team: str
    cost_center: str
    product: str
    owner: str
    status: RunStatus
    outcome: str
    run_mask: int
    """Bit s: the run's first row for the call-dimension subset s (exact distinct-run counts)."""
    successful: int
    accepted: int
    calls: int
    errors: int
    retries: int
    tool_calls: int
    tool_failures: int
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    payload_bytes: int
    cost_usd: int
    reported_cost_usd: int
    latencies_ms: tuple[int, ...]
    written_at: int
    node: str
    cost_kind: str
    """What the row's cost is: model, retrieval, tool, compute, request, ... (issue 14)."""
