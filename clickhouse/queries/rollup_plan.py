"""Which tables answer an aggregate query: the window split into whole days, whole hours and
raw edges, and the plan (level, rollup, daily or not) decided by the dimensions it touches.

The hourly rollups bucket runs by their start hour, so they answer whole hours only; the
daily rollups (migration 0005) whole UTC days of their few dimensions only; the partial
edge hours come from the raw run rows with the same aggregate states
(``otelspend.clickhouse.queries.rollups``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from otelspend.clickhouse.queries.vocabulary import CALL_BITS, DIMENSIONS, LEDGER_CONSTANTS, Filters, Source

NS = 10**9
HOUR_NS = 3600 * NS
DAY_NS = 24 * HOUR_NS
HOUR = 3600
DAY = 24 * HOUR

ROLLUP_TABLE: dict[str, str] = {
    "runs_rollup": "rollup_runs_hourly",
    "calls_rollup": "rollup_calls_hourly",
    "runs_daily": "rollup_runs_daily",
    "calls_daily": "rollup_calls_daily",
    "alloc_hourly": "rollup_alloc_hourly",
    "alloc_daily": "rollup_alloc_daily",
}
DAILY: dict[str, tuple[Source, frozenset[str]]] = {
    "runs_rollup": ("runs_daily", frozenset({"workflow_type", "tenant"})),
    "calls_rollup": ("calls_daily", frozenset({"tenant", "model", "provider"})),
}
"""Each hourly rollup's daily counterpart (migration 0005) and the only dimensions it keeps."""
RAW_TABLE: dict[str, str] = {"runs": "runs", "run_calls": "run_calls", "allocations": "allocations"}
BucketExpr = Literal["hour", "day"]


@dataclass(frozen=True)
class Window:
    """``[start_ns, end_ns)`` in ns since the epoch, UTC, as the rollups can answer it: the
    whole days and hours inside it from rollups, the partial edge hours from raw rows."""

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


@dataclass(frozen=True)
class Plan:
    """Which tables answer a query, decided by the dimensions it touches."""

    level: Literal["run", "call"]
    raw_only: bool
    subset: int
    """Bitmask of the call dimensions involved (a run_mask bit index)."""
    distinct_runs: bool = False
    """Run counts need true distinct counting over raw run_calls: a call-dimension filter
    with several values on a dimension not grouped by (a run with calls of two matching
    models is one run, but it is first-of-its-projection once per model)."""
    daily: bool = False
    """Every dimension touched is in the level's daily rollup: whole days can come from it."""

    @property
    def rollup(self) -> Source:
        """The hourly rollup of the level."""
        return "calls_rollup" if self.level == "call" else "runs_rollup"

    @property
    def raw(self) -> Source:
        """The raw table of the level."""
        return "run_calls" if self.level == "call" else "runs"

    def whole_days(self, window: Window, bucket: BucketExpr | None) -> tuple[int, int] | None:
        """The whole days a daily rollup answers, or None (another dimension, hourly buckets)."""
        if self.raw_only or not self.daily or bucket == "hour":
            return None
        return window.full_days

    def describe(self, window: Window, bucket: BucketExpr | None = None) -> dict[str, Any]:
        """For responses: where the figures came from (documented, not part of the contract)."""
        tables = [RAW_TABLE[self.raw]] if self.raw_only else [ROLLUP_TABLE[self.rollup], RAW_TABLE[self.raw]]
        if self.whole_days(window, bucket) is not None:
            tables.insert(0, ROLLUP_TABLE[DAILY[self.rollup][0]])
        return {"level": self.level, "tables": tables}

    @property
    def call_dimension(self) -> str | None:
        """The one call dimension involved, if exactly one is (its rollup run-count columns apply)."""
        return next((name for name, bit in CALL_BITS.items() if bit == self.subset), None)


def plan_for(group_by: Sequence[str], filters: Filters) -> Plan:
    """The plan for these dimensions (names already checked against the vocabulary)."""
    # A ledger constant (direct cost's pool) is no column of any ledger table: it decides nothing.
    touched = (set(group_by) | {name for name, _ in filters}) - set(LEDGER_CONSTANTS)
    levels = {DIMENSIONS[name].level for name in touched}
    subset = sum(CALL_BITS[name] for name in touched if name in CALL_BITS)
    distinct = any(name in CALL_BITS and len(values) > 1 and name not in group_by for name, values in filters)
    # The calls rollup counts distinct runs per single call dimension only: over two or
    # more, or over a call dimension it keeps no run counts for (cost_kind), run counts come
    # from the raw breakdown rows.
    distinct = (
        distinct
        or subset.bit_count() > 1
        or any(DIMENSIONS[name].level == "call" and name not in CALL_BITS for name in touched)
    )
    level: Literal["run", "call"] = "call" if "call" in levels else "run"
    daily = touched <= DAILY["calls_rollup" if level == "call" else "runs_rollup"][1]
    return Plan(level, "raw" in levels, subset, distinct, daily)
