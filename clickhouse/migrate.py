"""Ordered, idempotent schema migrations shipped as package data.

``migrations/NNNN_name.sql`` files run in order; ``{db}`` is the database name. Each
statement is ``CREATE ... IF NOT EXISTS`` (or otherwise safe to repeat), and every applied
file is recorded with its checksum in ``schema_migrations``, so a restart applies nothing
twice and an edited, already-applied file stops the start (add a new file instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries import migrations as queries

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The schema cannot be brought up to date: a migration failed, or one already applied has changed."""

    pass


@dataclass(frozen=True)
class Migration:
    """One numbered schema file (``migrations/NNNN_name.sql``), applied once, in order."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Short SHA-256 of the file, recorded when applied: a changed file is refused, not re-run."""
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        """The file's statements for ``database`` (comment lines dropped, ``{db}`` filled)."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        text = text.replace("{db}", database)
        return [statement.strip() for statement in text.split(";") if statement.strip()]


def load_migrations() -> list[Migration]:
    """Every packaged migration in version order (a gap or a repeated version is an error)."""
    folder = resources.files("otelspend.clickhouse").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Numbers are reserved per feature (COMMON.md), so a branch may lack a lower one for a
    # while: unique and increasing is the invariant; a gap is allowed.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise MigrationError(f"migration versions must be unique and start at 1 or above, found {versions}")
    return found


def applied_migrations(store: Store) -> dict[int, str]:
    """Version -> checksum of every migration the store has applied."""
    rows = store.rows(*queries.applied(store.database))
    return {int(version): checksum for version, checksum in rows}


def migrate(store: Store, cluster: str | None = None) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now.

    With ``cluster``, the replicated ON CLUSTER rendering is applied instead
    (otelspend.clickhouse.cluster).
    """
    from otelspend.clickhouse import cluster as cluster_ddl

    db = store.database
    migrations = load_migrations()
    tables = set(cluster_ddl.table_names(migrations))
    if cluster:
        store.ensure_database(cluster)
        for statement in cluster_ddl.schema_migrations_statements(db, cluster):
            store.command(statement)
    else:
        store.ensure_database()
        store.command(queries.create_schema_migrations(db))
    done = applied_migrations(store)
    applied = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} changed after it was applied "
                    f"(checksum {done[migration.version]} -> {migration.checksum}); add a new migration instead"
                )
            continue
        if cluster:
            statements = cluster_ddl.migration_statements(migration, tables, db, cluster)
        else:
            statements = migration.statements(db)
        for statement in statements:
            store.command(statement)
        store.command(*queries.record(db, migration.version, migration.name, migration.checksum))
        applied.append(migration)
    return applied


def apply_spans_ttl(store: Store, days: int | None, cluster: str | None = None) -> None:
    """Keep raw spans ``days`` days (runs and rollups are unaffected); None keeps them.

    With ``cluster`` the TTL goes on the replicated ``spans_local`` tables, ON CLUSTER.
    """
    if days is None:
        return
    store.command(queries.spans_ttl(store.database, days, cluster))
