"""``otelspend rollups rebuild``: recompute the hourly rollups of a window from stored runs.

    otelspend rollups rebuild --from 2025-03-01 --to 2025-03-02

If a server answers at ``--api`` (default: the configured ``api.address``), the rebuild
runs there, on its pipeline thread, so it cannot race run emission (and chDB cannot be
opened by a second process on the same data path anyway). If nothing listens there, the
store is opened directly: do that only while no otelspend writes to it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import sys
import urllib.error
import urllib.request
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.settings import Settings, split_address

HTTP_TIMEOUT_SECONDS = 3700.0
"""The server allows a rebuild an hour on its pipeline; wait a little longer than that."""


def parse_when(text: str) -> dt.datetime:
    """A date (UTC midnight) or an RFC 3339 timestamp (no offset = UTC)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date or RFC 3339 timestamp, got {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def register(sub: Any) -> None:
    parser = sub.add_parser("rollups", help="maintain the hourly rollups")
    actions = parser.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="recompute the rollups of a window (widened to whole hours)")
    rebuild.add_argument("--from", dest="start", required=True, type=parse_when, help="window start (date or RFC 3339)")
    rebuild.add_argument("--to", dest="end", required=True, type=parse_when, help="window end, exclusive")
    rebuild.add_argument("--api", help="running server's API base URL (default: http://<api.address>)")
    rebuild.add_argument("--token", help="API bearer token (default: the first of api.tokens)")
    rebuild.add_argument("--offline", action="store_true", help="do not try the API; open the store directly")
    add_config_flags(rebuild)
    rebuild.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    setup_logging("warning")
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    if not args.offline:
        url = (args.api or default_api_url(settings)).rstrip("/")
        token = args.token or (settings.api.tokens[0] if settings.api.tokens else None)
        try:
            answer = _post(f"{url}/v1/admin/rollups/rebuild", args, token)
        except ConnectionRefusedError:
            print(f"no otelspend server answers at {url}; rebuilding offline", file=sys.stderr)
        except _ApiError as exc:
            print(f"otelspend: {url} answered {exc}", file=sys.stderr)
            return 1
        else:
            print(f"rebuilt {answer['hours']} rollup hour(s) [{answer['from']}, {answer['to']}) through {url}")
            return 0
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


def default_api_url(settings: Settings) -> str:
    """The configured API address as a URL a client can reach (wildcard binds -> loopback)."""
    host, port = split_address(settings.api.address)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _ApiError(RuntimeError):
    pass


def _post(url: str, args: argparse.Namespace, token: str | None) -> dict[str, Any]:
    body = json.dumps({"from": args.start.isoformat(), "to": args.end.isoformat()}).encode()
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
