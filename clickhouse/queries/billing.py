"""Billing (migration 0006): billing lines and imports, the ledger usage a reconciliation
compares them with, stored reconciliations and true-up shares.

Statements follow the package's conventions: templates with ``{name}`` identifiers (the
database, columns from the fixed lists here) filled by ``render``, every value a bound
``{name:Type}`` parameter; each function returns a ``Query`` for the caller to run
(``otelspend.finance.billing.store``). Inserts go through ``Store.insert_arrow`` /
``insert_rows`` with the Arrow schemas below.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.queries.runs import RUN_ATTRIBUTION, RUNS_IN_FORCE
from otelspend.clickhouse.queries.sql import Fragment, Params, Query, render

_USD = pa.decimal128(38, 15)
_QUANTITY = pa.decimal128(38, 12)
_SECONDS = pa.timestamp("s", tz="UTC")

LINE_SCHEMA = pa.schema(
    [
        ("identity", pa.string()),
        ("import_id", pa.string()),
        ("import_seq", pa.uint64()),
        ("format", pa.string()),
        ("provider", pa.string()),
        ("account_id", pa.string()),
        ("project_id", pa.string()),
        ("workspace_id", pa.string()),
        ("api_key_id", pa.string()),
        ("model_billed", pa.string()),
        ("model", pa.string()),
        ("kind", pa.string()),
        ("charge", pa.string()),
        ("period_start", _SECONDS),
        ("period_end", _SECONDS),
        ("quantity", _QUANTITY),
        ("unit", pa.string()),
        ("amount", _USD),
        ("currency", pa.string()),
        ("list_amount", _USD),
        ("service_tier", pa.string()),
        ("description", pa.string()),
        ("record", pa.string()),
    ]
)
LINE_COLUMNS: tuple[str, ...] = tuple(LINE_SCHEMA.names)
READ_COLUMNS: tuple[str, ...] = tuple(c for c in LINE_COLUMNS if c not in ("import_seq",))

IMPORT_COLUMNS: tuple[str, ...] = (
    "import_id",
    "seq",
    "format",
    "source",
    "file_name",
    "file_sha256",
    "account_id",
    "lines",
    "skipped",
    "replaced",
    "period_start",
    "period_end",
    "billed_usd",
    "imported_at",
    "note",
)

KIND_COLUMNS: tuple[str, ...] = (
    "uncached_input",
    "cached_input",
    "cache_write_5m",
    "cache_write_1h",
    "output",
    "requests",
)
CAUSE_COLUMNS: tuple[str, ...] = (
    "missing_telemetry_usd",
    "not_in_bill_usd",
    "price_mismatch_usd",
    "discount_usd",
    "unpriced_in_ledger_usd",
    "untagged_usd",
)
CELL_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("version", pa.uint64()),
        ("period_start", _SECONDS),
        ("period_end", _SECONDS),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("model_name", pa.string()),
        ("account", pa.string()),
        ("mapped", pa.uint8()),
        ("allocated", pa.uint8()),
        ("ledger_calls", pa.uint64()),
        ("unpriced_calls", pa.uint64()),
        *((f"ledger_{k}", pa.uint64()) for k in KIND_COLUMNS),
        *((f"billed_{k}", _QUANTITY) for k in (*KIND_COLUMNS, "web_search")),
        ("calculated_usd", _USD),
        ("billed_usd", _USD),
        ("list_usd", _USD),
        ("variance_usd", _USD),
        *((c, _USD) for c in CAUSE_COLUMNS),
        ("confidence", pa.string()),
        ("prices", pa.string()),
        ("line_ids", pa.list_(pa.string())),
    ]
)
OTHER_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("version", pa.uint64()),
        ("provider", pa.string()),
        ("charge", pa.string()),
        ("billed_usd", _USD),
        ("line_ids", pa.list_(pa.string())),
    ]
)
TRUEUP_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("version", pa.uint64()),
        ("run_id", pa.string()),
        ("run_start", pa.timestamp("ns", tz="UTC")),
        ("period_start", _SECONDS),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("model_key", pa.string()),
        ("account", pa.string()),
        ("unattributed", pa.uint8()),
        ("billed_usd", _USD),
        ("calculated_usd", _USD),
        ("confidence", pa.string()),
        ("line_ids", pa.list_(pa.string())),
        *((name, pa.string()) for name in RUN_ATTRIBUTION),
    ]
)


def arrow_table(schema: pa.Schema, columns: Mapping[str, Sequence[Any]]) -> pa.Table:
    """An Arrow table of ``schema`` from lists of Python values, one per column."""
    return pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in schema], schema=schema)


# -- tables ------------------------------------------------------------------------------------

LINES = "billing_lines"
IMPORTS = "billing_imports"
DAYS = "reconciliation_days"
CELLS = "reconciliation_cells"
OTHER = "reconciliation_other_charges"
TRUEUP = "billing_trueup"
DAY_TABLES = (CELLS, OTHER, TRUEUP)
"""Tables holding a reconciled day's rows under its version."""
DAY_COLUMNS = ("day", "version", "computed_at", "cells", "trueup", "settings")


def table(database: str, name: str) -> str:
    """``<database>.<table>`` for an insert (``name`` from the constants above)."""
    if name not in (LINES, IMPORTS, DAYS, *DAY_TABLES):
        raise ValueError(f"not a billing table: {name!r}")
    return render("{db}.{table}", db=database, table=name)


# -- imports and lines --------------------------------------------------------------------------

_COMPLETE = "import_id IN (SELECT import_id FROM {db}.billing_imports)"
"""Lines of recorded imports: a line counts only once its import is recorded (written last)."""
_DELETE_IMPORT = "ALTER TABLE {db}.billing_lines DELETE WHERE import_id = {import_id:String}"
_EARLIER = """
SELECT count() FROM (
    SELECT 1 FROM {db}.billing_lines
    WHERE {complete} AND import_seq < {seq:UInt64}
      AND period_start >= toDateTime({start:Int64}, 'UTC') AND period_start < toDateTime({end:Int64}, 'UTC')
    LIMIT 1
)
"""
_REPLACED = """
SELECT count() FROM (
    SELECT DISTINCT identity FROM {db}.billing_lines
    WHERE {complete} AND import_seq < {seq:UInt64}
      AND period_start >= toDateTime({start:Int64}, 'UTC') AND period_start < toDateTime({end:Int64}, 'UTC')
      AND identity IN (SELECT identity FROM {db}.billing_lines WHERE import_id = {import_id:String})
)
"""
_LIST_IMPORTS = "SELECT {columns} FROM {db}.billing_imports FINAL ORDER BY seq DESC LIMIT {limit:UInt32}"
_CURRENT_LINES = """
SELECT {columns} FROM {db}.billing_lines
WHERE {complete}
  AND period_start >= toDateTime({start:Int64}, 'UTC') AND period_start < toDateTime({end:Int64}, 'UTC')
ORDER BY identity, import_seq DESC LIMIT 1 BY identity
"""
_BILLED_DAYS = """
SELECT DISTINCT toDate(period_start) FROM {db}.billing_lines WHERE import_id = {import_id:String} ORDER BY 1
"""


def _complete(database: str) -> Fragment:
    return Fragment(render(_COMPLETE, db=database))


def delete_import(database: str, import_id: str) -> Query:
    """Remove the lines of an import that was refused or failed (never recorded, so never seen)."""
    return Query(render(_DELETE_IMPORT, db=database), {"import_id": import_id})


def earlier_lines(database: str, seq: int, start_s: int, end_s: int) -> Query:
    """1 when an earlier recorded import has lines in ``[start_s, end_s)``, else 0."""
    sql = render(_EARLIER, db=database, complete=_complete(database))
    return Query(sql, {"seq": seq, "start": start_s, "end": end_s})


def replaced_lines(database: str, import_id: str, seq: int, start_s: int, end_s: int) -> Query:
    """Lines of earlier recorded imports that lines of this import restate (same identity).
    Ask ``earlier_lines`` first: with nothing earlier in the period this builds the import's
    whole identity set for nothing."""
    sql = render(_REPLACED, db=database, complete=_complete(database))
    return Query(sql, {"seq": seq, "start": start_s, "end": end_s, "import_id": import_id})


def list_imports(database: str, limit: int) -> Query:
    """The recorded imports, latest first."""
    return Query(render(_LIST_IMPORTS, db=database, columns=Fragment(", ".join(IMPORT_COLUMNS))), {"limit": limit})


def current_lines(database: str, start_s: int, end_s: int) -> Query:
    """The bill in force for lines starting in ``[start_s, end_s)``: the latest version of each
    identity among recorded imports (``READ_COLUMNS``)."""
    sql = render(_CURRENT_LINES, db=database, columns=Fragment(", ".join(READ_COLUMNS)), complete=_complete(database))
    return Query(sql, {"start": start_s, "end": end_s})


def billed_days(database: str, import_id: str) -> Query:
    """UTC days an import has lines on (the days to reconcile after it)."""
    return Query(render(_BILLED_DAYS, db=database), {"import_id": import_id})


# -- the ledger side ------------------------------------------------------------------------------

SPAN_COLUMNS: tuple[str, ...] = (
    "start_time", "provider", "model", "ingest_token", "service_name", "environment", "call_role", "cost_usd",
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
    "cost_input_usd", "cost_cache_read_usd", "cost_cache_write_usd", "cost_output_usd", "cost_reasoning_usd",
    "cost_request_usd", "cost_compute_usd", "processing", "service_tier", "unpriced_reason", "status_code",
)  # fmt: skip
"""Span columns the ledger side reads; ``s.<name>`` in ``_LEDGER`` is the latest version's value."""
_LEDGER = """
SELECT
    toUnixTimestamp(toStartOfHour(s.start_time)) AS hour,
    s.provider AS provider,
    s.model AS model,
    s.ingest_token AS ingest_token,
    s.service_name AS service,
    s.environment AS environment,
    {team} AS team,
    d.trace_id AS run_id,
    count() AS calls,
    countIf(s.cost_usd IS NULL) AS unpriced_calls,
    sum(greatest(toInt64(ifNull(s.input_tokens, 0)) - toInt64(ifNull(s.cache_read_tokens, 0))
        - toInt64(ifNull(s.cache_write_tokens, 0)), 0)) AS uncached_input,
    sum(toInt64(ifNull(s.cache_read_tokens, 0))) AS cached_input,
    sum(greatest(toInt64(ifNull(s.cache_write_tokens, 0)) - toInt64(ifNull(s.cache_write_1h_tokens, 0)), 0))
        AS cache_write_5m,
    sum(toInt64(ifNull(s.cache_write_1h_tokens, 0))) AS cache_write_1h,
    sum(toInt64(ifNull(s.output_tokens, 0))) AS output,
    sumIf(greatest(toInt64(ifNull(s.input_tokens, 0)) - toInt64(ifNull(s.cache_read_tokens, 0))
        - toInt64(ifNull(s.cache_write_tokens, 0)), 0), s.cost_usd IS NULL) AS unpriced_uncached_input,
    sumIf(toInt64(ifNull(s.cache_read_tokens, 0)), s.cost_usd IS NULL) AS unpriced_cached_input,
    sumIf(toInt64(ifNull(s.cache_write_tokens, 0)), s.cost_usd IS NULL) AS unpriced_cache_write,
    sumIf(toInt64(ifNull(s.output_tokens, 0)), s.cost_usd IS NULL) AS unpriced_output,
    toString(sum(ifNull(s.cost_usd, toDecimal128(0, 15)))) AS cost,
    toString(sum(ifNull(s.cost_input_usd, toDecimal128(0, 15)))) AS cost_uncached_input,
    toString(sum(ifNull(s.cost_cache_read_usd, toDecimal128(0, 15)))) AS cost_cached_input,
    toString(sum(ifNull(s.cost_cache_write_usd, toDecimal128(0, 15)))) AS cost_cache_write,
    toString(sum(ifNull(s.cost_output_usd, toDecimal128(0, 15)) + ifNull(s.cost_reasoning_usd, toDecimal128(0, 15))))
        AS cost_output,
    toString(sum(ifNull(s.cost_request_usd, toDecimal128(0, 15)))) AS cost_request,
    toString(sum(ifNull(s.cost_compute_usd, toDecimal128(0, 15)))) AS cost_other,
    groupUniqArray(if(s.processing != '', s.processing, s.service_tier)) AS tiers
FROM (
    -- The latest version of each span that started in the window. Not FINAL: with spans ordered
    -- by trace, FINAL reads every granule whose key range meets the window's (measured on 10M
    -- spans: the whole table, 1,248 granules where the start-time index picks 154; 10 s a day
    -- instead of 3.7). A span's start never changes between versions: deduplicating the
    -- window's rows is exact.
    SELECT trace_id, span_id, argMax(tuple({span_columns}), version) AS v
    FROM {db}.spans
    WHERE start_time >= fromUnixTimestamp64Nano({start:Int64}) AND start_time < fromUnixTimestamp64Nano({end:Int64})
      AND provider IN {providers:Array(String)}
    GROUP BY trace_id, span_id
) AS d
{team_join}
WHERE s.call_role = 'call'
  AND NOT (s.cost_usd IS NULL AND s.unpriced_reason = 'no_usage' AND s.status_code = 'ERROR')
GROUP BY hour, provider, model, ingest_token, service, environment, team, run_id
"""
# A failed call that reported no usage was not billed (it is not unpriced either): left out.
_TEAM_JOIN = """
LEFT JOIN (
    SELECT run_id, argMax(team, version) AS run_team FROM {db}.runs
    WHERE start_time >= fromUnixTimestamp64Nano({runs_start:Int64})
      AND start_time < fromUnixTimestamp64Nano({end:Int64})
    {in_force}
) AS r ON r.run_id = d.trace_id
"""
_SPAN_VALUE = re.compile(r"\bs\.([a-z0-9_]+)\b")


def ledger_usage(database: str, start_ns: int, end_ns: int, providers: Sequence[str], *, with_team: bool) -> Query:
    """Counted calls that started in ``[start_ns, end_ns)``, per hour x provider x model x owner
    fields x run: tokens by kind (unpriced calls' tokens apart), calculated cost by component
    (exact decimal strings), service tiers seen. ``with_team`` joins each call's run team (runs
    start at most a day before their calls: the late-span horizon)."""
    positions = {name: index for index, name in enumerate(SPAN_COLUMNS, 1)}
    template = _SPAN_VALUE.sub(lambda m: f"d.v.{positions[m.group(1)]}", _LEDGER)
    team_join = Fragment(render(_TEAM_JOIN, db=database, in_force=RUNS_IN_FORCE)) if with_team else Fragment("")
    sql = render(
        template,
        db=database,
        span_columns=Fragment(", ".join(SPAN_COLUMNS)),
        team=Fragment("ifNull(r.run_team, '')" if with_team else "''"),
        team_join=team_join,
    )
    parameters: dict[str, Any] = {"start": start_ns, "end": end_ns, "providers": list(providers)}
    if with_team:
        parameters["runs_start"] = start_ns - 86_400 * 10**9
    return Query(sql, parameters)


_RUN_ATTRIBUTION = """
SELECT run_id, toUnixTimestamp64Nano(argMax(start_time, version)) AS run_start_ns, {columns}
FROM {db}.runs WHERE run_id IN {ids:Array(String)}
{in_force}
"""


def run_attribution(database: str, run_ids: Sequence[str]) -> Query:
    """run_id, start time (ns) and attribution (``RUN_ATTRIBUTION``) of runs in force."""
    columns = Fragment(", ".join(f"argMax({name}, version) AS {name}" for name in RUN_ATTRIBUTION))
    sql = render(_RUN_ATTRIBUTION, db=database, columns=columns, in_force=RUNS_IN_FORCE)
    return Query(sql, {"ids": list(run_ids)})


# -- stored reconciliations ---------------------------------------------------------------------

_CURRENT = "(day, version) IN (SELECT day, max(version) FROM {db}.reconciliation_days GROUP BY day)"
_DELETE_SUPERSEDED = "DELETE FROM {db}.{table} WHERE day = {day:Date} AND version < {version:UInt64}"


def current(database: str) -> Fragment:
    """The reconciliation in force for each day (the last one recorded), as a WHERE term."""
    return Fragment(render(_CURRENT, db=database))


def delete_superseded(database: str, name: str, day: dt.date, version: int) -> Query:
    """Rows of a day's earlier versions (invisible already): removed to keep the tables small."""
    if name not in DAY_TABLES:
        raise ValueError(f"not a reconciliation table: {name!r}")
    return Query(render(_DELETE_SUPERSEDED, db=database, table=name), {"day": day, "version": version})


_OTHER_CHARGES = """
SELECT day, provider, charge, billed_usd FROM {db}.reconciliation_other_charges
WHERE day >= {first:Date} AND day < {end:Date} AND {current} ORDER BY day, provider, charge
"""
_RECONCILED_DAYS = """
SELECT day, max(version) AS current_version, argMax(computed_at, version) AS computed_at,
       argMax(trueup, version) AS with_trueup
FROM {db}.reconciliation_days WHERE day >= {first:Date} AND day < {end:Date} GROUP BY day ORDER BY day
"""
_TRUEUP_OF_RUNS = """
SELECT run_id, day, period_start, provider, model, model_key, account, billed_usd, calculated_usd, confidence, line_ids
FROM {db}.billing_trueup WHERE run_id IN {ids:Array(String)} AND {current}
ORDER BY run_id, day, provider, model
"""


def stored_other_charges(database: str, first_day: dt.date, end_day: dt.date) -> Query:
    """Current other (non-usage) charges of the days ``[first_day, end_day)``."""
    sql = render(_OTHER_CHARGES, db=database, current=current(database))
    return Query(sql, {"first": first_day, "end": end_day})


def reconciled_days(database: str, first_day: dt.date, end_day: dt.date) -> Query:
    """The days of ``[first_day, end_day)`` with a stored reconciliation: version, when, with true-up or not."""
    return Query(render(_RECONCILED_DAYS, db=database), {"first": first_day, "end": end_day})


def trueup_for_runs(database: str, run_ids: Sequence[str]) -> Query:
    """Current true-up shares of some runs (run pages)."""
    return Query(render(_TRUEUP_OF_RUNS, db=database, current=current(database)), {"ids": list(run_ids)})


# -- reading reconciliations (GET /v1/reconciliation) ---------------------------------------------

RECONCILIATION_DIMENSIONS: dict[str, str] = {
    "day": "toString(day)",
    "provider": "provider",
    "model": "model",
    "account": "account",
    "confidence": "confidence",
}
"""Whitelisted group_by / filter names -> the cell column (``model`` is the match key)."""
_RANK = "multiIf(confidence = 'high', 3, confidence = 'medium', 2, 1)"
_MEASURES = [
    "count() AS a_cells",
    "anyHeavy(model_name) AS a_model_name",
    "sum(ledger_calls) AS a_ledger_calls",
    "sum(unpriced_calls) AS a_unpriced_calls",
    *(f"sum(ledger_{k}) AS a_ledger_{k}" for k in KIND_COLUMNS),
    *(
        f"if(countIf(billed_{k} IS NOT NULL) = 0, NULL, sum(billed_{k})) AS a_billed_{k}"
        for k in (*KIND_COLUMNS, "web_search")
    ),
    "sum(calculated_usd) AS a_calculated_usd",
    "sumIf(calculated_usd, variance_usd IS NOT NULL) AS a_compared_calculated_usd",
    "countIf(variance_usd IS NULL) AS a_quantity_only_cells",
    "sum(billed_usd) AS a_billed_usd",
    "sum(variance_usd) AS a_variance_usd",
    *(f"sum({c}) AS a_{c}" for c in CAUSE_COLUMNS),
    f"min({_RANK}) AS a_confidence_rank",
    "countIf(confidence = 'high') AS a_cells_high",
    "countIf(confidence = 'medium') AS a_cells_medium",
    "countIf(confidence = 'low') AS a_cells_low",
    "max(allocated) AS a_allocated",
    "if(count() = 1, any(prices), '') AS a_prices",
    "if(count() = 1, any(line_ids), []) AS a_line_ids",
]
"""Measures named ``a_<name>``, never a column's own name: an alias shadowing a column would be
read inside the other aggregates."""
_GROUPS = """
SELECT {columns} FROM {db}.reconciliation_cells
WHERE day >= toDate(toDateTime({start:Int64}, 'UTC')) AND day <= toDate(toDateTime({end:Int64}, 'UTC'))
  AND period_start >= toDateTime({start:Int64}, 'UTC') AND period_start < toDateTime({end:Int64}, 'UTC')
  AND {current}{filters}
{group_clause}
HAVING a_cells > 0 ORDER BY a_total DESC, {order} LIMIT {limit:UInt32}
"""


def reconciliation_groups(
    database: str,
    start_s: int,
    end_s: int,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[str]],
    limit: int,
) -> Query:
    """Current cells whose period starts in ``[start_s, end_s)``, summed per group: columns
    ``g_<dimension>`` and ``a_<measure>``. Names from ``RECONCILIATION_DIMENSIONS`` only.

    The window's total comes first, in the same pass (grouping sets), flagged ``a_total``;
    then at most ``limit`` groups."""
    unknown = [name for name in (*group_by, *filters) if name not in RECONCILIATION_DIMENSIONS]
    if unknown:
        raise ValueError(f"not a reconciliation dimension: {unknown[0]!r}")
    params = Params()
    terms = [
        f" AND {RECONCILIATION_DIMENSIONS[name]} IN {params.bind('f', list(values), 'Array(String)')}"
        for name, values in sorted(filters.items())
    ]
    keys = ", ".join(f"g_{name}" for name in group_by)
    groups = [f"{RECONCILIATION_DIMENSIONS[name]} AS g_{name}" for name in group_by]
    total = f"grouping({keys}) != 0 AS a_total" if group_by else "1 AS a_total"
    sql = render(
        _GROUPS,
        db=database,
        columns=Fragment(", ".join([*groups, total, *_MEASURES])),
        current=current(database),
        filters=Fragment("".join(terms)),
        group_clause=Fragment(f"GROUP BY GROUPING SETS (({keys}), ())" if group_by else ""),
        order=Fragment(keys or "a_cells"),
    )
    return Query(sql, {**params.values, "start": start_s, "end": end_s, "limit": limit + 1 if group_by else 1})


_CELL_RUNS = """
SELECT run_id, model, toUnixTimestamp64Nano(run_start) AS run_start_ns, billed_usd, calculated_usd, confidence,
       workflow_type, tenant, service, unattributed
FROM {db}.billing_trueup
WHERE day = {day:Date} AND provider = {provider:String} AND model_key = {model_key:String}
  AND account = {account:String} AND {current}
ORDER BY billed_usd DESC, run_id LIMIT {limit:UInt32}
"""


def cell_runs(database: str, day: dt.date, provider: str, model_key: str, account: str, limit: int) -> Query:
    """The true-up shares of one cell's runs (the drill-down), largest first."""
    parameters = {"day": day, "provider": provider, "model_key": model_key, "account": account, "limit": limit}
    return Query(render(_CELL_RUNS, db=database, current=current(database)), parameters)
