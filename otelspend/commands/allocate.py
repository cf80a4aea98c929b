"""``otelspend allocate``: restate shared-cost allocations for a window; ``otelspend pools check``.

    otelspend allocate --from 2026-11-01 --to 2026-12-01 [--pool vector-db] [--dry-run]
    otelspend pools check pools.yaml

The running server does the work when one answers at ``--api`` (its allocation job holds the
same lock, so nothing interleaves); with nothing listening the store is opened directly.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.rates import parse_when, rfc3339
from otelspend.commands.server_api import add_server_flags, answered_by_server
from otelspend.settings import Settings


def register(sub: Any) -> None:
    """``allocate`` and ``pools check``."""
    parser = sub.add_parser("allocate", help="restate shared-cost allocations of the pool periods in a window")
    parser.add_argument("--from", dest="start", required=True, type=parse_when, help="window start (date or RFC 3339)")
    parser.add_argument("--to", dest="end", required=True, type=parse_when, help="window end, exclusive")
    parser.add_argument("--pool", action="append", default=[], help="only this pool (repeat for several)")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    add_server_flags(parser)
    add_config_flags(parser)
    parser.set_defaults(func=run)
    pools = sub.add_parser("pools", help="cost-pool files")
    pools_sub = pools.add_subparsers(dest="pools_command", required=True)
    check = pools_sub.add_parser("check", help="validate a cost-pools file (exit 1 when invalid)")
    check.add_argument("file")
    check.set_defaults(func=run_check)


def run(args: argparse.Namespace) -> int:
    """Restate through the server, else offline."""
    settings = settings_from_args(args)
    setup_logging("warning", settings)
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    window = f"[{rfc3339(args.start)}, {rfc3339(args.end)})"
    if not args.offline:
        body = {"from": rfc3339(args.start), "to": rfc3339(args.end), "pools": args.pool, "dry_run": args.dry_run}
        code = answered_by_server(
            args,
            settings,
            "/v1/admin/allocate",
            body,
            "allocating offline",
            lambda url, answer: [
                f"allocated the pool periods overlapping {window} through the server at {url}",
                *summary_lines(answer, args.dry_run),
            ],
        )
        if code is not None:
            return code
    return _offline(settings, args, window)


def _offline(settings: Settings, args: argparse.Namespace, window: str) -> int:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from otelspend.clickhouse.client import Store, StoreUnavailable
    from otelspend.finance.allocation.amounts import PoolAmounts
    from otelspend.finance.allocation.job import Allocator
    from otelspend.finance.allocation.pools import PoolsError, load_cost_rules

    try:
        rules = load_cost_rules(settings.cost_pools)
        store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
        try:
            allocator = Allocator(
                store,
                lambda: rules,
                PoolAmounts(store),
                node=settings.node_id,
                lookback_days=settings.allocation.lookback_days,
                clock=time.time_ns,
            )
            report = allocator.allocate(args.start, args.end, pool_ids=args.pool, dry_run=args.dry_run)
        finally:
            store.close()
    except KeyError as exc:
        print(f"otelspend: no pool {exc.args[0]!r} in {settings.cost_pools}", file=sys.stderr)
        return 1
    except (PoolsError, StoreUnavailable, ClickHouseError) as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    print(f"allocated the pool periods overlapping {window} in {store.describe()}")
    print("\n".join(summary_lines(report.as_dict(), args.dry_run)))
    return 0


def summary_lines(answer: dict[str, Any], dry_run: bool) -> list[str]:
    """One line per period restated (or skipped), then the total rows written."""
    lines = []
    for item in answer["periods"]:
        if item["skipped"]:
            lines.append(f"  {item['pool']:<20} {item['period']:<10}  skipped: {item['skipped']}")
            continue
        moved = "unchanged" if not (item["cancelled"] or item["inserted"]) else f"moved {item['moved_usd']} USD"
        lines.append(
            f"  {item['pool']:<20} {item['period']:<10}  {item['amount_usd']} USD over {item['consumers']} consumer(s)"
            f" ({item['rows_in_force']} rows; {item['cancelled']} cancelled, {item['inserted']} new; {moved})"
        )
        if item["unallocated_usd"] not in (None, "0E-15") and item["consumers"] == 0:
            lines.append("      no consumer in the period: shown as (unallocated)")
    verb = "would write" if dry_run else "wrote"
    lines.append(f"  {verb} {answer['rows_written']} row(s) in {answer['seconds']}s")
    return lines


def run_check(args: argparse.Namespace) -> int:
    """Validate a cost-pools file and list what it declares."""
    import datetime as dt

    from otelspend.finance.allocation.pools import PoolsError, load_cost_rules

    try:
        rules = load_cost_rules(args.file)
    except PoolsError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    print(f"cost pools {args.file}: valid, {len(rules.pools)} pool(s), {len(rules.units)} unit(s) ({rules.source})")
    today = dt.datetime.now(dt.UTC).date()
    for pool in rules.pools:
        amount = f"{pool.amount_usd} USD" if pool.amount_usd is not None else f"billed {dict(pool.bill_filter)}"
        due = "  REVIEW DUE" if pool.review <= today else ""
        print(
            f"  {pool.id}: {amount} per {pool.period}, {pool.method} by {pool.by} on {pool.signal}, "
            f"owner {pool.owner}, review {pool.review.isoformat()}, rule {pool.rule_version}{due}"
        )
    for unit in rules.units:
        print(f"  unit {unit.id}: {unit.description}")
    return 0
