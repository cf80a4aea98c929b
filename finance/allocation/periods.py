"""Allocation periods: whole UTC days or calendar months, as half-open ns ranges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

from otelspend.finance.allocation.pools import Period, Pool

NS = 10**9
DAY_NS = 86_400 * NS
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class PoolPeriod(NamedTuple):
    """``[start_ns, end_ns)`` of one period of a pool's granularity."""

    kind: Period
    start_ns: int
    end_ns: int

    @property
    def label(self) -> str:
        """``2026-12-05`` for a day, ``2026-12`` for a month."""
        start = to_datetime(self.start_ns)
        return start.strftime("%Y-%m-%d" if self.kind == "day" else "%Y-%m")


def to_datetime(ns: int) -> dt.datetime:
    """ns since the epoch as an aware UTC datetime (microsecond precision)."""
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def to_ns(when: dt.date | dt.datetime) -> int:
    """A date (UTC midnight) or datetime (naive = UTC) as ns since the epoch."""
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def period_of(kind: Period, ns: int) -> PoolPeriod:
    """The period of this granularity holding instant ``ns``."""
    if kind == "day":
        start = ns // DAY_NS * DAY_NS
        return PoolPeriod(kind, start, start + DAY_NS)
    when = to_datetime(ns)
    first = dt.date(when.year, when.month, 1)
    following = dt.date(when.year + (when.month == 12), when.month % 12 + 1, 1)
    return PoolPeriod(kind, to_ns(first), to_ns(following))


def periods_between(kind: Period, start_ns: int, end_ns: int) -> Iterator[PoolPeriod]:
    """Every period overlapping ``[start_ns, end_ns)``, in order."""
    if end_ns <= start_ns:
        return
    period = period_of(kind, start_ns)
    while period.start_ns < end_ns:
        yield period
        period = period_of(kind, period.end_ns)


def pool_active(pool: Pool, period: PoolPeriod) -> bool:
    """Whether the pool exists in this period (its effective dates, by the period's start)."""
    if pool.effective_from is not None and period.end_ns <= to_ns(pool.effective_from):
        return False
    return pool.effective_to is None or period.start_ns < to_ns(pool.effective_to)
