"""Render the migrations for a ClickHouse cluster (the scale-out path).

The same migration files, rewritten statement by statement:

* every table ``T`` becomes ``T_local`` created ``ON CLUSTER`` with the Replicated variant of
  its engine (``/clickhouse/tables/{shard}/<db>/T_local``, ``{replica}`` macros), plus a
  ``Distributed`` table named ``T`` over it, so the application keeps using the names it
  always uses;
* rows are sharded by trace: ``cityHash64(trace_id)`` for spans, ``cityHash64(run_id)`` for
  runs, run breakdowns and outcomes — a run and all its spans live on one shard, so
  ReplacingMergeTree / VersionedCollapsingMergeTree collapse correctly and FINAL is exact;
* Null feed tables and materialized views stay local to each shard (an insert through the
  Distributed table lands on the shard's local table, whose views fill the shard's local
  rollups); reading the Distributed rollups merges the aggregate states of every shard.

Pair it with several otelspend replicas behind the Collector's loadbalancing exporter
(``routing_key: traceID``), so every span of a trace reaches the same replica.
"""

from __future__ import annotations

import re

from otelspend.clickhouse.migrate import Migration
from otelspend.clickhouse.queries.migrations import SCHEMA_MIGRATIONS

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\b", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.(\w+)\b", re.IGNORECASE)
_OTHER_DDL = re.compile(
    r"^(?:ALTER TABLE|DROP VIEW IF EXISTS|DROP TABLE IF EXISTS|TRUNCATE TABLE IF EXISTS) \{db\}\.(\w+)\b",
    re.IGNORECASE,
)
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?")
_SHARDING_KEYS = {
    "spans": "trace_id", "resources": "resource_id", "schema_migrations": "version",
    "alerts": "id", "alert_deliveries": "event_id", "budgets": "id",
    # A restated allocation (cancel + new row) and a re-imported revenue day collapse on one shard.
    "allocations": "cityHash64(pool, period_start, consumer, run_id)",
    "revenue": "cityHash64(tenant, customer, feature, day)",
}  # fmt: skip
"""Replacing tables are sharded by their key, so a row and its replacement meet on one shard."""


def table_names(migrations: list[Migration]) -> list[str]:
    """Every table the migrations create, in order."""
    names = []
    for migration in migrations:
        for statement in migration.statements("{db}"):
            match = _CREATE_TABLE.match(statement)
            if match:
                names.append(match.group(1))
    return names


def render_cluster(migrations: list[Migration], database: str, cluster: str) -> list[str]:
    """Every statement creating the otelspend schema on ``cluster`` (each safe to repeat)."""
    tables = set(table_names(migrations))
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER '{cluster}'"]
    statements += schema_migrations_statements(database, cluster)
    for migration in migrations:
        statements += migration_statements(migration, tables, database, cluster)
    return statements


def schema_migrations_statements(database: str, cluster: str) -> list[str]:
    """The replicated ``schema_migrations`` table (and its distributed table) on ``cluster``."""
    return _table(SCHEMA_MIGRATIONS, {"schema_migrations"}, database, cluster)


def migration_statements(migration: Migration, tables: set[str], database: str, cluster: str) -> list[str]:
    """One migration's statements for the cluster; ``tables`` names every otelspend table."""
    out = []
    for statement in migration.statements("{db}"):
        if _CREATE_TABLE.match(statement):
            out += _table(statement, tables, database, cluster)
        elif _CREATE_VIEW.match(statement):
            out.append(_local(_on_cluster(statement, cluster, view=True), tables, database))
        else:
            out.append(_local(_on_cluster(statement, cluster), tables, database))
    return out


def _table(statement: str, tables: set[str], database: str, cluster: str) -> list[str]:
    name = _CREATE_TABLE.match(statement).group(1)  # type: ignore[union-attr]
    local = _local(_on_cluster(statement, cluster), tables, database)
    engine = _ENGINE.search(local)
    if engine is None:  # Null feeds: local only, never written through a Distributed table
        return [local]
    family, args = engine.group(1), engine.group(2)
    path = f"'/clickhouse/tables/{{shard}}/{database}/{name}_local', '{{replica}}'"
    replicated = f"ENGINE = Replicated{family}({path}{', ' + args if args else ''})"
    local = local[: engine.start()] + replicated + local[engine.end() :]
    key = _SHARDING_KEYS.get(name, "run_id" if name.startswith(("run", "outcome")) else "rand()")
    sharding = key if key.endswith(")") else f"cityHash64({key})"
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER '{cluster}' AS {database}.{name}_local "
        f"ENGINE = Distributed('{cluster}', '{database}', '{name}_local', {sharding})"
    )
    return [local, distributed]


def _on_cluster(statement: str, cluster: str, *, view: bool = False) -> str:
    """Add ON CLUSTER after the object name of a DDL statement. Data statements (INSERT ...
    SELECT in a migration that rebuilds a rollup) stay local: they act on the shard of the
    node running the migration, so on an existing cluster run them on every shard."""
    pattern = _CREATE_VIEW if view else _CREATE_TABLE
    match = pattern.match(statement) or _OTHER_DDL.match(statement)
    if match is None:
        return statement
    return statement[: match.end()] + f" ON CLUSTER '{cluster}'" + statement[match.end() :]


def _local(statement: str, tables: set[str], database: str) -> str:
    """Point every reference to an otelspend table at its shard-local table."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{database}.{name}_local" if name in tables else f"{database}.{name}"

    return re.sub(r"\{db\}\.(\w+)", replace, statement)
