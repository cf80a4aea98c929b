"""SQL of the billing area (migration 0006): billing lines and imports, the ledger usage a
reconciliation compares them with, stored reconciliations and true-up shares.

Every value is a bound parameter; table names come from the database name the ``Store``
holds, column names from the constants below.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from otelspend.clickhouse.client import Store

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
RUN_DIMENSIONS: tuple[str, ...] = (
    "workflow_id",
    "workflow_type",
    "tenant",
    "customer",
    "feature",
    "user",
    "team",
    "cost_center",
    "product",
    "environment",
    "prompt_version",
    "service",
    "status",
    "outcome",
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
        *((name, pa.string()) for name in RUN_DIMENSIONS),
    ]
)


def arrow_table(schema: pa.Schema, columns: Mapping[str, Sequence[Any]]) -> pa.Table:
    return pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in schema], schema=schema)


# -- imports and lines --------------------------------------------------------------------------


def insert_lines(store: Store, columns: Mapping[str, Sequence[Any]]) -> None:
    """Insert a batch of lines (one list per ``LINE_COLUMNS`` name); invisible until the import
    is recorded."""
    store.insert_arrow(f"{store.database}.billing_lines", arrow_table(LINE_SCHEMA, columns))


def delete_import(store: Store, import_id: str) -> None:
    """Remove the lines of an import that was refused or failed (never recorded, so never seen)."""
    store.command(
        f"ALTER TABLE {store.database}.billing_lines DELETE WHERE import_id = {{i:String}}",
        {"i": import_id},
    )


def record_import(store: Store, row: Mapping[str, Any]) -> None:
    """The switch: from now on the import's lines are part of the bill."""
    store.insert_rows(f"{store.database}.billing_imports", [[row[c] for c in IMPORT_COLUMNS]], IMPORT_COLUMNS)


_COMPLETE = "import_id IN (SELECT import_id FROM {db}.billing_imports)"


def replaced_lines(store: Store, import_id: str, seq: int, start_s: int, end_s: int) -> int:
    """Lines of earlier complete imports that lines of this import restate (same identity).
    Nothing to compare when no earlier import has lines in the period: the common first
    import of a period answers without building the import's identity set."""
    db = store.database
    earlier = store.scalar(
        f"SELECT count() FROM (SELECT 1 FROM {db}.billing_lines WHERE {_COMPLETE.format(db=db)} "
        "AND import_seq < {seq:UInt64} AND period_start >= toDateTime({a:Int64}, 'UTC') "
        "AND period_start < toDateTime({b:Int64}, 'UTC') LIMIT 1)",
        {"seq": seq, "a": start_s, "b": end_s},
    )
    if not earlier:
        return 0
    return int(
        store.scalar(
            f"SELECT count() FROM (SELECT DISTINCT identity FROM {db}.billing_lines "
            f"WHERE {_COMPLETE.format(db=db)} AND import_seq < {{seq:UInt64}} "
            "AND period_start >= toDateTime({a:Int64}, 'UTC') AND period_start < toDateTime({b:Int64}, 'UTC') "
            f"AND identity IN (SELECT identity FROM {db}.billing_lines WHERE import_id = {{i:String}}))",
            {"seq": seq, "a": start_s, "b": end_s, "i": import_id},
        )
        or 0
    )


def list_imports(store: Store, limit: int) -> list[dict[str, Any]]:
    return store.dicts(
        f"SELECT {', '.join(IMPORT_COLUMNS)} FROM {store.database}.billing_imports FINAL "
        "ORDER BY seq DESC LIMIT {n:UInt32}",
        {"n": limit},
    )


def current_lines(store: Store, start_s: int, end_s: int) -> list[dict[str, Any]]:
    """The bill in force for lines starting in ``[start_s, end_s)``: the latest version of each
    identity among complete imports."""
    db = store.database
    return store.dicts(
        f"SELECT {', '.join(READ_COLUMNS)} FROM {db}.billing_lines "
        f"WHERE {_COMPLETE.format(db=db)} "
        "AND period_start >= toDateTime({a:Int64}, 'UTC') AND period_start < toDateTime({b:Int64}, 'UTC') "
        "ORDER BY identity, import_seq DESC LIMIT 1 BY identity",
        {"a": start_s, "b": end_s},
    )


def billed_days(store: Store, import_id: str) -> list[dt.date]:
    """UTC days an import has lines on (the days to reconcile after it)."""
    return [
        row[0]
        for row in store.rows(
            f"SELECT DISTINCT toDate(period_start) FROM {store.database}.billing_lines "
            "WHERE import_id = {i:String} ORDER BY 1",
            {"i": import_id},
        )
    ]


# -- the ledger side ------------------------------------------------------------------------------

LEDGER_SQL = """
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
    groupUniqArray(if(s.processing != '', s.processing, s.service_tier)) AS tiers,
    min(s.start_time) AS first_call
FROM (
    -- The latest version of each span that started in the window. Not FINAL: with spans ordered
    -- by trace, FINAL reads every granule whose key range meets the window's (measured on 10M
    -- spans: the whole table, 1,248 granules where the start-time index picks 154; 10 s a day
    -- instead of 1). A span's start never changes between its versions, so deduplicating the
    -- window's rows is exact.
    SELECT trace_id, span_id, argMax(tuple({columns}), version) AS v
    FROM {db}.spans
    WHERE start_time >= fromUnixTimestamp64Nano({{a:Int64}}) AND start_time < fromUnixTimestamp64Nano({{b:Int64}})
      AND provider IN {{providers:Array(String)}}
    GROUP BY trace_id, span_id
) AS d
{join}
WHERE s.call_role = 'call'
  AND NOT (s.cost_usd IS NULL AND s.unpriced_reason = 'no_usage' AND s.status_code = 'ERROR')
GROUP BY hour, provider, model, ingest_token, service, environment, team, run_id
"""
# A failed call that reported no usage was not billed (it is not unpriced either): left out.
SPAN_COLUMNS: tuple[str, ...] = (
    "start_time", "provider", "model", "ingest_token", "service_name", "environment", "call_role", "cost_usd",
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
    "cost_input_usd", "cost_cache_read_usd", "cost_cache_write_usd", "cost_output_usd", "cost_reasoning_usd",
    "cost_request_usd", "cost_compute_usd", "processing", "service_tier", "unpriced_reason", "status_code",
)  # fmt: skip
"""Span columns the ledger side reads, as ``s.<name>`` over the deduplicated tuple."""

_TEAM_JOIN = (
    "LEFT JOIN (SELECT run_id, argMax(team, version) AS run_team FROM {db}.runs "
    "WHERE start_time >= fromUnixTimestamp64Nano({{ra:Int64}}) AND start_time < fromUnixTimestamp64Nano({{b:Int64}}) "
    "GROUP BY run_id HAVING sum(sign) > 0) AS r ON r.run_id = d.trace_id"
)


def ledger_usage(
    store: Store, start_ns: int, end_ns: int, providers: Sequence[str], *, with_team: bool
) -> list[dict[str, Any]]:
    """Counted calls that started in ``[start_ns, end_ns)``, per hour x provider x model x owner
    fields x run: tokens by kind (unpriced calls' tokens apart), calculated cost by component
    (exact decimal strings), service tiers seen."""
    db = store.database
    sql = LEDGER_SQL.format(
        db=db,
        team="ifNull(r.run_team, '')" if with_team else "''",
        join=_TEAM_JOIN.format(db=db) if with_team else "",
        columns=", ".join(SPAN_COLUMNS),
    )
    # s.<column> reads the latest version's value out of the deduplicated tuple.
    for index, name in enumerate(SPAN_COLUMNS, 1):
        sql = re.sub(rf"\bs\.{name}\b", f"d.v.{index}", sql)
    # Runs start at most a day before their calls (the late-span horizon): that is where the
    # team join looks.
    params = {"a": start_ns, "b": end_ns, "providers": list(providers), "ra": start_ns - 86_400 * 10**9}
    return store.dicts(sql, params)


def run_attribution(store: Store, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """run_id -> start time (ns) and attribution, for runs in force (net sign > 0)."""
    ids = list(dict.fromkeys(run_ids))
    found: dict[str, dict[str, Any]] = {}
    columns = ", ".join(f"argMax({name}, version) AS {name}" for name in RUN_DIMENSIONS)
    for start in range(0, len(ids), 20_000):
        chunk = ids[start : start + 20_000]
        rows = store.dicts(
            f"SELECT run_id, toUnixTimestamp64Nano(argMax(start_time, version)) AS run_start_ns, {columns} "
            f"FROM {store.database}.runs WHERE run_id IN {{ids:Array(String)}} "
            "GROUP BY run_id HAVING sum(sign) > 0",
            {"ids": chunk},
        )
        found.update((row.pop("run_id"), row) for row in rows)
    return found


# -- stored reconciliations ---------------------------------------------------------------------

CURRENT = "(day, version) IN (SELECT day, max(version) FROM {db}.reconciliation_days GROUP BY day)"
"""The reconciliation in force for each day (the last one recorded)."""


def save_reconciliation(
    store: Store,
    day: dt.date,
    version: int,
    cells: pa.Table,
    other: pa.Table,
    trueup: pa.Table | None,
    settings_json: str,
) -> None:
    """Write a day's cells, other charges and true-up shares, then switch the day to them."""
    db = store.database
    store.insert_arrow(f"{db}.reconciliation_cells", cells)
    store.insert_arrow(f"{db}.reconciliation_other_charges", other)
    if trueup is not None:
        store.insert_arrow(f"{db}.billing_trueup", trueup)
    store.insert_rows(
        f"{db}.reconciliation_days",
        [[day, version, dt.datetime.now(dt.UTC), cells.num_rows, int(trueup is not None), settings_json]],
        ("day", "version", "computed_at", "cells", "trueup", "settings"),
    )
    for table in ("reconciliation_cells", "reconciliation_other_charges", "billing_trueup"):
        # Superseded versions: invisible already (CURRENT), removed to keep the tables small.
        store.command(
            f"DELETE FROM {db}.{table} WHERE day = {{d:Date}} AND version < {{v:UInt64}}", {"d": day, "v": version}
        )


def stored_cells(store: Store, first_day: dt.date, end_day: dt.date) -> list[dict[str, Any]]:
    """Current cells of the days in ``[first_day, end_day)``."""
    db = store.database
    return store.dicts(
        f"SELECT * FROM {db}.reconciliation_cells WHERE day >= {{a:Date}} AND day < {{b:Date}} "
        f"AND {CURRENT.format(db=db)} ORDER BY day, provider, model, account, period_start",
        {"a": first_day, "b": end_day},
    )


def stored_other_charges(store: Store, first_day: dt.date, end_day: dt.date) -> list[dict[str, Any]]:
    db = store.database
    return store.dicts(
        f"SELECT day, provider, charge, billed_usd FROM {db}.reconciliation_other_charges "
        f"WHERE day >= {{a:Date}} AND day < {{b:Date}} AND {CURRENT.format(db=db)} ORDER BY day, provider, charge",
        {"a": first_day, "b": end_day},
    )


def reconciled_days(store: Store, first_day: dt.date, end_day: dt.date) -> list[dict[str, Any]]:
    db = store.database
    return store.dicts(
        f"SELECT day, max(version) AS current_version, argMax(computed_at, version) AS computed_at, "
        f"argMax(trueup, version) AS with_trueup FROM {db}.reconciliation_days "
        "WHERE day >= {a:Date} AND day < {b:Date} GROUP BY day ORDER BY day",
        {"a": first_day, "b": end_day},
    )


def trueup_for_runs(store: Store, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Current true-up shares of some runs (run pages, drill-downs)."""
    db = store.database
    return store.dicts(
        "SELECT run_id, day, period_start, provider, model, model_key, account, billed_usd, calculated_usd, "
        f"confidence, line_ids FROM {db}.billing_trueup WHERE run_id IN {{ids:Array(String)}} "
        f"AND {CURRENT.format(db=db)} ORDER BY run_id, day, provider, model",
        {"ids": list(run_ids)},
    )


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


def reconciliation_groups(
    store: Store,
    start_s: int,
    end_s: int,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[str]],
    limit: int,
) -> list[dict[str, Any]]:
    """Current cells whose period starts in ``[start_s, end_s)``, summed per group: columns
    ``g_<dimension>`` and ``a_<measure>`` (never a column's own name: an alias shadowing a
    column would be read inside the other aggregates)."""
    unknown = [name for name in (*group_by, *filters) if name not in RECONCILIATION_DIMENSIONS]
    if unknown:
        raise ValueError(f"not a reconciliation dimension: {unknown[0]!r}")
    db = store.database
    params: dict[str, Any] = {"a": start_s, "b": end_s, "n": limit}
    groups = [f"{RECONCILIATION_DIMENSIONS[name]} AS g_{name}" for name in group_by]
    where = [
        "day >= toDate(toDateTime({a:Int64}, 'UTC')) AND day <= toDate(toDateTime({b:Int64}, 'UTC'))",
        "period_start >= toDateTime({a:Int64}, 'UTC') AND period_start < toDateTime({b:Int64}, 'UTC')",
        CURRENT.format(db=db),
    ]
    for index, (name, values) in enumerate(sorted(filters.items())):
        params[f"f{index}"] = list(values)
        where.append(f"{RECONCILIATION_DIMENSIONS[name]} IN {{f{index}:Array(String)}}")
    measures = [
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
    group_clause = f" GROUP BY {', '.join(f'g_{name}' for name in group_by)}" if group_by else ""
    order = ", ".join(f"g_{name}" for name in group_by) or "a_cells"
    sql = (
        f"SELECT {', '.join([*groups, *measures])} FROM {db}.reconciliation_cells "
        f"WHERE {' AND '.join(where)}{group_clause} HAVING a_cells > 0 ORDER BY {order} LIMIT {{n:UInt32}}"
    )
    return store.dicts(sql, params)


def cell_runs(
    store: Store, day: dt.date, provider: str, model_key: str, account: str, limit: int
) -> list[dict[str, Any]]:
    """The true-up shares of one cell's runs (the drill-down), largest first."""
    db = store.database
    return store.dicts(
        "SELECT run_id, model, toUnixTimestamp64Nano(run_start) AS run_start_ns, billed_usd, calculated_usd, "
        "confidence, workflow_type, tenant, service, unattributed "
        f"FROM {db}.billing_trueup WHERE day = {{d:Date}} AND provider = {{p:String}} AND model_key = {{m:String}} "
        f"AND account = {{acc:String}} AND {CURRENT.format(db=db)} ORDER BY billed_usd DESC, run_id LIMIT {{n:UInt32}}",
        {"d": day, "p": provider, "m": model_key, "acc": account, "n": limit},
    )
