"""Rebuild rollups for a time window from the stored run-level rows.

The rollup materialized views read the Null-engine feeds ``runs_feed`` and
``run_calls_feed``; re-inserting stored rows of a window into the feeds recomputes exactly
what the views computed live (cancelled versions included, so signed sums net out).
Used by ``otelspend rollups rebuild`` and after an unclean stop, for the hours whose run
rows were being written when the process died. The daily rollups (migration 0005) are
filled from the hourly ones, so a rebuild covers whole UTC days: a day's row cannot be
rebuilt from some of its hours.
"""

from __future__ import annotations

from collections.abc import Iterable

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.queries.rollups import rebuild_statements

HOUR = 3600
DAY = 24 * HOUR


def rebuild_window(store: Store, start_s: int, end_s: int) -> int:
    """Recompute every rollup hour in [start_s, end_s) (unix seconds, widened to whole UTC
    days); the number of hours rebuilt."""
    start, end = day_bounds(start_s, end_s)
    for statement in rebuild_statements(store.database, start, end):
        store.command(*statement)
    return (end - start) // HOUR


def day_bounds(start_s: int, end_s: int) -> tuple[int, int]:
    """[start_s, end_s) widened to whole UTC days."""
    return start_s - start_s % DAY, -(-end_s // DAY) * DAY


def rebuild_hours(store: Store, hours: Iterable[int]) -> int:
    """Rebuild the days holding the given hours (unix seconds), merging adjacent ones."""
    rebuilt = 0
    spans: list[list[int]] = []
    for day in sorted({hour - hour % DAY for hour in hours}):
        if spans and spans[-1][1] == day:
            spans[-1][1] = day + DAY
        else:
            spans.append([day, day + DAY])
    for start, end in spans:
        rebuilt += rebuild_window(store, start, end)
    return rebuilt
