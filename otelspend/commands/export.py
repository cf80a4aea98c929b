"""``otelspend export``: the ledger as a FOCUS file, and a FOCUS validator.

    otelspend export focus --from 2026-11-01 --to 2026-12-01 --out november.csv [--granularity hour]
    otelspend export focus --from 2026-11-01 --to 2026-12-01 --out november.parquet
    otelspend export validate november.csv

``focus`` downloads ``GET /v1/export/focus`` from the running server when one answers at
``--api`` (chDB opens a data path in one process only); when nothing listens it reads the store
directly (offline). The format follows ``--format``, else the file's suffix. ``validate``
checks any FOCUS 1.2 / 1.3 file (CSV or Parquet) and exits 1 when a MUST rule is broken.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.rates import parse_when, rfc3339
from otelspend.commands.server_api import ApiError, add_server_flags, open_server
from otelspend.settings import Settings

CHUNK = 1 << 20


def register(sub: Any) -> None:
    """Add ``otelspend export focus`` and ``otelspend export validate``."""
    parser = sub.add_parser("export", help="export the ledger as FOCUS; validate FOCUS files")
    actions = parser.add_subparsers(dest="export_command", required=True)

    focus = actions.add_parser("focus", help="write the FOCUS rows of a window to a file (CSV or Parquet)")
    focus.add_argument("--from", dest="start", required=True, type=parse_when, help="window start (date or RFC 3339)")
    focus.add_argument("--to", dest="end", required=True, type=parse_when, help="window end, exclusive")
    focus.add_argument("--out", required=True, type=Path, help="file to write (.csv or .parquet)")
    focus.add_argument("--granularity", choices=["hour", "day"], default="day", help="charge period of the rows")
    focus.add_argument("--format", choices=["csv", "parquet"], help="default: from the --out suffix, else csv")
    add_server_flags(focus)
    add_config_flags(focus)
    focus.set_defaults(func=run_focus)

    check = actions.add_parser("validate", help="check a FOCUS file against the specification's rules")
    check.add_argument("file", type=Path, help="FOCUS file (.csv or .parquet)")
    check.add_argument("--focus-version", choices=["1.2", "1.3"], help="default: 1.3 when its columns are there")
    check.set_defaults(func=run_validate)


def _format(args: argparse.Namespace) -> str:
    return str(args.format or ("parquet" if args.out.suffix.lower() in (".parquet", ".pq") else "csv"))


def run_focus(args: argparse.Namespace) -> int:
    """``otelspend export focus``: through the running server's API, else offline."""
    settings = settings_from_args(args)
    setup_logging("warning", settings)
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    fmt = _format(args)
    window = f"[{rfc3339(args.start)}, {rfc3339(args.end)})"
    if not args.offline:
        try:
            done = _download(args, settings, fmt)
        except ApiError as exc:
            print(f"otelspend: {exc}", file=sys.stderr)
            return 1
        if done is not None:
            url, size, unpriced_calls = done
            print(f"wrote {args.out} ({fmt}, {size} bytes): runs that started in {window}, through the server at {url}")
            _print_unpriced(unpriced_calls)
            return 0
    return _offline(args, settings, fmt, window)


def _download(args: argparse.Namespace, settings: Settings, fmt: str) -> tuple[str, int, str] | None:
    """Stream the server's export into ``args.out``; None when no server listens."""
    from otelspend.finance.export.schedule import write_atomically

    query = urllib.parse.urlencode(
        {"from": rfc3339(args.start), "to": rfc3339(args.end), "granularity": args.granularity, "format": fmt}
    )
    opened = open_server(args, settings, f"/v1/export/focus?{query}", "exporting offline")
    if opened is None:
        return None
    url, response = opened
    with response:
        unpriced_calls = response.headers.get("X-Otelspend-Unpriced-Calls", "0")
        try:
            size = write_atomically(args.out, iter(lambda: response.read(CHUNK), b""))
        except (http.client.HTTPException, OSError) as exc:
            # The server failed after the body had begun (a 200 is already sent): the connection is
            # cut without the last chunk. The temporary file is gone; say so instead of a traceback.
            raise ApiError(
                f"the export from {url} broke off ({type(exc).__name__}); {args.out} was not written "
                "(the server's log says why)"
            ) from None
    return url, size, unpriced_calls


def _offline(args: argparse.Namespace, settings: Settings, fmt: str, window: str) -> int:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from otelspend.clickhouse.client import Store, StoreUnavailable
    from otelspend.finance.export.schedule import write_atomically
    from otelspend.finance.export.service import ExportTotals, export, request_from_settings, unpriced_calls

    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        request = request_from_settings(
            settings.export, args.start, args.end, args.granularity, store=store, billing_settings=settings.billing
        )
        totals = ExportTotals()
        size = write_atomically(args.out, export(store, request, fmt, totals))  # type: ignore[arg-type]
        missing = unpriced_calls(store, args.start, args.end)
    except (StoreUnavailable, ClickHouseError) as exc:
        print(f"otelspend: {store.scrub(str(exc))}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"wrote {args.out} ({fmt}, {size} bytes, {totals.rows} rows): runs that started in {window}, offline")
    _print_unpriced(str(missing.get("calls", 0)))
    return 0


def _print_unpriced(calls: str) -> None:
    if calls not in ("", "0"):
        print(f"  {calls} call(s) in the window have no price and are not in the file (GET /v1/unpriced lists them)")


def run_validate(args: argparse.Namespace) -> int:
    """``otelspend export validate FILE``: exit 1 when a MUST rule is broken."""
    from otelspend.finance.export.validate import validate_file

    if not args.file.is_file():
        print(f"otelspend: {args.file}: no such file", file=sys.stderr)
        return 2
    report = validate_file(args.file, version=args.focus_version)
    print(report.summary())
    return 0 if report.ok else 1
