"""``otelspend rollups rebuild``: recompute the hourly and daily rollups of whole UTC days from stored runs.

    otelspend rollups rebuild --from 2025-03-01 --to 2025-03-02

If a server answers at ``--api`` (default: the configured ``api.address``), the rebuild
runs there, on its pipeline thread, so it cannot race run emission (and chDB cannot be
opened by a second process on the same data path anyway). If nothing listens there, the
store is opened directly: do that only while no otelspend writes to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.server_api import add_server_flags, answered_by_server
from otelspend.settings import Settings


def parse_when(text: str) -> dt.datetime:
    """A date (UTC midnight) or an RFC 3339 timestamp (no offset = UTC)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date or RFC 3339 timestamp, got {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def register(sub: Any) -> None:
    """Add ``rollups rebuild`` to the command line."""
    parser = sub.add_parser("rollups", help="maintain the hourly and daily rollups")
    actions = parser.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="recompute the rollups of a window (widened to whole UTC days)")
    rebuild.add_argument("--from", dest="start", required=True, type=parse_when, help="window start (date or RFC 3339)")
    rebuild.add_argument("--to", dest="end", required=True, type=parse_when, help="window end, exclusive")
    add_server_flags(rebuild)
    add_config_flags(rebuild)
    rebuild.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``rollups rebuild``: rebuild a window's rollups through the running server's API, or offline."""
    settings = settings_from_args(args)
    setup_logging("warning", settings)
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    if not args.offline:
        body = {"from": args.start.isoformat(), "to": args.end.isoformat()}
        code = answered_by_server(
            args,
            settings,
            "/v1/admin/rollups/rebuild",
            body,
            "rebuilding offline",
            lambda url, answer: [
                f"rebuilt {answer['hours']} rollup hour(s) [{answer['from']}, {answer['to']}) through {url}"
            ],
        )
        if code is not None:
            return code
    return _run_offline(settings, args)


def _run_offline(settings: Settings, args: argparse.Namespace) -> int:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from otelspend.clickhouse.client import Store, StoreUnavailable
    from otelspend.clickhouse.rollups import rebuild_window

    start_s = int(args.start.timestamp())
    end_s = math.ceil(args.end.timestamp())
    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        hours = rebuild_window(store, start_s, end_s)
    except (StoreUnavailable, ClickHouseError) as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"rebuilt {hours} rollup hour(s) in {store.describe()}")
    return 0
