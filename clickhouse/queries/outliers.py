"""Outliers that no rollup answers: single counted calls without a successful result."""

from __future__ import annotations

from otelspend.clickhouse.queries.runs import RUNS_IN_FORCE
from otelspend.clickhouse.queries.sql import Query, render

# Runs in force (latest version, netted signs), the unsuccessful ones, the traces with a
# candidate call (any stored version), then the latest version of those spans: no FINAL
# over the whole table.
_UNSUCCESSFUL_CALLS = """
WITH runs_now AS (
    SELECT run_id, argMax(status, version) AS status, argMax(outcome, version) AS outcome,
           argMax(workflow_type, version) AS workflow_type, argMax(workflow_id, version) AS workflow_id,
           argMax(tenant, version) AS tenant
    FROM {db}.runs
    WHERE start_time >= fromUnixTimestamp64Nano({start:Int64}) AND start_time < fromUnixTimestamp64Nano({end:Int64})
    {in_force}
),
unsuccessful AS (
    SELECT run_id FROM runs_now WHERE status != 'success' OR outcome IN ('rejected', 'escalated')
),
candidates AS (
    SELECT DISTINCT trace_id, span_id FROM {db}.spans
    WHERE start_time >= fromUnixTimestamp64Nano({start:Int64}) AND call_role = 'call' AND cost_usd > 0
      AND (status_code = 'ERROR' OR trace_id IN (SELECT run_id FROM unsuccessful))
      AND trace_id IN (SELECT run_id FROM runs_now)
),
latest AS (
    SELECT trace_id, span_id,
           argMax((name, toUnixTimestamp64Nano(start_time), provider, model, operation, status_code,
                   error_type, cost_usd, call_role), version) AS v
    FROM {db}.spans
    WHERE start_time >= fromUnixTimestamp64Nano({start:Int64}) AND trace_id IN (SELECT trace_id FROM candidates)
      AND (trace_id, span_id) IN (SELECT trace_id, span_id FROM candidates)
    GROUP BY trace_id, span_id
)
SELECT c.trace_id, c.span_id, c.v.1, c.v.2, c.v.3, c.v.4, c.v.5, c.v.6, c.v.7, c.v.8,
       r.status, r.outcome, r.workflow_type, r.workflow_id, r.tenant
FROM latest AS c INNER JOIN runs_now AS r ON r.run_id = c.trace_id
WHERE c.v.9 = 'call' AND c.v.8 > 0
  AND (c.v.6 = 'ERROR' OR r.status != 'success' OR r.outcome IN ('rejected', 'escalated'))
ORDER BY c.v.8 DESC, c.trace_id, c.span_id
LIMIT {limit:UInt32}
"""


def unsuccessful_calls(database: str, start_ns: int, end_ns: int, limit: int) -> Query:
    """The costliest counted calls without a successful result (the call failed, its run
    failed, or its run's outcome is rejected or escalated) in runs started in
    ``[start_ns, end_ns)``: trace id, span id, name, start (ns), provider, model, operation,
    status code, error type, cost; the run's status, outcome, workflow type and id, tenant."""
    sql = render(_UNSUCCESSFUL_CALLS, db=database, in_force=RUNS_IN_FORCE)
    return Query(sql, {"start": start_ns, "end": end_ns, "limit": limit})
