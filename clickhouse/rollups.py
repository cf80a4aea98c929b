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

ROLLUPS = (
    (("rollup_runs_hourly", "hour"), ("rollup_runs_daily", "day"), "runs", "runs_feed"),
    (("rollup_calls_hourly", "hour"), ("rollup_calls_daily", "day"), "run_calls", "run_calls_feed"),
)
HOUR = 3600
DAY = 24 * HOUR


def rebuild_window(store: Store, start_s: int, end_s: int) -> int:
    """Recompute every rollup hour in [start_s, end_s) (unix seconds, widened to whole UTC
    days); the number of hours rebuilt."""
    start, end = day_bounds(start_s, end_s)
    db = store.database
    params = {"start": start, "end": end}
    for hourly, daily, source, feed in ROLLUPS:
        for table, column in (hourly, daily):
            store.command(
                f"ALTER TABLE {db}.{table} DELETE WHERE {column} >= toDateTime({{start:Int64}}) "
                f"AND {column} < toDateTime({{end:Int64}}) SETTINGS mutations_sync = 2",
                params,
            )
        store.command(
            f"INSERT INTO {db}.{feed} SELECT * FROM {db}.{source} "
            "WHERE start_time >= toDateTime64({start:Int64}, 9) AND start_time < toDateTime64({end:Int64}, 9)",
            params,
        )
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
