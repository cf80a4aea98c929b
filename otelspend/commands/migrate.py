"""``otelspend migrate``: apply schema migrations (serve applies them too)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging


def register(sub: Any) -> None:
    """Add ``migrate`` to the command line."""
    parser = sub.add_parser("migrate", help="apply schema migrations (serve does this too)")
    add_config_flags(parser)
    parser.add_argument(
        "--print-cluster-ddl",
        metavar="CLUSTER",
        help="print the replicated ON CLUSTER schema for CLUSTER (nothing is executed)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``migrate``: apply pending migrations (or print the ON CLUSTER schema); 2 when a migration fails."""
    from otelspend.clickhouse.client import Store
    from otelspend.clickhouse.cluster import render_cluster
    from otelspend.clickhouse.migrate import MigrationError, load_migrations, migrate

    settings = settings_from_args(args)
    if args.print_cluster_ddl:
        for statement in render_cluster(load_migrations(), settings.clickhouse.database, args.print_cluster_ddl):
            print(statement.rstrip() + ";\n")
        return 0
    setup_logging(settings.log_level, settings)
    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        applied = migrate(store, settings.clickhouse.cluster)
    except MigrationError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in applied))
    return 0
