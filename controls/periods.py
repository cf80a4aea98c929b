"""Budget periods aligned on the calendar of a time zone: days, ISO weeks, months.

A period starts at local midnight (of the day, of the week's Monday, of the month's first
day) in the budget's zone and ends where the next one starts, so consecutive periods tile
time without gaps or overlaps even across daylight-saving changes (a local day may last
23 or 25 hours). A local midnight that does not exist (a zone that springs forward at
00:00) starts at the first instant of that local day; an ambiguous one at its first
occurrence (``fold=0``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PeriodKind = Literal["day", "week", "month"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("day", "week", "month")
NS = 10**9
UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Period:
    """``[start_ns, end_ns)`` in ns since the epoch, with a label in the zone's calendar."""

    kind: PeriodKind
    start_ns: int
    end_ns: int
    label: str
    """``2026-12-05`` (day), ``2026-W49`` (ISO week), ``2026-12`` (month)."""

    def contains(self, at_ns: int) -> bool:
        """Whether ``at_ns`` lies in the period."""
        return self.start_ns <= at_ns < self.end_ns

    def elapsed_ns(self, now_ns: int) -> int:
        """How much of the period has passed at ``now_ns`` (clamped to the period)."""
        return min(max(now_ns - self.start_ns, 0), self.end_ns - self.start_ns)


def zone(name: str) -> ZoneInfo:
    """The IANA zone named ``name``; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as UTC or Europe/Paris)") from None


def period_at(kind: PeriodKind, tz: ZoneInfo, at_ns: int) -> Period:
    """The period of ``kind`` in zone ``tz`` that contains the instant ``at_ns``."""
    local = dt.datetime.fromtimestamp(at_ns // NS, tz)
    first = _first_day(kind, local.date())
    start = _midnight_ns(first, tz)
    if start > at_ns:  # only where local midnight is skipped and the instant precedes the day's first
        first = _first_day(kind, first - dt.timedelta(days=1))
        start = _midnight_ns(first, tz)
    nxt = _next_first_day(kind, first)
    return Period(kind, start, _midnight_ns(nxt, tz), _label(kind, first))


def _first_day(kind: PeriodKind, day: dt.date) -> dt.date:
    if kind == "day":
        return day
    if kind == "week":
        return day - dt.timedelta(days=day.weekday())  # ISO weeks start on Monday
    return day.replace(day=1)


def _next_first_day(kind: PeriodKind, first: dt.date) -> dt.date:
    if kind == "day":
        return first + dt.timedelta(days=1)
    if kind == "week":
        return first + dt.timedelta(days=7)
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _midnight_ns(day: dt.date, tz: ZoneInfo) -> int:
    local = dt.datetime(day.year, day.month, day.day, tzinfo=tz)  # fold=0: the first occurrence
    # A skipped midnight maps, with the offset in force before the change, to the day's
    # first existing instant; timestamp() applies exactly that rule (PEP 495).
    return int(local.timestamp()) * NS


def _label(kind: PeriodKind, first: dt.date) -> str:
    if kind == "day":
        return first.isoformat()
    if kind == "week":
        year, week, _ = first.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{first.year:04d}-{first.month:02d}"
