"""``otelspend revenue import FILE``: revenue per tenant / customer per period, from a CSV.

The file is checked here first (every bad line named, nothing sent), then posted to the
running server (``POST /v1/revenue``) when one answers at ``--api``, else written to the store
directly.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.server_api import add_server_flags, answered_by_server


def register(sub: Any) -> None:
    """``revenue import``."""
    parser = sub.add_parser("revenue", help="revenue beside the costs (margin, cost to serve)")
    revenue_sub = parser.add_subparsers(dest="revenue_command", required=True)
    imp = revenue_sub.add_parser("import", help="import revenue lines from a CSV file")
    imp.add_argument("file", help="CSV: period (or period_start, period_end), tenant, customer, feature, revenue_usd")
    add_server_flags(imp)
    add_config_flags(imp)
    imp.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    """Validate, then import through the server or offline."""
    from otelspend.finance.revenue import RevenueError, parse_csv

    settings = settings_from_args(args)
    setup_logging("warning", settings)
    path = Path(args.file)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"otelspend: revenue {path}: cannot read ({exc})", file=sys.stderr)
        return 1
    label = f"{path.name}@{hashlib.sha256(data).hexdigest()[:8]}"
    try:
        lines = parse_csv(text, str(path))
    except RevenueError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    if not args.offline:
        headers = {"Content-Type": "text/csv", "X-Otelspend-File": path.name}
        code = answered_by_server(
            args,
            settings,
            "/v1/revenue",
            data,
            "importing offline",
            lambda url, answer: [f"imported revenue from {path} through the server at {url}", *_lines(answer)],
            headers,
        )
        if code is not None:
            return code
    from otelspend.clickhouse.client import Store
    from otelspend.finance.revenue import store_lines

    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        imported = store_lines(store, lines, label)
    finally:
        store.close()
    print(f"imported revenue from {path} into {store.describe()}")
    print("\n".join(_lines(imported.as_dict())))
    return 0


def _lines(answer: dict[str, Any]) -> list[str]:
    return [
        f"  lines      {answer['lines']} ({answer['days']} days, {answer['first_day']} .. {answer['last_day']})",
        f"  revenue    {answer['revenue_usd']} USD",
        f"  source     {answer['source']}",
    ]
