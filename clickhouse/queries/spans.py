"""Spans: a trace's spans, spans by start time, role updates, and the calls no rate card priced.

``spans`` is a ``ReplacingMergeTree(version)``: duplicates and re-priced or re-classified
copies collapse on merge, so every read of span values uses ``FINAL`` (by trace id or a
time range, so the merge is bounded).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from otelspend.clickhouse.queries.sql import Fragment, Params, Query, checked_columns, render, select_list, time_range
from otelspend.record import SPAN_COLUMNS

SPAN_FIELDS = frozenset(c.name for c in SPAN_COLUMNS)
TIMESTAMPS = frozenset(c.name for c in SPAN_COLUMNS if c.kind == "ts")

_OF_TRACE = "SELECT {columns} FROM {db}.spans FINAL WHERE trace_id = {id:String} ORDER BY start_time, span_id"
_OF_TRACES = "SELECT {columns} FROM {db}.spans FINAL WHERE trace_id IN {ids:Array(String)}"
_STARTED = """
SELECT {columns} FROM {db}.spans FINAL
WHERE start_time >= fromUnixTimestamp64Nano({start:Int64}) AND start_time < fromUnixTimestamp64Nano({end:Int64})
"""
_HOUR_COUNTS = """
SELECT intDiv(toUnixTimestamp64Nano(start_time), 3600000000000) AS h, count() FROM {db}.spans
WHERE start_time >= fromUnixTimestamp64Nano({start:Int64}) AND start_time < fromUnixTimestamp64Nano({end:Int64})
GROUP BY h ORDER BY h
"""
_INGESTED_SINCE = """
SELECT DISTINCT trace_id FROM {db}.spans
WHERE ingest_node = {node:String} AND ingested_at >= fromUnixTimestamp64Nano({since:Int64})
"""
_SET_ROLE = """
INSERT INTO {db}.spans SELECT * REPLACE ({role:String} AS call_role, {version:UInt64} AS version)
FROM {db}.spans FINAL
WHERE trace_id IN {traces:Array(String)} AND (trace_id, span_id) IN {pairs:Array(Tuple(String, String))}
"""


def of_trace(database: str, fields: Sequence[str], trace_id: str) -> Query:
    """One trace's spans (latest version of each) in start order: ``fields``, times as ``<name>_ns``."""
    columns = select_list(checked_columns(fields, SPAN_FIELDS), ("start_time", "end_time"), suffix="_ns")
    return Query(render(_OF_TRACE, db=database, columns=columns), {"id": trace_id})


def of_traces(database: str, fields: Sequence[str], trace_ids: Sequence[str]) -> Query:
    """The spans of these traces (latest version of each): ``fields``, every timestamp as ns
    under its own name, the attribute map as ``attr_keys``, ``attr_values``."""
    columns = select_list(checked_columns(fields, SPAN_FIELDS), TIMESTAMPS, attributes_as_arrays=True)
    return Query(render(_OF_TRACES, db=database, columns=columns), {"ids": list(trace_ids)})


def started_in(database: str, start_ns: int, end_ns: int) -> Query:
    """Every column of the spans (latest version) that started in ``[start_ns, end_ns)``, in
    ``SPAN_COLUMNS`` order: timestamps as ``<name>_ns``, the attribute map as two arrays."""
    names = [c.name for c in SPAN_COLUMNS]
    columns = select_list(names, TIMESTAMPS, suffix="_ns", attributes_as_arrays=True)
    return Query(render(_STARTED, db=database, columns=columns), {"start": start_ns, "end": end_ns})


def hour_counts(database: str, start_ns: int, end_ns: int) -> Query:
    """``(hour index since the epoch, stored span rows)`` per hour of ``[start_ns, end_ns)``."""
    return Query(render(_HOUR_COUNTS, db=database), {"start": start_ns, "end": end_ns})


def ingested_since(database: str, node: str, since_ns: int) -> Query:
    """Trace ids with spans this node stored since ``since_ns``."""
    return Query(render(_INGESTED_SINCE, db=database), {"node": node, "since": since_ns})


def set_role(database: str, role: str, version: int, pairs: Iterable[tuple[str, str]]) -> Query:
    """Re-insert these spans (``(trace_id, span_id)``) with a new role and a higher version, server-side."""
    chosen = list(pairs)
    parameters = {"role": role, "version": version, "traces": sorted({t for t, _ in chosen}), "pairs": chosen}
    return Query(render(_SET_ROLE, db=database), parameters)


UNPRICED_CALL = Fragment(
    "call_role = 'call' AND cost_usd IS NULL AND NOT (unpriced_reason IN ('no_usage', '') AND status_code = 'ERROR')"
)
"""A counted call is unpriced when its cost is NULL, except a failed call that reported no
usage: it was not billed, nothing is missing (same rule as the run computation)."""

_UNPRICED = """
SELECT provider, model, unpriced_reason, count() AS calls,
       sum(ifNull(input_tokens, 0)) AS input_tokens, sum(ifNull(output_tokens, 0)) AS output_tokens,
       sum(ifNull(cache_read_tokens, 0)) AS cache_read_tokens, sum(ifNull(cache_write_tokens, 0)) AS cache_write_tokens,
       sum(ifNull(reasoning_tokens, 0)) AS reasoning_tokens, min(start_time) AS first_start,
       max(start_time) AS last_start, uniqExact(trace_id) AS runs, any(trace_id) AS sample
FROM {db}.spans FINAL
WHERE {started} AND {unpriced}
GROUP BY provider, model, unpriced_reason
"""
_UNPRICED_TABLE = """
SELECT provider, model, unpriced_reason, calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, toUnixTimestamp64Nano(first_start), toUnixTimestamp64Nano(last_start), runs, sample,
       count() OVER () AS n_groups, sum(calls) OVER () AS total_calls, sum(runs) OVER () AS total_runs,
       sum(input_tokens) OVER () AS total_input_tokens, sum(output_tokens) OVER () AS total_output_tokens,
       sum(cache_read_tokens) OVER () AS total_cache_read_tokens,
       sum(cache_write_tokens) OVER () AS total_cache_write_tokens,
       sum(reasoning_tokens) OVER () AS total_reasoning_tokens,
       toUnixTimestamp64Nano(min(first_start) OVER ()) AS total_first,
       toUnixTimestamp64Nano(max(last_start) OVER ()) AS total_last
FROM ({groups})
ORDER BY calls DESC, provider, model, unpriced_reason
LIMIT {limit:UInt32}
"""
UNPRICED_TOTALS = (
    "groups",
    "calls",
    "runs",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "first",
    "last",
)
"""The trailing columns of ``unpriced`` rows: the whole table's group count and column totals
(before ``LIMIT``), in this order."""


def unpriced(database: str, start_ns: int, end_ns: int, limit: int) -> Query:
    """Unpriced calls that started in ``[start_ns, end_ns)`` by (provider, model, reason):
    calls, tokens by kind, first and last start (ns), distinct runs, a sample run, then the
    ``UNPRICED_TOTALS`` of every group (window functions: one pass, counted before ``LIMIT``)."""
    params = Params()
    started = time_range("start_time", params, start_ns, end_ns)
    groups = render(_UNPRICED, db=database, started=started, unpriced=UNPRICED_CALL)
    sql = render(_UNPRICED_TABLE, groups=Fragment(groups))
    return Query(sql, {**params.values, "limit": limit})
