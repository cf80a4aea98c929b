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
import contextlib
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.rates import parse_when, rfc3339
from otelspend.settings import Settings, split_address

HTTP_TIMEOUT_SECONDS = 3700.0
"""The server allows a re-price an hour on its pipeline; wait a little longer than that."""


def register(sub: Any) -> None:
    parser = sub.add_parser("reprice", help="recompute stored costs for a window after a rate-card change")
    parser.add_argument("--from", dest="start", required=True, type=parse_when, help="window start (date or RFC 3339)")
    parser.add_argument("--to", dest="end", required=True, type=parse_when, help="window end, exclusive")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    parser.add_argument("--api", help="running server's API base URL (default: http://<api.address>)")
    parser.add_argument("--token", help="API bearer token (default: the first of api.tokens)")
    parser.add_argument("--offline", action="store_true", help="do not try the API; open the store directly")
    add_config_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    setup_logging("warning")
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    window = f"[{rfc3339(args.start)}, {rfc3339(args.end)})"
    if not args.offline:
        url = (args.api or default_api_url(settings)).rstrip("/")
        token = args.token or (settings.api.tokens[0] if settings.api.tokens else None)
        try:
            answer = _post(f"{url}/v1/admin/reprice", args, token)
        except ConnectionRefusedError:
            print(f"no otelspend server answers at {url}; re-pricing offline", file=sys.stderr)
        except _ApiError as exc:
            print(f"otelspend: {url} answered {exc}", file=sys.stderr)
            return 1
        else:
            print(f"re-priced spans that started in {window} through the server at {url}")
            print("\n".join(summary_lines(answer)))
            return 0
    return _run_offline(settings, args, window)


def _run_offline(settings: Settings, args: argparse.Namespace, window: str) -> int:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from otelspend.clickhouse.client import StoreUnavailable
    from otelspend.enrich.ratecard import RateCardError
    from otelspend.reprice import RepriceError, reprice_offline

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


def default_api_url(settings: Settings) -> str:
    """The configured API address as a URL a client can reach (wildcard binds -> loopback)."""
    host, port = split_address(settings.api.address)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _ApiError(RuntimeError):
    pass


def _post(url: str, args: argparse.Namespace, token: str | None) -> dict[str, Any]:
    body = json.dumps({"from": rfc3339(args.start), "to": rfc3339(args.end), "dry_run": args.dry_run}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("detail", detail)
        raise _ApiError(f"{exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            raise exc.reason from None
        raise _ApiError(str(exc.reason)) from None


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
