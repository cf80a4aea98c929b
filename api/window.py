"""Time windows ``[from, to)`` over run start times, as requests give them and answers show them.

How a window splits into whole days, whole hours and raw edges is the store's business
(``otelspend.clickhouse.queries.rollup_plan.Window``); this module parses and checks the
request's ``from`` / ``to`` and writes times as RFC 3339.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from otelspend.api.errors import QueryError
from otelspend.clickhouse.queries import rollup_plan
from otelspend.clickhouse.queries.rollup_plan import DAY_NS, HOUR_NS, NS

DEFAULT_SPAN_NS = DAY_NS
MAX_WINDOW_DAYS = 400
"""Widest window a query may cover."""
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""Accepted timestamps (the receiver stores no span before 2000; ns fit an Int64 until 2262)."""


@dataclass(frozen=True)
class Window(rollup_plan.Window):
    """``[start_ns, end_ns)`` in ns since the epoch, UTC; the rollup split plus how answers show it."""

    def describe(self) -> dict[str, str]:
        """``{"from", "to"}`` as RFC 3339, for answers."""
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


__all__ = ["DAY_NS", "HOUR_NS", "NS", "Window", "check_time", "parse_window", "rfc3339", "to_ns"]
