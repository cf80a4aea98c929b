"""Every rollup metric computed directly from ``spans FINAL`` (plus API ``outcomes``) with
plain SQL: no runs table, no breakdown, no rollup. The API must agree with it exactly.

Facts, from the stored spans:

* a run is a trace; it starts at its earliest span; its root span (no parent) gives its
  status, duration and attribution;
* its outcome is the latest of span-borne outcomes and API outcomes (by time);
* counted calls are ``call_role = 'call'``; tool executions are ``span_class = 'tool'``;
  a call's agent is the nearest ``agent_name`` on it or its ancestors (2 levels here);
* at call level every counted call and tool execution is a row of its run; a run with
  neither still counts once with empty call dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

CALL_LEVEL = {"model", "provider", "agent", "tool", "operation", "payload_band"}

_FACTS = """
WITH
spans_f AS (SELECT * FROM {db}.spans FINAL),
roots AS (
    SELECT trace_id AS run_id, intDiv(duration_ns, 1000000) AS duration_ms,
           if(status_code = 'ERROR', 'error', 'success') AS status, workflow_id, workflow_type, tenant, customer,
           feature, user, environment, prompt_version, service_name AS service
    FROM spans_f WHERE parent_span_id = ''
),
starts AS (SELECT trace_id AS run_id, min(start_time) AS run_start FROM spans_f GROUP BY trace_id),
outcome_events AS (
    SELECT trace_id AS run_id, outcome, outcome_time AS at, 0 AS api FROM spans_f WHERE outcome != ''
    UNION ALL
    SELECT run_id, outcome, recorded_at, 1 FROM {db}.outcomes WHERE run_id != ''
    UNION ALL
    SELECT r.run_id, o.outcome, o.recorded_at, 1
    FROM {db}.outcomes AS o INNER JOIN roots AS r ON o.workflow_id = r.workflow_id
    WHERE o.run_id = '' AND r.workflow_id != ''
),
outcomes_now AS (SELECT run_id, argMax(outcome, (at, api)) AS outcome FROM outcome_events GROUP BY run_id),
runs_f AS (
    SELECT r.*, s.run_start, ifNull(o.outcome, '') AS outcome
    FROM roots AS r INNER JOIN starts AS s ON s.run_id = r.run_id
    LEFT JOIN outcomes_now AS o ON o.run_id = r.run_id
),
members AS (
    SELECT c.trace_id AS run_id,
        c.call_role = 'call' AS is_call,
        c.span_class = 'tool' AS is_tool,
        if(is_call, c.model, '') AS model,
        if(is_call, c.provider, '') AS provider,
        multiIf(c.agent_name != '', c.agent_name, p.agent_name != '', p.agent_name, g.agent_name) AS agent,
        if(is_tool, c.tool_name, '') AS tool,
        if(is_tool AND c.operation = '', 'execute_tool', c.operation) AS operation,
        multiIf(is_tool, '', c.input_tokens IS NULL, 'none', c.input_tokens < 1000, '<1k',
                c.input_tokens < 4000, '1k-4k', c.input_tokens < 16000, '4k-16k', c.input_tokens < 64000, '16k-64k',
                c.input_tokens < 128000, '64k-128k', '128k+') AS payload_band,
        if(is_call, ifNull(c.cost_usd, toDecimal128(0, 15)), toDecimal128(0, 15)) AS cost,
        if(is_call, ifNull(c.reported_cost_usd, toDecimal128(0, 15)), toDecimal128(0, 15)) AS reported,
        if(is_call, ifNull(c.input_tokens, 0), 0) AS input_tokens,
        if(is_call, ifNull(c.output_tokens, 0), 0) AS output_tokens,
        if(is_call, ifNull(c.cache_read_tokens, 0), 0) AS cache_read_tokens,
        if(is_call, ifNull(c.cache_write_tokens, 0), 0) AS cache_write_tokens,
        if(is_call, ifNull(c.reasoning_tokens, 0), 0) AS reasoning_tokens,
        if(is_call, greatest(c.resend_count, c.retry_count), 0) AS retries,
        is_call AND c.cost_usd IS NULL AND NOT (c.unpriced_reason IN ('no_usage', '') AND c.status_code = 'ERROR')
            AS unpriced,
        is_tool AND c.status_code = 'ERROR' AS tool_failed,
        intDiv(c.duration_ns, 1000000) AS latency_ms,
        1 AS is_member
    FROM spans_f AS c
    LEFT JOIN spans_f AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    LEFT JOIN spans_f AS g ON g.trace_id = p.trace_id AND g.span_id = p.parent_span_id
    WHERE c.call_role = 'call' OR c.span_class = 'tool'
)
"""

_RUN_LEVEL = """
, per_run AS (
    SELECT run_id, countIf(is_call) AS calls, sum(cost) AS cost, sum(reported) AS reported,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
        sum(reasoning_tokens) AS reasoning_tokens, sum(retries) AS retries, countIf(unpriced) AS unpriced,
        countIf(is_tool) AS tool_calls, countIf(tool_failed) AS tool_failures
    FROM members GROUP BY run_id
)
SELECT {dims} count() AS runs, countIf(status = 'success') AS ok, countIf(outcome = 'accepted') AS accepted,
    countIf(outcome != '') AS rated, sum(ifNull(m.calls, 0)) AS calls,
    CAST(sum(ifNull(m.cost, toDecimal128(0, 15))) AS Decimal(38, 15)) AS cost,
    CAST(sum(ifNull(m.reported, toDecimal128(0, 15))) AS Decimal(38, 15)) AS reported,
    sum(ifNull(m.input_tokens, 0)) AS input_tokens, sum(ifNull(m.output_tokens, 0)) AS output_tokens,
    sum(ifNull(m.cache_read_tokens, 0)) AS cache_read_tokens,
    sum(ifNull(m.cache_write_tokens, 0)) AS cache_write_tokens,
    sum(ifNull(m.reasoning_tokens, 0)) AS reasoning_tokens, sum(ifNull(m.retries, 0)) AS retries,
    sum(ifNull(m.unpriced, 0)) AS unpriced, sum(ifNull(m.tool_calls, 0)) AS tool_calls,
    sum(ifNull(m.tool_failures, 0)) AS tool_failures,
    sum(r.duration_ms) AS latency_sum, count() AS latency_n,
    quantilesExactWeighted(0.5, 0.95)(r.duration_ms, 1) AS q,
    uniqExactIf(r.workflow_type, r.workflow_type != '') AS workflows
FROM runs_f AS r LEFT JOIN per_run AS m ON m.run_id = r.run_id
WHERE r.run_start >= fromUnixTimestamp64Nano({{a:Int64}}) AND r.run_start < fromUnixTimestamp64Nano({{b:Int64}}) {where}
GROUP BY {group}
"""

_CALL_LEVEL = """
, rows AS (
    SELECT * FROM members
    UNION ALL
    SELECT r.run_id, 0, 0, '', '', '', '', '', '', toDecimal128(0, 15), toDecimal128(0, 15), 0, 0, 0, 0, 0, 0, 0, 0,
           0, 0 AS is_member
    FROM runs_f AS r WHERE r.run_id NOT IN (SELECT run_id FROM members)
)
SELECT {dims} uniqExact(r.run_id) AS runs, uniqExactIf(r.run_id, r.status = 'success') AS ok,
    uniqExactIf(r.run_id, r.outcome = 'accepted') AS accepted, uniqExactIf(r.run_id, r.outcome != '') AS rated,
    countIf(c.is_call) AS calls, CAST(sum(c.cost) AS Decimal(38, 15)) AS cost,
    CAST(sum(c.reported) AS Decimal(38, 15)) AS reported, sum(c.input_tokens) AS input_tokens,
    sum(c.output_tokens) AS output_tokens, sum(c.cache_read_tokens) AS cache_read_tokens,
    sum(c.cache_write_tokens) AS cache_write_tokens, sum(c.reasoning_tokens) AS reasoning_tokens,
    sum(c.retries) AS retries, countIf(c.unpriced) AS unpriced, countIf(c.is_tool) AS tool_calls,
    countIf(c.tool_failed) AS tool_failures,
    sumIf(c.latency_ms, c.is_member = 1) AS latency_sum, countIf(c.is_member = 1) AS latency_n,
    quantilesExactWeightedIf(0.5, 0.95)(c.latency_ms, 1, c.is_member = 1) AS q,
    uniqExactIf(r.workflow_type, r.workflow_type != '') AS workflows
FROM rows AS c INNER JOIN runs_f AS r ON r.run_id = c.run_id
WHERE r.run_start >= fromUnixTimestamp64Nano({{a:Int64}}) AND r.run_start < fromUnixTimestamp64Nano({{b:Int64}}) {where}
GROUP BY {group}
"""

_FIELDS = (
    "runs", "ok", "accepted", "rated", "calls", "cost", "reported", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "retries", "unpriced", "tool_calls",
    "tool_failures", "latency_sum", "latency_n", "q", "workflows",
)  # fmt: skip


def _column(name: str, call_level: bool) -> str:
    return f"c.{name}" if name in CALL_LEVEL else f"r.{name}"


def expected_rows(
    store: Any, group_by: Sequence[str], filters: dict[str, list[str]], start_ns: int, end_ns: int
) -> dict[tuple[str, ...], dict[str, Any]]:
    """Group key -> every metric (API formats: money as 15-decimal strings)."""
    call_level = bool((set(group_by) | set(filters)) & CALL_LEVEL)
    params: dict[str, Any] = {"a": start_ns, "b": end_ns}
    where = ""
    for index, (name, values) in enumerate(sorted(filters.items())):
        params[f"f{index}"] = values
        where += f" AND {_column(name, call_level)} IN {{f{index}:Array(String)}}"
    dims = "".join(f"{_column(name, call_level)} AS d{i}, " for i, name in enumerate(group_by))
    group = ", ".join(f"d{i}" for i in range(len(group_by))) or "tuple()"
    body = (_CALL_LEVEL if call_level else _RUN_LEVEL).format(dims=dims, where=where, group=group)
    sql = (_FACTS + body).replace("{db}", store.database)
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in store.rows(sql, params):
        key = tuple(row[: len(group_by)])
        values = dict(zip(_FIELDS, row[len(group_by) :], strict=True))
        if values["runs"] == 0:
            continue
        out[key] = metrics(values, call_level)
    return out


def _usd(value: Decimal) -> str:
    return f"{Decimal(value).quantize(Decimal('1e-15')):f}"


def _per(value: Decimal, count: int) -> str | None:
    """Money per count, truncated to 1e-15 USD (ClickHouse Decimal division)."""
    if count <= 0:
        return None
    femto = int(Decimal(value) * 10**15)
    quotient = abs(femto) // count * (1 if femto >= 0 else -1)
    return _usd(Decimal(quotient) / 10**15)


def _ratio(a: float, b: float) -> float | None:
    return None if b <= 0 else a / b


def metrics(v: dict[str, Any], call_level: bool = False) -> dict[str, Any]:
    """The API's metric definitions over the plain aggregates (this ledger has no cost pools and no
    revenue: nothing allocated, and allocations are not kept per call, so null at call level)."""
    has_latency = v["latency_n"] > 0
    return {
        "direct_cost_usd": _usd(v["cost"]),
        "allocated_cost_usd": None if call_level else _usd(Decimal(0)),
        "loaded_cost_usd": None if call_level else _usd(v["cost"]),
        "loaded_cost_per_success_usd": None if call_level else _per(v["cost"], v["ok"]),
        "revenue_usd": None,
        "margin_usd": None,
        "margin_pct": None,
        "cost_usd": _usd(v["cost"]),
        "reported_cost_usd": _usd(v["reported"]),
        "runs": v["runs"],
        "calls": v["calls"],
        "successful_runs": v["ok"],
        "success_rate": _ratio(v["ok"], v["runs"]),
        "cost_per_success_usd": _per(v["cost"], v["ok"]),
        "accepted_runs": v["accepted"],
        "cost_per_accepted_usd": _per(v["cost"], v["accepted"]),
        "rated_runs": v["rated"],
        "acceptance_rate": _ratio(v["accepted"], v["rated"]),
        "latency_avg_ms": _ratio(v["latency_sum"], v["latency_n"]),
        "latency_p50_ms": int(v["q"][0]) if has_latency else None,
        "latency_p95_ms": int(v["q"][1]) if has_latency else None,
        "retries": v["retries"],
        "retry_rate": _ratio(v["retries"], v["calls"]),
        "input_tokens": v["input_tokens"],
        "output_tokens": v["output_tokens"],
        "cache_read_tokens": v["cache_read_tokens"],
        "cache_write_tokens": v["cache_write_tokens"],
        "reasoning_tokens": v["reasoning_tokens"],
        "input_tokens_avg": _ratio(v["input_tokens"], v["calls"]),
        "output_tokens_avg": _ratio(v["output_tokens"], v["calls"]),
        "cache_read_tokens_avg": _ratio(v["cache_read_tokens"], v["calls"]),
        "tool_calls": v["tool_calls"],
        "tool_failure_rate": _ratio(v["tool_failures"], v["tool_calls"]),
        "workflows_touched": v["workflows"],
        "unpriced_calls": v["unpriced"],
        # This ledger has no imported bill: billed figures are null (tests/finance/billing checks
        # them against a reconciled bill).
        "billed_cost_usd": None,
        "variance_usd": None,
        "billed_confidence": None,
    }
