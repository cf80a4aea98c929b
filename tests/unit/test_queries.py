"""The query modules' conventions (``otelspend.clickhouse.queries``), checked on the text they
produce, without a store: two placeholders only, every bound value supplied, identifiers
from whitelists, each rule stated once, and no SQL anywhere else in the package."""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from otelspend.clickhouse.queries import export, migrations, outcomes, outliers, resources, runs, spans, statements
from otelspend.clickhouse.queries.rollup_plan import Window, plan_for
from otelspend.clickhouse.queries.rollups import AggregateOptions, aggregate_query, rebuild_statements
from otelspend.clickhouse.queries.sql import PLACEHOLDER, Fragment, Params, Query, render
from otelspend.clickhouse.queries.vocabulary import METRICS, PARTIALS, Source

ROOT = Path(__file__).resolve().parents[2]
BOUND = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}")
NS = 10**9
H = 3600 * NS
T0 = 1_750_000_000 * NS // H * H
END = dt.datetime.fromtimestamp((T0 + H) // NS, tz=dt.UTC)
SOURCES: tuple[Source, ...] = ("runs_rollup", "calls_rollup", "runs_daily", "calls_daily", "runs", "run_calls")


def test_render_fills_identifiers_and_leaves_bound_values_to_the_server() -> None:
    sql = render("SELECT {column} FROM {db}.runs WHERE run_id = {id:String}", db="otelspend", column="tenant")
    assert sql == "SELECT tenant FROM otelspend.runs WHERE run_id = {id:String}"
    assert render("{where}", where=Fragment("a = 1 AND b IN {f0:Array(String)}")) == "a = 1 AND b IN {f0:Array(String)}"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({}, "placeholder {db} has no value", id="missing"),
        pytest.param({"db": "x; DROP TABLE spans"}, "is not an identifier", id="not an identifier"),
        pytest.param({"db": "1abc"}, "is not an identifier", id="starts with a digit"),
        pytest.param({"db": "a.b"}, "is not an identifier", id="dotted"),
    ],
)
def test_render_refuses_what_is_not_a_whitelisted_identifier(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        render("SELECT 1 FROM {db}.runs", **values)


def test_generated_parameter_names_never_meet_fixed_ones() -> None:
    params = Params()
    assert params.bind("t", 1, "Int64") == "{t0:Int64}" and params.bind("limit", 2, "UInt32") == "{limit1:UInt32}"
    assert all(any(c.isdigit() for c in name) for name in params.values)


def _queries() -> list[tuple[str, Query]]:
    """Every statement the query modules build, with sample values."""
    filters = (("tenant", ("acme",)), ("model", ("gpt-4o", "o3")))
    page = runs.page("db", T0, T0 + H, filters, order_column="cost_usd", descending=True, limit=51, offset=0)
    found = [
        ("runs.page", page),
        ("runs.records", runs.records("db", ("run_id", "start_time", "cost_usd"), ["a", "b"])),
        ("runs.breakdown", runs.breakdown("db", ("model", "cost_usd", "latencies_ms"), "a")),
        ("runs.of_workflow", runs.of_workflow("db", "wf-1")),
        ("runs.existing", runs.existing("db", ["a"])),
        ("runs.final_rows", runs.final_rows("db", "run_calls", ("run_id", "written_at"), ["a"], {"written_at"})),
        ("runs.hours_written_since", runs.hours_written_since("db", "node-1", T0)),
        ("spans.of_trace", spans.of_trace("db", ("span_id", "start_time", "attributes"), "a")),
        ("spans.of_traces", spans.of_traces("db", ("trace_id", "attributes", "start_time"), ["a"])),
        ("spans.started_in", spans.started_in("db", T0, T0 + H)),
        ("spans.hour_counts", spans.hour_counts("db", T0, T0 + H)),
        ("spans.ingested_since", spans.ingested_since("db", "node-1", T0)),
        ("spans.set_role", spans.set_role("db", "view", 7, [("a", "b")])),
        ("spans.unpriced", spans.unpriced("db", T0, T0 + H, 100)),
        ("outcomes.history", outcomes.history("db", "a", "wf-1")),
        ("outcomes.for_runs", outcomes.for_runs("db", ["a"], ["wf-1", ""])),
        ("outcomes.keys_since", outcomes.keys_since("db", T0)),
        ("resources.attributes", resources.attributes("db", [42, 43])),
        ("outliers.unsuccessful_calls", outliers.unsuccessful_calls("db", T0, T0 + H, 10)),
        ("migrations.applied", migrations.applied("db")),
        ("migrations.record", migrations.record("db", 1, "spans", "abc")),
        ("migrations.has_table", migrations.has_table("db", "spans")),
        ("export.run_days", export.run_days("db", T0, T0 + H)),
        ("export.last_run_end", export.last_run_end("db", T0, T0 + H)),
        *(
            (f"export.charges {grain} owner={owner}", export.charges("db", T0, T0 + H, grain, END, owner_fields=owner))
            for grain in ("hour", "day")
            for owner in (False, True)
        ),
        ("export.unpriced", export.unpriced("db", T0, T0 + H, END)),
        ("export.billed_cells", export.billed_cells("db", T0, T0 + H, "hour")),
        ("statements.owner_billed", statements.owner_billed("db", "cost_center", 0, 3600)),
        ("statements.owner_totals", statements.owner_totals("db", "team", 0, 3600)),
        ("statements.owner_breakdown", statements.owner_breakdown("db", "tenant", "feature", 0, 3600)),
        *(
            (f"rollups.rebuild[{i}]", q)
            for i, q in enumerate(rebuild_statements("db", T0 // 10**9, T0 // 10**9 + 86400))
        ),
    ]
    window = Window(T0 + 5, T0 + 50 * H + 7)
    for group_by, filters_ in (((), ()), (("tenant", "model"), ()), (("tenant",), filters), (("user",), ())):
        plan = plan_for(group_by, filters_)
        for totals in (False, True) if group_by else (False,):
            sql, params, _ = aggregate_query(
                "db",
                plan,
                window,
                group_by,
                list(METRICS),
                filters_,
                AggregateOptions(order=[("cost_usd", True)], limit=5, totals=totals),
            )
            found.append((f"rollups.aggregate {group_by} totals={totals}", Query(sql, params)))
    return found


@pytest.mark.parametrize(("name", "query"), _queries())
def test_every_statement_binds_what_it_names_and_fills_every_identifier(name: str, query: Query) -> None:
    left = PLACEHOLDER.findall(query.sql)
    assert not left, f"{name}: unfilled placeholders {left}"
    named = {match[0] for match in BOUND.findall(query.sql)}
    assert named == set(query.parameters), f"{name}: bound {sorted(named)}, supplied {sorted(query.parameters)}"
    assert "%s" not in query.sql and "@" not in query.sql


def test_the_ttl_statement_writes_an_integer_and_the_bookkeeping_ddl_is_shared() -> None:
    assert migrations.spans_ttl("db", 30) == "ALTER TABLE db.spans MODIFY TTL toDateTime(start_time) + INTERVAL 30 DAY"
    clustered = migrations.spans_ttl("db", 7, "c1")
    assert clustered.startswith("ALTER TABLE db.spans_local ON CLUSTER 'c1' MODIFY TTL")
    assert migrations.create_schema_migrations("db").startswith("CREATE TABLE IF NOT EXISTS db.schema_migrations ")


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: runs.records("db", ("run_id", "nope"), ["a"]), id="runs.records"),
        pytest.param(lambda: runs.breakdown("db", ("tenant; DROP",), "a"), id="runs.breakdown"),
        pytest.param(lambda: spans.of_trace("db", ("span_id", "cost"), "a"), id="spans.of_trace"),
        pytest.param(
            lambda: runs.page("db", 0, 1, (), order_column="1; --", descending=True, limit=1, offset=0),
            id="runs.page order column",
        ),
        pytest.param(lambda: runs.in_force("run_id", "sign)"), id="runs.in_force"),
    ],
)
def test_column_names_come_from_the_tables_columns_only(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="not columns of the table"):
        build()


@pytest.mark.parametrize("partial", list(PARTIALS))
def test_vocabulary_fragments_use_the_one_placeholder_syntax(partial: str) -> None:
    p = PARTIALS[partial]
    assert PLACEHOLDER.findall(p.outer) == ["value"], p.outer
    assert BOUND.findall(p.outer) == []
    for source in SOURCES:
        fragment = p.expression(source)
        assert set(PLACEHOLDER.findall(fragment)) <= {"call_dimension"}, (source, fragment)
        assert {name for name, _ in BOUND.findall(fragment)} <= {"subset"}, (source, fragment)
        assert "%" not in fragment and "@" not in fragment, (source, fragment)
        if "{call_dimension}" in fragment:
            assert render(fragment, call_dimension="model").count("_by_model") == 1


@pytest.mark.parametrize("metric", list(METRICS))
def test_metric_expressions_name_their_partials_as_placeholders(metric: str) -> None:
    m = METRICS[metric]
    assert set(PLACEHOLDER.findall(m.expr)) == set(m.partials), m.expr
    assert BOUND.findall(m.expr) == [] and not re.search(r"\ba_\w", m.expr)


def test_the_rows_in_force_rule_is_stated_once() -> None:
    assert runs.RUNS_IN_FORCE == "GROUP BY run_id HAVING sum(sign) > 0"
    stated = [
        path.relative_to(ROOT).as_posix()
        for path in _package_files()
        if "HAVING sum(sign)" in path.read_text() or "sum(sign) > 0" in path.read_text()
    ]
    assert stated == ["clickhouse/queries/runs.py"]
    assert runs.current([("r", 1, 1), ("r", 1, -1), ("r", 2, 1)], 2) == [("r", 2)]


SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT INTO\b|\bALTER TABLE\b|\bCREATE (?:TABLE|DATABASE|MATERIALIZED VIEW)\b"
    r"|\bDROP (?:TABLE|VIEW)\b|\bTRUNCATE TABLE\b|\bOPTIMIZE TABLE\b|\bHAVING\b|\bSELECT 1\b"
)
SQL_HOMES = ("clickhouse/",)
"""The one folder whose modules may hold SQL text (the query modules, the store client's own
database and memory statements, the cluster rendering of the migrations)."""


def _package_files() -> list[Path]:
    folders = ("otelspend", "receiver", "enrich", "pipeline", "clickhouse", "api", "finance", "controls")
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_sql_lives_in_clickhouse_only() -> None:
    found = []
    for path in _package_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(SQL_HOMES):
            continue
        found += [f"{relative}:{line}: {text.strip()[:80]!r}" for line, text in _strings(path) if SQL.search(text)]
    assert not found, "SQL outside clickhouse/ (put it in a clickhouse/queries module):\n" + "\n".join(found)


def test_outside_the_query_modules_clickhouse_holds_only_its_own_plumbing() -> None:
    allowed = {"clickhouse/client.py", "clickhouse/cluster.py"}
    found = []
    for path in sorted((ROOT / "clickhouse").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("clickhouse/queries/") or relative in allowed:
            continue
        found += [f"{relative}:{line}" for line, text in _strings(path) if SQL.search(text)]
    assert not found, found
