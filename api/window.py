"""Time windows ``[from, to)`` over run start times, split into rollup hours and raw edges.

The hourly rollups bucket runs by their start hour, so they answer whole hours only. A
window whose ends are not on hour boundaries is answered as the whole hours inside it
(from a rollup) plus the partial edge hours (from the raw run rows, with the same
aggregate states); see ``otelspend.api.sql``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from otelspend.api.errors import QueryError

NS = 10**9
HOUR_NS = 3600 * NS
DAY_NS = 24 * HOUR_NS
DEFAULT_SPAN_NS = DAY_NS
MAX_WINDOW_DAYS = 400
"""Widest window a query may cover."""
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""Accepted timestamps (the receiver stores no span before 2000; ns fit an Int64 until 2262)."""


@dataclass(frozen=True)
class Window:
    """``[start_ns, end_ns)`` in ns since the epoch, UTC."""

    start_ns: int
    end_ns: int

    @property
    def full_hours(self) -> tuple[int, int] | None:
        """The whole hours inside the window, as ``(first, end)`` unix seconds, or None."""
        return self._whole(HOUR_NS)

    @property
    def full_days(self) -> tuple[int, int] | None:
        """The whole UTC days inside the window, as ``(first, end)`` unix seconds, or None."""
        return self._whole(DAY_NS)

    def _whole(self, unit_ns: int) -> tuple[int, int] | None:
        first = -(-self.start_ns // unit_ns) * unit_ns
        end = self.end_ns // unit_ns * unit_ns
        return (first // NS, end // NS) if first < end else None

    @property
    def edges(self) -> list[tuple[int, int]]:
        """The ns ranges not covered by ``full_hours`` (answered from raw rows)."""
        hours = self.full_hours
        if hours is None:
            return [(self.start_ns, self.end_ns)]
        first, end = hours[0] * NS, hours[1] * NS
        return [(a, b) for a, b in ((self.start_ns, first), (end, self.end_ns)) if a < b]

    def describe(self) -> dict[str, str]:
        """The window as ``{"from", "to"}`` RFC 3339 strings, as answers echo it."""
        return {"from": rfc3339(self.start_ns), "to": rfc3339(self.end_ns)}


def to_ns(when: dt.datetime) -> int:
    """A datetime (naive = UTC) to ns since the epoch, exact to the microsecond."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def rfc3339(ns: int) -> str:
    """ns since the epoch -> ``2025-01-31T12:00:00Z`` (fractional seconds only when present)."""
    seconds, rest = divmod(ns, NS)
    base = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        return f"{base}.{rest:09d}".rstrip("0") + "Z"
    return base + "Z"


def check_time(name: str, value: dt.datetime) -> int:
    """A request timestamp (naive = UTC) as ns, or QueryError naming the parameter."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if not EARLIEST <= aware < LATEST:
        raise QueryError(name, f"{value.isoformat()} is outside {EARLIEST.year}..{LATEST.year - 1}")
    return to_ns(aware)


def parse_window(
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    now_ns: int,
    default_span_ns: int = DEFAULT_SPAN_NS,
    max_days: int = MAX_WINDOW_DAYS,
) -> Window:
    """Validate ``from`` / ``to`` (RFC 3339; default: the ``default_span_ns`` before now)."""
    end_ns = check_time("to", end) if end is not None else now_ns
    start_ns = check_time("from", start) if start is not None else end_ns - default_span_ns
    if start_ns >= end_ns:
        raise QueryError("from", f"from ({rfc3339(start_ns)}) must be before to ({rfc3339(end_ns)})")
    if end_ns - start_ns > max_days * DAY_NS:
        raise QueryError(
            "from", f"the window from {rfc3339(start_ns)} to {rfc3339(end_ns)} is wider than {max_days} days"
        )
    return Window(start_ns, end_ns)
