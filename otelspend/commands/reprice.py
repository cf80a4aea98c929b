"""``otelspend reprice``: recompute stored costs for a window after a rate-card change.

    otelspend reprice --from 2025-03-01 --to 2025-04-01 [--dry-run]

If a server answers at ``--api`` (default: the configured ``api.address``), it does the
work on its own pipeline (chDB cannot be opened by a second process on the same data
path, and only the server's pipeline may touch its open runs). If nothing listens there,
the store is opened directly (offline), with the rate card, ownership rules and store of
the settings.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries.migrations import has_table
from otelspend.clickhouse.runstore import RunStore
from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.rates import parse_when, rfc3339
from otelspend.commands.server_api import add_server_flags, answered_by_server
from otelspend.enrich.ownership import OwnershipRules, load_ownership
from otelspend.enrich.pricing import PriceBook
from otelspend.enrich.runs import RunOptions
from otelspend.pipeline.reprice import RepriceError, RepriceResult, RepriceTarget, reprice_window
from otelspend.pipeline.resources import StoredResourceAttributes
from otelspend.settings import Settings


def register(sub: Any) -> None:
    """Add ``reprice`` to the command line."""
    parser = sub.add_parser("reprice", help="recompute stored costs for a window after a rate-card change")
    parser.add_argument("--from", dest="start", required=True, type=parse_when, help="window start (date or RFC 3339)")
    parser.add_argument("--to", dest="end", required=True, type=parse_when, help="window end, exclusive")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    add_server_flags(parser)
    add_config_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``reprice``: re-price a window through the running server's API, or offline on the store."""
    settings = settings_from_args(args)
    setup_logging("warning", settings)
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    window = f"[{rfc3339(args.start)}, {rfc3339(args.end)})"
    if not args.offline:
        body = {"from": rfc3339(args.start), "to": rfc3339(args.end), "dry_run": args.dry_run}
        code = answered_by_server(
            args,
            settings,
            "/v1/admin/reprice",
            body,
            "re-pricing offline",
            lambda url, answer: [
                f"re-priced spans that started in {window} through the server at {url}",
                *summary_lines(answer),
            ],
        )
        if code is not None:
            return code
    return _run_offline(settings, args, window)


def _run_offline(settings: Settings, args: argparse.Namespace, window: str) -> int:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from otelspend.clickhouse.client import StoreUnavailable
    from otelspend.enrich.ratecard import RateCardError
    from otelspend.pipeline.reprice import RepriceError

    try:
        result = reprice_offline(settings, args.start, args.end, dry_run=args.dry_run)
    except (RateCardError, RepriceError, StoreUnavailable, ClickHouseError) as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    print(
        f"re-priced spans that started in {window} in {settings.clickhouse.dsn} database {settings.clickhouse.database}"
    )
    print("\n".join(summary_lines(result.as_dict())))
    return 0


def reprice_offline(settings: Settings, start_ns: int, end_ns: int, *, dry_run: bool = False) -> RepriceResult:
    """Re-price with no server running on the store: everything built from ``settings``."""
    book = PriceBook.from_file(settings.rate_card)
    ownership = load_ownership(settings.ownership) if settings.ownership else OwnershipRules()
    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        if not store.scalar(*has_table(settings.clickhouse.database, "spans")):
            raise RepriceError(f"no spans table in {store.describe()} (nothing ingested there yet?)")
        options = RunOptions(
            retry_loop_threshold=settings.runs.retry_loop_threshold,
            ownership=ownership,
            resource_attributes=StoredResourceAttributes(store),
        )
        target = RepriceTarget(store, RunStore(store), settings.node_id, lambda: options)
        return reprice_window(target, book, start_ns, end_ns, dry_run=dry_run)
    finally:
        store.close()


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The re-price result as aligned lines (same for API and offline)."""
    verb = "would change" if result["dry_run"] else "changed"
    lines = [
        f"  spans scanned         {result['spans_scanned']}",
        f"  spans {verb:<15} {result['spans_repriced']} ({result['calls_repriced']} counted calls)",
        f"  cost of those calls   {result['cost_before_usd']} -> {result['cost_after_usd']} USD "
        f"(delta {result['cost_delta_usd']})",
        f"  runs affected         {result['runs_affected']}",
    ]
    if not result["dry_run"]:
        lines.append(
            f"  runs re-emitted       {result['runs_reemitted']} "
            f"({result['runs_unchanged']} unchanged, {result['runs_open']} still open: updated when they close)"
        )
    for source, count in sorted(result["sources"].items()):
        lines.append(f"  now priced by         {source}: {count} span(s)")
    if result["dry_run"]:
        lines.append("  dry run: nothing was written")
    return lines
