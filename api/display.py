"""How the dashboard writes numbers: money, counts, rates, durations and times.

Pure functions from the query layer's values (money as exact decimal strings, counts as
ints, rates as floats, None where a figure does not exist) to short display strings. The
exact value stays in the HTML next to the display string (``<data value=...>``).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

NONE = "—"
"""Shown where a figure does not exist (a ratio without a denominator)."""
UNPRICED = "unpriced"
"""Shown instead of a cost the ledger could not compute (NULL cost), never $0."""
SMALLEST_USD = Decimal("0.000001")


def to_decimal(value: str | Decimal | int | float | None) -> Decimal | None:
    """A money value from the query layer as a Decimal (None stays None)."""
    if value is None:
        return None
    try:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise ValueError(f"not a money value: {value!r}") from exc


def usd(value: str | Decimal | int | float | None) -> str:
    """``$12.34`` from one dollar up, three significant digits below (``$0.0048``, ``$0.202``).

    None (the ledger could not price it) is ``unpriced``, never ``$0``.
    """
    amount = to_decimal(value)
    if amount is None:
        return UNPRICED
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount >= 1:
        return f"{sign}${amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    if amount < SMALLEST_USD:
        return f"{sign}<${SMALLEST_USD}"
    # Three significant digits, trailing zeros dropped down to cents: $0.06, $0.0048, $0.202.
    exponent = amount.adjusted()  # 0.0048 -> -3
    places = min(6, 2 - exponent)
    text = f"{amount.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{fraction}"


def count(value: int | None) -> str:
    """``12,345``; None is a dash."""
    return NONE if value is None else f"{int(value):,}"


def compact(value: float | int | None) -> str:
    """``950``, ``12.3k``, ``4.5M``: for chart labels and token totals."""
    if value is None:
        return NONE
    number = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{number:.0f}" if number == int(number) else f"{number:.2g}"


def percent(value: float | None) -> str:
    """A 0..1 ratio as ``93.9%``; None is a dash."""
    return NONE if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    """A plain float (averages, ratios that are not shares)."""
    return NONE if value is None else f"{value:,.{digits}f}"


def duration_ms(value: float | int | None) -> str:
    """``240 ms``, ``3.4 s``, ``2 min 05 s``."""
    if value is None:
        return NONE
    ms = float(value)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def parse_time(value: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp from the query layer (``...Z``, up to 9 fractional digits)."""
    head, _, fraction = value.removesuffix("Z").partition(".")
    moment = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    if fraction:  # nanoseconds: keep the microseconds Python can hold
        moment += dt.timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return moment


def when(value: str | None, *, seconds: bool = False) -> str:
    """``2026-11-23 06:49 UTC`` from an RFC 3339 timestamp."""
    if not value:
        return NONE
    return parse_time(value).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def day(value: str | None) -> str:
    """``2026-11-23`` from an RFC 3339 timestamp."""
    return parse_time(value).strftime("%Y-%m-%d") if value else NONE


def change(current: Decimal | float | int | None, previous: Decimal | float | int | None) -> str | None:
    """``+23%`` / ``-5%`` against the previous period; None when there is nothing to compare."""
    if current is None or previous is None or previous == 0:
        return None
    ratio = (Decimal(str(current)) - Decimal(str(previous))) / Decimal(str(previous))
    return f"{ratio * 100:+.0f}%"
