"""The printable statement page: one template for the dashboard (``/statements``) and the PDFs.

Served pages link ``/static/statement.css`` (the dashboard's Content-Security-Policy allows no
inline style); a page printed to PDF from a file inlines the same stylesheet instead.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from otelspend import __version__
from otelspend.finance.statements.model import MonthStatements, Statement
from otelspend.money import femto_to_usd

PACKAGE = Path(__file__).resolve().parent
STYLESHEET = PACKAGE / "static" / "statement.css"

_environment = Environment(
    loader=FileSystemLoader(PACKAGE / "templates"),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def money(femto: int | None) -> str:
    """$1,234.56 for display, with more places for sub-cent amounts (the CSV and API are exact)."""
    if femto is None:
        return "—"
    value = femto_to_usd(femto)
    places = Decimal("0.01") if abs(value) >= 1 or value == 0 else Decimal("0.000001")
    return f"${value.quantize(places):,}"


def percent(value: Decimal | None) -> str:
    """A ratio as a signed percentage with one decimal ('' when there is none)."""
    return "—" if value is None else f"{value:+}%"


_environment.filters.update(money=money, percent=percent)


def render(
    result: MonthStatements, owners: list[Statement], *, inline_css: bool = False, dashboard: bool = False
) -> str:
    """The statements of ``owners`` (one printed page each) as an HTML document."""
    return _environment.get_template("statement.html").render(
        result=result,
        owners=owners,
        css=STYLESHEET.read_text() if inline_css else None,
        dashboard=dashboard,
        version=__version__,
    )


def context_json(result: MonthStatements) -> dict[str, Any]:
    """The statement page's template context for one month."""
    return {"month": result.month, "by": result.by}
