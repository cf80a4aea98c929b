"""``otelspend billing``: import provider bills, pull them from admin APIs, reconcile.

    otelspend billing import FILE... [--format auto] [--account ID] [--no-reconcile]
    otelspend billing pull --provider openai|anthropic --since DATE [--until DATE]
    otelspend billing reconcile --from DATE --to DATE
    otelspend billing imports [--limit N]

Like ``reprice``, each asks the running server first (chDB opens a data path in one process
only): files are uploaded to ``POST /v1/billing/imports``. With nothing listening (or
``--offline``) the store is opened directly. Every file is imported on its own, all or
nothing; the exit status is 1 if any was refused. Admin keys come from the settings
(``billing.openai_admin_key``, ``billing.anthropic_admin_key``) and are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.rollups import parse_when
from otelspend.commands.server_api import HTTP_TIMEOUT_SECONDS, ApiError, add_server_flags, default_api_url
from otelspend.settings import Settings

FORMATS = ("auto", "openai_costs", "openai_usage", "anthropic_cost", "anthropic_usage", "focus", "aws_cur")


def register(sub: Any) -> None:
    """Add ``otelspend billing`` and its actions to the command line."""
    parser = sub.add_parser("billing", help="import provider bills, pull them from admin APIs, reconcile")
    actions = parser.add_subparsers(dest="action", required=True)

    imports = actions.add_parser("import", help="import billing export files (all or nothing per file)")
    imports.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imports.add_argument("--format", default="auto", choices=FORMATS, help="export format (default: recognise it)")
    imports.add_argument("--account", default="", help="billing account the files belong to, when they do not say")
    imports.add_argument("--no-reconcile", action="store_true", help="do not reconcile the days the files touch")
    imports.set_defaults(func=run_import)

    pull = actions.add_parser("pull", help="pull usage and cost from a provider's admin API and import them")
    pull.add_argument("--provider", required=True, choices=("openai", "anthropic"))
    pull.add_argument("--since", required=True, type=parse_when, help="first day (date or RFC 3339)")
    pull.add_argument("--until", type=parse_when, help="end, exclusive (default: now)")
    pull.add_argument("--no-reconcile", action="store_true", help="do not reconcile the days pulled")
    pull.set_defaults(func=run_pull)

    again = actions.add_parser("reconcile", help="reconcile (again) the days of a window with the bill in force")
    again.add_argument("--from", dest="start", required=True, type=parse_when, help="first day (date or RFC 3339)")
    again.add_argument("--to", dest="end", required=True, type=parse_when, help="end, exclusive")
    again.set_defaults(func=run_reconcile)

    listing = actions.add_parser("imports", help="list the imports, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=run_list)

    for action in (imports, pull, again, listing):
        add_server_flags(action)
        add_config_flags(action)


# -- talking to the server ------------------------------------------------------------------------


def _request(
    args: argparse.Namespace, settings: Settings, method: str, path: str, *, body: Any = None, headers: Any = None
) -> tuple[str, Any] | None:
    """(base URL, JSON answer) from the server, or None when nothing listens there."""
    url = (args.api or default_api_url(settings)).rstrip("/")
    token = args.token or (settings.api.tokens[0].get_secret_value() if settings.api.tokens else None)
    request = urllib.request.Request(f"{url}{path}", data=body, method=method, headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return url, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail: Any = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("detail", detail)
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            detail = detail[0].get("msg", detail)
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        raise ApiError(f"{url} answered {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None
        raise ApiError(f"{url} answered {exc.reason}") from None


def _upload(
    args: argparse.Namespace, settings: Settings, path: Path, format: str, name: str, reconcile: bool
) -> tuple[str, dict[str, Any]] | None:
    query = urllib.parse.urlencode(
        {"format": format, "name": name, "account": getattr(args, "account", ""), "reconcile": str(reconcile).lower()}
    )
    with path.open("rb") as body:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
        return _request(args, settings, "POST", f"/v1/billing/imports?{query}", body=body, headers=headers)


class _Offline:
    """The store opened directly (migrated first: it may never have been served)."""

    def __init__(self, settings: Settings) -> None:
        from otelspend.clickhouse.client import Store
        from otelspend.clickhouse.migrate import migrate

        self.store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
        migrate(self.store)

    def close(self) -> None:
        self.store.close()


def _options(settings: Settings) -> Any:
    from otelspend.finance.billing.days import Options

    return Options.from_settings(settings.billing)


def _errors() -> tuple[type[BaseException], ...]:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from otelspend.clickhouse.client import StoreUnavailable
    from otelspend.finance.billing.accounts import AccountMapError
    from otelspend.finance.billing.lines import BillingImportError

    return (BillingImportError, AccountMapError, StoreUnavailable, ClickHouseError, ApiError, OSError)


# -- import -------------------------------------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    """``billing import``: import files through the running server, else into the store directly."""
    settings = settings_from_args(args)
    setup_logging("warning")
    importer, where, close = _importer(args, settings, reconcile=not args.no_reconcile)
    failed = 0
    try:
        for path in args.files:
            if not path.is_file():
                print(f"otelspend: {path}: no such file", file=sys.stderr)
                failed += 1
                continue
            try:
                answer = importer(path, args.format, path.name)
            except _errors() as exc:
                print(f"otelspend: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(f"imported {path.name} {where()}")
            print("\n".join(import_lines(answer)))
    finally:
        close()
    return 1 if failed else 0


def _importer(
    args: argparse.Namespace, settings: Settings, *, reconcile: bool
) -> tuple[Callable[[Path, str, str], dict[str, Any]], Callable[[], str], Callable[[], None]]:
    """(import one file, where it went, close): through the server if one answers, else offline."""
    state: dict[str, Any] = {"offline": None, "url": None, "mode": "offline" if args.offline else "unknown"}

    def offline() -> Any:
        if state["offline"] is None:
            state["offline"] = _Offline(settings)
        return state["offline"]

    def run(path: Path, format: str, name: str) -> dict[str, Any]:
        if state["mode"] != "offline":
            answered = _upload(args, settings, path, format, name, reconcile)
            if answered is not None:
                state["mode"], state["url"] = "server", answered[0]
                return answered[1]
            print(f"no otelspend server answers at {args.api or default_api_url(settings)}; importing offline",
                  file=sys.stderr)  # fmt: skip
            state["mode"] = "offline"
        from otelspend.finance.billing import service
        from otelspend.finance.billing.days import reconcile_days

        store = offline().store
        after = (lambda days: reconcile_days(store, days, _options(settings))) if reconcile else None
        account = getattr(args, "account", "")
        source = "pull" if name.startswith("pull ") else "file"
        return service.import_file(
            store, path, name=name, format=format, account=account, source=source, after=after
        ).as_dict()

    def where() -> str:
        if state["mode"] == "server":
            return f"through the server at {state['url']}"
        return f"into {settings.clickhouse.dsn} database {settings.clickhouse.database}"

    def close() -> None:
        if state["offline"] is not None:
            state["offline"].close()

    return run, where, close


def import_lines(answer: dict[str, Any]) -> list[str]:
    """Lines printed for one import's answer."""
    skipped = sum(answer["skipped"].values())
    lines = [
        f"  format                {answer['format']}",
        f"  lines                 {answer['lines']} ({skipped} skipped, {answer['replaced']} restate earlier ones)",
        f"  period                {answer['from']} .. {answer['to']}",
        f"  usage billed          {answer['usage_usd']} USD (other charges {answer['other_charges_usd']} USD)",
        f"  import id             {answer['import_id']}",
    ]
    for reason, count in sorted(answer["skipped"].items()):
        lines.append(f"  skipped               {count}: {reason}")
    lines += reconcile_lines(answer.get("reconciled") or [])
    return lines


def reconcile_lines(days: list[dict[str, Any]]) -> list[str]:
    """Lines printed for reconciled days."""
    out = []
    for day in days:
        confidence = ", ".join(f"{n} {level}" for level, n in day["confidence"].items())
        causes = ", ".join(f"{name} {value}" for name, value in day["causes"].items() if _nonzero(value))
        quantities = day.get("quantity_only_cells", 0)
        note = f"; {quantities} on quantities only: the bill states no money there" if quantities else ""
        out.append(
            f"  reconciled {day['day']}  billed {day['billed_usd']}  calculated {day['calculated_usd']}  "
            f"variance {day['variance_usd']} USD  ({day['cells']} cells: {confidence}{note})"
        )
        if causes:
            out.append(f"      causes: {causes}")
    return out


def _nonzero(value: str) -> bool:
    return any(ch not in "0.-" for ch in value)


# -- pull ----------------------------------------------------------------------------------------


def run_pull(args: argparse.Namespace) -> int:
    """``billing pull``: fetch a provider's admin API reports, then import them; says where to resume on failure."""
    from otelspend.finance.billing.pull import PullOptions, pull, resume_point

    settings = settings_from_args(args)
    setup_logging("warning")
    billing = settings.billing
    key = billing.openai_admin_key if args.provider == "openai" else billing.anthropic_admin_key
    if key is None:
        variable = f"OTELSPEND_BILLING_{args.provider.upper()}_ADMIN_KEY"
        print(f"otelspend: set billing.{args.provider}_admin_key ({variable}) to pull", file=sys.stderr)
        return 2
    until = args.until or dt.datetime.now(dt.UTC)
    if until <= args.since:
        print("otelspend: --until must be after --since", file=sys.stderr)
        return 2
    options = PullOptions(
        billing.openai_base_url if args.provider == "openai" else billing.anthropic_base_url,
        key,
        timeout_seconds=billing.pull_timeout_seconds,
        max_attempts=billing.pull_max_attempts,
        max_wait_seconds=billing.pull_max_wait_seconds,
    )
    importer, where, close = _importer(args, settings, reconcile=not args.no_reconcile)
    try:
        reports = pull(args.provider, options, args.since, until, settings.data_dir / "billing" / "pulls", importer)
    except _errors() as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    failed = False
    for report in reports:
        print(
            f"pulled {args.provider} {report.endpoint}: {report.pages} page(s), {report.buckets} day(s), "
            f"{report.requests} request(s), {report.retries} retried"
        )
        if report.imported is not None:
            print(f"  imported {where()}")
            print("\n".join(import_lines(report.imported)))
        if report.error:
            failed = True
            print(f"  stopped: {report.error}", file=sys.stderr)
    resume = resume_point(reports)
    if failed and resume:
        print(
            f"otelspend: the pull stopped; what was fully fetched is imported. Resume with:\n"
            f"  otelspend billing pull --provider {args.provider} --since {resume}"
            + (f" --until {args.until.isoformat()}" if args.until else ""),
            file=sys.stderr,
        )
    return 1 if failed else 0


# -- reconcile and list ------------------------------------------------------------------------------


def run_reconcile(args: argparse.Namespace) -> int:
    """``billing reconcile``: reconcile a window's days again."""
    settings = settings_from_args(args)
    setup_logging("warning")
    if args.end <= args.start:
        print("otelspend: --to must be after --from", file=sys.stderr)
        return 2
    body = {"from": args.start.date().isoformat(), "to": _end_day(args.end).isoformat()}
    try:
        if not args.offline:
            answered = _request(
                args, settings, "POST", "/v1/billing/reconcile", body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            if answered is not None:
                url, days = answered
                print(f"reconciled [{body['from']}, {body['to']}) through the server at {url}")
                print("\n".join(reconcile_lines(days["days"])) or "  no billing lines in the window")
                return 0
        from otelspend.finance.billing.days import days_between, reconcile_days

        offline = _Offline(settings)
        try:
            days = reconcile_days(
                offline.store, days_between(args.start.date(), _end_day(args.end)), _options(settings)
            )
        finally:
            offline.close()
    except _errors() as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    store = f"{settings.clickhouse.dsn} database {settings.clickhouse.database}"
    print(f"reconciled [{body['from']}, {body['to']}) in {store}")
    print("\n".join(reconcile_lines(days)) or "  no billing lines in the window")
    return 0


def _end_day(end: dt.datetime) -> dt.date:
    """The first whole day after the window (a window ending mid-day includes that day)."""
    day = end.date()
    return day if end == dt.datetime(day.year, day.month, day.day, tzinfo=end.tzinfo) else day + dt.timedelta(days=1)


def run_list(args: argparse.Namespace) -> int:
    """``billing imports``: list the recorded imports."""
    settings = settings_from_args(args)
    setup_logging("warning")
    try:
        rows: list[dict[str, Any]] | None = None
        if not args.offline:
            answered = _request(args, settings, "GET", f"/v1/billing/imports?limit={int(args.limit)}")
            rows = None if answered is None else answered[1]["imports"]
        if rows is None:
            from otelspend.finance.billing import service

            offline = _Offline(settings)
            try:
                rows = service.list_imports(offline.store, args.limit)
            finally:
                offline.close()
    except _errors() as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    for row in rows:
        print(
            f"{row['imported_at']}  {row['import_id'][:12]}  {row['format']:<16} {row['lines']:>8} lines  "
            f"{row['billed_usd']:>24} USD  {row['period_start']}..{row['period_end']}  {row['file_name']}"
        )
    return 0
