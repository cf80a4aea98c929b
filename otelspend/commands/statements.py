"""``otelspend statements``: monthly chargeback statements as CSV and PDFs.

    otelspend statements --month 2026-11 --by team --pdf DIR [--csv FILE] [--owner NAME]

Figures come from the running server's ``GET /v1/statements`` when one answers at ``--api``,
else from the store directly (offline). ``--pdf DIR`` prints one PDF per owner
(``statement-2026-11-team-<owner>.pdf``; the unattributed bucket is ``_unattributed``; see ``slug``) through
headless Chromium; ``--csv FILE`` writes every owner's line. Without either, a summary is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from otelspend.commands import add_config_flags, settings_from_args, setup_logging
from otelspend.commands.server_api import ApiError, add_server_flags, open_server
from otelspend.settings import Settings


def register(sub: Any) -> None:
    """Add ``otelspend statements``."""
    parser = sub.add_parser("statements", help="monthly chargeback statements per owner (CSV, PDF)")
    parser.add_argument("--month", required=True, help="UTC month, YYYY-MM")
    parser.add_argument("--by", choices=["team", "cost_center", "tenant"], default="team", help="owner dimension")
    parser.add_argument("--owner", help="only this owner")
    parser.add_argument("--pdf", type=Path, metavar="DIR", help="print one PDF per owner into DIR")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write every owner's statement line to FILE")
    add_server_flags(parser)
    add_config_flags(parser)
    parser.set_defaults(func=run)


def _fetch(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | None:
    query = {"month": args.month, "by": args.by, **({"owner": args.owner} if args.owner is not None else {})}
    opened = open_server(args, settings, f"/v1/statements?{urllib.parse.urlencode(query)}", "reading the store offline")
    if opened is None:
        return None
    _, response = opened
    with response:
        return dict(json.loads(response.read()))


def _offline(args: argparse.Namespace, settings: Settings) -> Any:
    from otelspend.clickhouse.client import Store
    from otelspend.finance.statements.service import monthly

    store = Store(settings.clickhouse.dsn, settings.clickhouse.database)
    try:
        result = monthly(store, args.month, args.by)
    finally:
        store.close()
    if args.owner is None:
        return result
    from otelspend.finance.statements.model import MonthStatements

    found = result.owner(args.owner)
    if found is None:
        raise ApiError(f"no statement for {args.by} {args.owner!r} in {args.month}")
    return MonthStatements(result.month, result.by, (found,), result.month_femto, result.previous_month,
                           result.previous_month_femto)  # fmt: skip


def slug(owner: str) -> str:
    """A file-name-safe owner name, one per owner (``_unattributed`` for the unattributed bucket).

    A name that is already safe is kept; any other (``a/b``, ``..``, ``_unattributed`` itself) is
    made safe and given ``~`` and a digest of the name, so two owners never share a file (``a/b``
    and ``a-b`` would both read ``a-b``) and no name escapes the directory.
    """
    if not owner:
        return "_unattributed"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", owner).strip("-.")
    if safe == owner and not owner.startswith("_"):
        return owner
    return f"{safe or 'owner'}~{hashlib.sha256(owner.encode()).hexdigest()[:10]}"


def run(args: argparse.Namespace) -> int:
    """``otelspend statements``: the month's statements as CSV and/or one PDF per owner."""
    from otelspend.finance.statements.model import MONTH
    from otelspend.finance.statements.service import from_json, to_csv

    settings = settings_from_args(args)
    setup_logging("warning", settings)
    if MONTH.fullmatch(args.month) is None:
        print(f"otelspend: --month {args.month!r}: expected YYYY-MM, e.g. 2026-11", file=sys.stderr)
        return 2
    try:
        document = None if args.offline else _fetch(args, settings)
        result = from_json(document) if document is not None else _offline(args, settings)
    except ApiError as exc:
        print(f"otelspend: {exc}", file=sys.stderr)
        return 1
    if args.csv:
        args.csv.write_text(to_csv(result), encoding="utf-8")
        print(f"wrote {args.csv} ({len(result.statements)} statements)")
    if args.pdf:
        code = _pdfs(result, args.pdf)
        if code:
            return code
    if not args.csv and not args.pdf:
        from otelspend.api.statement_page import money

        for statement in result.statements:
            print(f"  {statement.label:<30} {money(statement.direct_femto):>16}  {statement.runs} runs")
        print(f"  {'month total':<30} {money(result.month_femto):>16}")
    return 0


def _pdfs(result: Any, directory: Path) -> int:
    from otelspend.api.statement_page import render
    from otelspend.finance.statements.pdf import PdfError, print_pdf

    directory.mkdir(parents=True, exist_ok=True)
    for statement in result.statements:
        out = directory / f"statement-{result.month}-{result.by}-{slug(statement.owner)}.pdf"
        try:
            print_pdf(render(result, [statement], inline_css=True), out)
        except PdfError as exc:
            print(f"otelspend: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {out}")
    return 0
