"""Rebuild rollups for a time window from the stored run-level rows.

The rollup materialized views read the Null-engine feeds ``runs_feed`` and
``run_calls_feed``; re-inserting stored rows of a window into the feeds recomputes exactly
what the views computed live (cancelled versions included, so signed sums net out).
Used by ``otelspend rollups rebuild`` and after an unclean stop, for the hours whose run
rows were being written when the process died.
"""

from __future__ import annotations

from collections.abc import Iterable

from otelspend.clickhouse.client import Store

ROLLUPS = (("rollup_runs_hourly", "runs", "runs_feed"), ("rollup_calls_hourly", "run_calls", "run_calls_feed"))
HOUR = 3600


def rebuild_window(store: Store, start_s: int, end_s: int) -> int:
    """Recompute every rollup hour in [start_s, end_s) (unix seconds, widened to whole hours)."""
    start = start_s - start_s % HOUR
    end = end_s if end_s % HOUR == 0 else end_s - end_s % HOUR + HOUR
    db = store.database
    params = {"start": start, "end": end}
    for rollup, source, feed in ROLLUPS:
        store.command(
            f"ALTER TABLE {db}.{rollup} DELETE WHERE hour >= toDateTime({{start:Int64}}) "
            "AND hour < toDateTime({end:Int64}) SETTINGS mutations_sync = 2",
            params,
        )
        store.command(
            f"INSERT INTO {db}.{feed} SELECT * FROM {db}.{source} "
            "WHERE start_time >= toDateTime64({start:Int64}, 9) AND start_time < toDateTime64({end:Int64}, 9)",
            params,
        )
    return (end - start) // HOUR


def rebuild_hours(store: Store, hours: Iterable[int]) -> int:
    """Rebuild the given hours (unix seconds at hour starts), merging adjacent ones."""
    rebuilt = 0
    spans: list[list[int]] = []
    for hour in sorted(set(hours)):
        if spans and spans[-1][1] == hour:
            spans[-1][1] = hour + HOUR
        else:
            spans.append([hour, hour + HOUR])
    for start, end in spans:
        rebuilt += rebuild_window(store, start, end)
    return rebuilt
