"""The schema's own bookkeeping: which migrations ran (``schema_migrations``), whether a table
exists, and the raw-span retention (TTL). The schema itself is ``clickhouse/migrations/*.sql``."""

from __future__ import annotations

from otelspend.clickhouse.queries.sql import Fragment, Query, render

SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
    "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) "
    "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
)
"""DDL of the bookkeeping table, with ``{db}`` left in (the cluster rendering rewrites it)."""
_APPLIED = "SELECT version, argMax(checksum, applied_at) FROM {db}.schema_migrations GROUP BY version"
_RECORD = (
    "INSERT INTO {db}.schema_migrations (version, name, checksum, applied_at) "
    "VALUES ({version:UInt32}, {name:String}, {checksum:String}, now64(3))"
)
_HAS_TABLE = "SELECT count() FROM system.tables WHERE database = {database:String} AND name = {table:String}"
_SPANS_TTL = "ALTER TABLE {target} MODIFY TTL toDateTime(start_time) + INTERVAL {days} DAY"


def create_schema_migrations(database: str) -> str:
    """The bookkeeping table on a single server."""
    return render(SCHEMA_MIGRATIONS, db=database)


def applied(database: str) -> Query:
    """``(version, checksum)`` of every applied migration (the latest record of each)."""
    return Query(render(_APPLIED, db=database), {})


def record(database: str, version: int, name: str, checksum: str) -> Query:
    """Record a migration as applied now."""
    return Query(render(_RECORD, db=database), {"version": version, "name": name, "checksum": checksum})


def has_table(database: str, table: str) -> Query:
    """1 when ``database.table`` exists, else 0."""
    return Query(_HAS_TABLE, {"database": database, "table": table})


def spans_ttl(database: str, days: int, cluster: str | None = None) -> str:
    """Drop raw spans ``days`` days after they started (on a cluster: the shard-local tables,
    ON CLUSTER). The table keeps the TTL expression itself, so ``days`` is written into it as
    an integer literal rather than bound."""
    target = f"{database}.spans" if not cluster else f"{database}.spans_local ON CLUSTER '{cluster}'"
    return render(_SPANS_TTL, target=Fragment(target), days=Fragment(str(int(days))))
