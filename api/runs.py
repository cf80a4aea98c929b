"""Runs: the filtered, sorted, paginated list and one run in full (breakdown, span tree).

The SQL is in ``otelspend.clickhouse.queries`` (``runs``, ``spans``, ``outcomes``), with the
rule for the rows in force of ``runs`` and ``run_calls`` (``runs.in_force`` in SQL,
``runs.current`` over fetched rows); this module checks the request and shapes the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from otelspend.api.errors import QueryError
from otelspend.api.query import usd
from otelspend.api.reconciliation import run_billing
from otelspend.api.vocabulary import Filters
from otelspend.api.window import Window, rfc3339
from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import outcomes as outcome_queries
from otelspend.clickhouse.queries import runs as run_queries
from otelspend.clickhouse.queries import spans as span_queries
from otelspend.clickhouse.queries.runs import current
from otelspend.enrich.signals import COUNTED_ROLES

RunOrder = Literal["cost_usd", "duration_ms", "retries", "calls", "start_time"]
RUN_ORDER_COLUMNS: dict[str, str] = {
    "cost_usd": "cost_usd",
    "duration_ms": "duration_ms",
    "retries": "retries",
    "calls": "llm_calls",
    "start_time": "start_time",
}
MAX_PAGE = 1_000
MAX_OFFSET = 100_000

_RUN_FIELDS = (
    "run_id", "start_time", "end_time", "duration_ms", "complete", "status", "status_message", "root_name",
    "service", "workflow_id", "workflow_type", "tenant", "customer", "feature", "user", "environment",
    "prompt_version", "team", "cost_center", "product", "owner", "outcome", "outcome_score", "outcome_label",
    "outcome_source", "spans", "llm_calls", "duplicate_views", "tool_calls", "tool_failures", "agent_invocations",
    "errors", "retries", "retry_loop", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "payload_bytes", "cost_usd", "reported_cost_usd", "priced_calls", "unpriced_calls",
    "models", "providers", "agents", "tools", "charges", "retrieval_queries", "gpu_us",
)  # fmt: skip
_CALL_FIELDS = (
    "model", "provider", "agent", "tool", "operation", "payload_band", "calls", "errors", "retries", "tool_calls",
    "tool_failures", "unpriced_calls", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "reasoning_tokens", "payload_bytes", "cost_usd", "reported_cost_usd", "latencies_ms", "cost_kind",
)  # fmt: skip
_SPAN_FIELDS = (
    "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "duration_ns", "status_code",
    "status_message", "service_name", "scope_name", "span_class", "call_role", "operation", "provider",
    "request_model", "response_model", "model", "agent_name", "tool_name", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens", "resend_count",
    "retry_count", "error_type", "payload_bytes", "reported_cost_usd", "cost_usd", "cost_input_usd",
    "cost_output_usd", "cost_cache_read_usd", "cost_cache_write_usd", "cost_reasoning_usd", "cost_request_usd",
    "cost_compute_usd", "price_source", "price_entry", "price_effective_from", "unpriced_reason", "outcome",
    "outcome_score", "outcome_label", "cost_kind", "db_system", "db_operation",
)  # fmt: skip
_TIME_FIELDS = {"start_time", "end_time"}


@dataclass(frozen=True)
class RunsRequest:
    """``GET /v1/runs``: runs that started in the window, filtered, sorted, one page."""

    window: Window
    filters: Filters = ()
    order_by: RunOrder = "cost_usd"
    descending: bool = True
    limit: int = 50
    offset: int = 0


def _json(name: str, value: Any) -> Any:
    if name in _TIME_FIELDS:
        return rfc3339(int(value)) if value else None
    if isinstance(value, Decimal):
        return usd(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _record(fields: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    record = {name: _json(name, value) for name, value in zip(fields, row, strict=True)}
    if "llm_calls" in record:
        record["calls"] = record.pop("llm_calls")
    return record


def list_runs(store: Store, request: RunsRequest) -> dict[str, Any]:
    """One page of runs: ``{"from", "to", "order_by", "order", "limit", "offset", "next_offset", "runs"}``."""
    if not 1 <= request.limit <= MAX_PAGE:
        raise QueryError("limit", f"{request.limit} is out of range: give 1..{MAX_PAGE}")
    if not 0 <= request.offset <= MAX_OFFSET:
        raise QueryError("offset", f"{request.offset} is out of range: give 0..{MAX_OFFSET}")
    if request.order_by not in RUN_ORDER_COLUMNS:
        raise QueryError("order_by", f"unknown order {request.order_by!r}", RUN_ORDER_COLUMNS)
    # The page's run ids first (few columns, collapsed by run_id: the latest version is the
    # one in force), one extra to tell whether another page follows; then their records.
    page = store.rows(
        *run_queries.page(
            store.database,
            request.window.start_ns,
            request.window.end_ns,
            request.filters,
            order_column=RUN_ORDER_COLUMNS[request.order_by],
            descending=request.descending,
            limit=request.limit + 1,
            offset=request.offset,
        )
    )
    more = len(page) > request.limit
    ids = [row[0] for row in page[: request.limit]]
    records = {record["run_id"]: record for record in _runs(store, ids)}
    return {
        **request.window.describe(),
        "filters": {name: list(values) for name, values in request.filters},
        "order_by": request.order_by,
        "order": "desc" if request.descending else "asc",
        "limit": request.limit,
        "offset": request.offset,
        "next_offset": request.offset + request.limit if more else None,
        "runs": [records[run_id] for run_id in ids if run_id in records],
    }


def _runs(store: Store, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Current run records of these ids (any order)."""
    if not run_ids:
        return []
    rows = store.rows(*run_queries.records(store.database, _RUN_FIELDS, run_ids))
    sign = len(_RUN_FIELDS) + 1
    latest: dict[str, tuple[Any, ...]] = {}
    for row in current(rows, sign):
        known = latest.get(row[0])
        if known is None or row[-1] > known[-1]:
            latest[row[0]] = row
    return [_record(_RUN_FIELDS, row[:-1]) for row in latest.values()]


def get_run(store: Store, run_id: str, *, attributes: bool = False) -> dict[str, Any] | None:
    """A run in full: the run record, its breakdown, its span tree with per-span cost, its
    API outcome history. None when neither a run nor a span has this id."""
    db = store.database
    runs = _runs(store, [run_id])
    span_fields = (*_SPAN_FIELDS, "attributes") if attributes else _SPAN_FIELDS
    spans = store.rows(*span_queries.of_trace(db, span_fields, run_id))
    if not runs and not spans:
        return None
    run = runs[0] if runs else None
    breakdown = current(store.rows(*run_queries.breakdown(db, _CALL_FIELDS, run_id)), len(_CALL_FIELDS) + 1)
    breakdown.sort(key=lambda row: (-row[_CALL_FIELDS.index("cost_usd")], row[:6]))
    workflow_id = run["workflow_id"] if run else ""
    outcomes = store.rows(*outcome_queries.history(db, run_id, workflow_id))
    return {
        "run": run,
        "breakdown": [_record(_CALL_FIELDS, row[:-1]) for row in breakdown],
        "spans": span_tree([_span(span_fields, row) for row in spans]),
        "outcomes": [
            {
                "run_id": r or None,
                "workflow_id": w or None,
                "outcome": o,
                "score": s,
                "label": label,
                "source": source,
                "recorded_at": rfc3339(int(at)),
                "note": note,
            }
            for r, w, o, s, label, source, at, note in outcomes
        ],
        "billed": run_billing(store, run_id),
    }


def _span(fields: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    span = _record(fields, row)
    span["duration_ms"] = span.pop("duration_ns") / 1e6
    if "attributes" in span:
        span["attributes"] = dict(span["attributes"] or {})
    return span


def span_tree(spans: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Nest spans under their parents (orphans become roots), children by start time.

    Each node gets ``children`` and ``subtree_cost_usd``: the cost of the counted calls and
    charges (``call_role`` ``call`` or ``charge``) in its subtree, itself included, so the tree
    sums to the run's cost.
    """
    nodes = {span["span_id"]: {**span, "children": []} for span in spans}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node["parent_span_id"])
        if parent is not None and parent is not node:
            parent["children"].append(node)
        else:
            roots.append(node)
    visited: set[str] = set()
    for root in roots:
        _sum_subtree(root, visited)
    # Spans in a parent cycle (bad data) are reachable from no root: break the cycle at
    # the first one found and show it as a root, so no span is ever dropped.
    for node in nodes.values():
        if node["span_id"] not in visited:
            nodes[node["parent_span_id"]]["children"].remove(node)
            roots.append(node)
            _sum_subtree(node, visited)
    return roots


def _sum_subtree(root: dict[str, Any], visited: set[str]) -> None:
    """Post-order, iterative (deep agent trees must not hit the recursion limit)."""
    stack: list[tuple[dict[str, Any], bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            own = Decimal(node["cost_usd"]) if node["cost_usd"] and node["call_role"] in COUNTED_ROLES else Decimal(0)
            total = own + sum((Decimal(c["subtree_cost_usd"]) for c in node["children"]), Decimal(0))
            node["subtree_cost_usd"] = usd(total)
            continue
        visited.add(node["span_id"])
        stack.append((node, True))
        stack.extend((child, False) for child in node["children"] if child["span_id"] not in visited)


__all__ = ["MAX_OFFSET", "MAX_PAGE", "RUN_ORDER_COLUMNS", "RunsRequest", "current", "get_run", "list_runs", "span_tree"]
