"""Runs and their breakdown rows: the rows in force, one page of runs, records by id.

``runs`` and ``run_calls`` are ``VersionedCollapsingMergeTree(sign, version)``: a changed
run is written as a cancel row (``sign = -1``, the stored version) plus the new row. The
rule for the rows in force is stated here once, in SQL (``in_force``: group by the row's
identity, keep it when its signs net positive) and in Python (``current``: the same netting
over rows already fetched). Both read without ``FINAL``, which costs a merge of whole parts
even for one run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from otelspend.clickhouse.queries.sql import Fragment, Params, Query, checked_columns, render, select_list, time_range
from otelspend.clickhouse.queries.vocabulary import DIMENSIONS, Filters
from otelspend.record import CALL_DIMENSIONS, RUN_CALL_COLUMNS, RUN_COLUMNS

RUN_FIELDS = frozenset(c.name for c in RUN_COLUMNS)
CALL_FIELDS = frozenset(c.name for c in RUN_CALL_COLUMNS)
BREAKDOWN_KEY = ("run_id", "version", *CALL_DIMENSIONS)
RUN_ATTRIBUTION: tuple[str, ...] = (
    "workflow_type", "workflow_id", "service", "environment", "tenant", "customer", "feature", "user", "team",
    "cost_center", "product", "prompt_version", "status", "outcome",
)  # fmt: skip
"""The run's attribution a row derived from it carries (an allocation, a true-up share): its
dimensions and outcome, in the allocations table's column order."""
"""The identity of a breakdown row: a re-emission rewrites only the rows that changed, so rows
of earlier versions can stay in force beside newer ones."""


def in_force(*key: str, allowed: Iterable[str] = RUN_FIELDS | CALL_FIELDS) -> Fragment:
    """``GROUP BY <key> HAVING sum(sign) > 0``: the rows (runs, or breakdown rows) in force.

    A cancelled emission and its cancel row carry the same key and net to zero; what is left
    positive is current. Keyed by ``run_id``, the run's latest version is the one in force
    (``argMax(column, version)``). Other collapsing tables (allocations) pass their columns as
    ``allowed``."""
    checked_columns(key, allowed)
    return Fragment(f"GROUP BY {', '.join(key)} HAVING sum(sign) > 0")


RUNS_IN_FORCE = in_force("run_id")
"""Runs in force, one row per run: the runs the ledger counts."""


def current(rows: Sequence[Sequence[Any]], sign_index: int) -> list[tuple[Any, ...]]:
    """The rule of ``in_force`` over fetched signed rows: those whose +1 copies outnumber
    their -1 copies, each without its sign.

    A VersionedCollapsingMergeTree emission cancels a row with an identical copy of sign -1
    (same version), so collapsing is counting.
    """
    net: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = tuple(_freeze(v) for i, v in enumerate(row) if i != sign_index)
        net[key] = net.get(key, 0) + int(row[sign_index])
    out: list[tuple[Any, ...]] = []
    for row in rows:
        key = tuple(_freeze(v) for i, v in enumerate(row) if i != sign_index)
        if net.get(key, 0) > 0:
            net[key] -= 1
            out.append(tuple(v for i, v in enumerate(row) if i != sign_index))
    return out


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def run_filters(database: str, start_ns: int, end_ns: int, filters: Filters, params: Params) -> list[str]:
    """WHERE terms on the signed ``runs`` rows: started in ``[start_ns, end_ns)``, run dimensions
    directly, call dimensions through the breakdown rows in force.

    Filtering before collapsing is exact: a cancelled emission and its cancel row carry the
    same values, so they pass or fail together and still cancel."""
    started = time_range("start_time", params, start_ns, end_ns)
    terms: list[str] = [started]
    call_terms: list[str] = []
    for name, values in filters:
        term = f"{DIMENSIONS[name].column} IN {params.bind('f', list(values), 'Array(String)')}"
        if name == "pool":  # the runs carrying money of these pools (allocations in force)
            terms.append(
                f"run_id IN (SELECT run_id FROM {database}.allocations WHERE {term} AND run_id != '' "
                "GROUP BY pool, period_start, consumer, run_id, version HAVING sum(sign) > 0)"
            )
            continue
        (call_terms if DIMENSIONS[name].level == "call" else terms).append(term)
    if call_terms:
        terms.append(
            f"run_id IN (SELECT run_id FROM {database}.run_calls WHERE {started} "
            f"AND {' AND '.join(call_terms)} {in_force(*BREAKDOWN_KEY)})"
        )
    return terms


_PAGE = """
SELECT run_id, argMax({column}, version) AS sort_key FROM {db}.runs WHERE {where}
{in_force} ORDER BY sort_key {direction} NULLS LAST, run_id ASC
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
"""


def page(
    database: str,
    start_ns: int,
    end_ns: int,
    filters: Filters,
    *,
    order_column: str,
    descending: bool,
    limit: int,
    offset: int,
) -> Query:
    """Run ids (and sort keys) of one page of runs in force, sorted by ``order_column``."""
    (column,) = checked_columns([order_column], RUN_FIELDS)
    params = Params()
    where = run_filters(database, start_ns, end_ns, filters, params)
    sql = render(
        _PAGE,
        db=database,
        column=column,
        where=Fragment(" AND ".join(where)),
        in_force=RUNS_IN_FORCE,
        direction="DESC" if descending else "ASC",
    )
    return Query(sql, {**params.values, "limit": limit, "offset": offset})


_RECORDS = "SELECT {columns}, version, sign FROM {db}.runs WHERE run_id IN {ids:Array(String)}"
_BREAKDOWN = "SELECT {columns}, version, sign FROM {db}.run_calls WHERE run_id = {id:String}"


def records(database: str, fields: Sequence[str], run_ids: Sequence[str]) -> Query:
    """Every signed row of these runs: ``fields`` (times as ``<name>_ns``), then version and
    sign; net them with ``current``."""
    columns = select_list(checked_columns(fields, RUN_FIELDS), ("start_time", "end_time"), suffix="_ns")
    return Query(render(_RECORDS, db=database, columns=columns), {"ids": list(run_ids)})


def breakdown(database: str, fields: Sequence[str], run_id: str) -> Query:
    """Every signed breakdown row of one run: ``fields``, version and sign; net with ``current``."""
    columns = select_list(checked_columns(fields, CALL_FIELDS), ())
    return Query(render(_BREAKDOWN, db=database, columns=columns), {"id": run_id})


_OF_WORKFLOW = "SELECT run_id FROM {db}.runs WHERE workflow_id = {workflow_id:String} {in_force}"


def of_workflow(database: str, workflow_id: str) -> Query:
    """Ids of the runs in force of one workflow execution."""
    return Query(render(_OF_WORKFLOW, db=database, in_force=RUNS_IN_FORCE), {"workflow_id": workflow_id})


_EXISTING = "SELECT DISTINCT run_id FROM {db}.runs WHERE run_id IN {ids:Array(String)}"
_FINAL = "SELECT {columns} FROM {db}.{table} FINAL WHERE run_id IN {ids:Array(String)}"
_HOURS_WRITTEN = """
SELECT DISTINCT toUnixTimestamp(toStartOfHour(start_time)) FROM {db}.runs
WHERE node = {node:String} AND written_at >= fromUnixTimestamp64Nano({since:Int64})
UNION DISTINCT
SELECT DISTINCT toUnixTimestamp(toStartOfHour(start_time)) FROM {db}.run_calls
WHERE node = {node:String} AND written_at >= fromUnixTimestamp64Nano({since:Int64})
"""


def existing(database: str, run_ids: Sequence[str]) -> Query:
    """Which of these run ids have any stored row."""
    return Query(render(_EXISTING, db=database), {"ids": list(run_ids)})


def final_rows(
    database: str, table: str, names: Sequence[str], run_ids: Sequence[str], timestamps: Iterable[str]
) -> Query:
    """Rows of ``runs`` or ``run_calls`` after ``FINAL`` (cancelled versions collapsed), by run id,
    with every timestamp in ``timestamps`` as ns under its own name."""
    allowed = {"runs": RUN_FIELDS, "run_calls": CALL_FIELDS}[table]
    columns = select_list(checked_columns(names, allowed), timestamps)
    return Query(render(_FINAL, db=database, table=table, columns=columns), {"ids": list(run_ids)})


def hours_written_since(database: str, node: str, since_ns: int) -> Query:
    """Hours (unix seconds) holding run or breakdown rows this node wrote since ``since_ns``."""
    return Query(render(_HOURS_WRITTEN, db=database), {"node": node, "since": since_ns})
