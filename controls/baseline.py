"""Robust seasonal baselines: what a figure usually is at this hour of the week.

The expected value of a window (an hour, or the 24 hours ending now) is the **median** of
the same window one, two, three and four weeks earlier (weeks before the ledger began are
left out; fewer than ``min_weeks`` means no baseline). Its spread is the **MAD** (median
absolute deviation) of those samples. A figure is out of range when all of these hold:

* the modified z-score ``0.6745 x (actual - median) / MAD`` is above ``z_threshold``
  (3.5, Iglewicz and Hoaglin's cut-off, one of the published simple detectors);
* ``actual >= factor x median`` (a relative jump worth a look);
* ``actual - median >= min_impact`` (a jump worth money).

Four weekly samples are few, and identical weeks give MAD = 0, which would make any
change infinitely significant: the MAD is floored at ``rel_floor`` of the median (and at
``abs_floor``), so a series must move by more than its usual noise *and* by the factor.
Only increases raise alerts (a cost control looks for spend, not for quiet hours).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

HOUR_S = 3600
WEEK_S = 7 * 24 * HOUR_S
Z_CONSTANT = Fraction(6745, 10000)


def median(values: Sequence[Fraction]) -> Fraction:
    """The median (mean of the two middle values for an even count); ValueError when empty."""
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def mad(values: Sequence[Fraction]) -> Fraction:
    """Median absolute deviation from the median."""
    center = median(values)
    return median([abs(value - center) for value in values])


@dataclass(frozen=True)
class Rules:
    """When a figure counts as out of range (see the module docstring)."""

    z_threshold: Fraction = Fraction(7, 2)
    factor: Fraction = Fraction(2)
    min_impact: Fraction = Fraction(0)
    rel_floor: Fraction = Fraction(1, 10)
    abs_floor: Fraction = Fraction(0)
    min_weeks: int = 2
    weeks: int = 4


@dataclass(frozen=True)
class Judgement:
    """A figure against its baseline."""

    actual: Fraction
    expected: Fraction
    """The median of the samples."""
    spread: Fraction
    """The MAD used (after the floors)."""
    z: float
    """Modified z-score (inf when the spread is 0)."""
    samples: tuple[Fraction, ...]
    out_of_range: bool

    @property
    def impact(self) -> Fraction:
        """How much above the expected value."""
        return self.actual - self.expected


def judge(actual: Fraction, samples: Sequence[Fraction], rules: Rules) -> Judgement | None:
    """``actual`` against ``samples`` (None when there are fewer than ``rules.min_weeks``)."""
    if len(samples) < rules.min_weeks:
        return None
    center = median(samples)
    spread = max(mad(samples), rules.rel_floor * abs(center), rules.abs_floor)
    deviation = actual - center
    z = float(Z_CONSTANT * deviation / spread) if spread else (float("inf") if deviation > 0 else 0.0)
    out = z > rules.z_threshold and actual >= rules.factor * center and deviation >= rules.min_impact and deviation > 0
    return Judgement(actual, center, spread, z, tuple(samples), out)


def weekly_samples(
    value: Callable[[int, int], Fraction | None], start_s: int, end_s: int, *, weeks: int, first_s: int
) -> list[Fraction]:
    """The window ``[start_s, end_s)`` one to ``weeks`` weeks earlier, for each week whose
    window starts at or after ``first_s`` (the ledger's first hour) and has a value."""
    found = []
    for week in range(1, weeks + 1):
        shift = week * WEEK_S
        if start_s - shift < first_s:
            break
        sample = value(start_s - shift, end_s - shift)
        if sample is not None:
            found.append(sample)
    return found


def window_sum(series: Mapping[int, Fraction], start_s: int, end_s: int) -> Fraction:
    """Sum of an hourly series (hour start -> value) over ``[start_s, end_s)``; absent hours are 0."""
    return sum((series.get(hour, Fraction(0)) for hour in range(start_s, end_s, HOUR_S)), Fraction(0))
