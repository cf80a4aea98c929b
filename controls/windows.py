"""Weighted events on a time line, and the most any window of a given length holds."""

from __future__ import annotations

import bisect


class WindowCounter:
    """Events (time, weight) in time order, however they arrive; ``busiest`` answers the
    largest total weight within any window ``[t, t + width]`` that contains a given time."""

    __slots__ = ("times", "weights")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.weights: list[int] = []

    def __len__(self) -> int:
        return len(self.times)

    def add(self, at: int, weight: int = 1) -> None:
        """Record ``weight`` events at ``at``."""
        index = bisect.bisect_right(self.times, at)
        self.times.insert(index, at)
        self.weights.insert(index, weight)

    def busiest(self, around: int, width: int) -> int:
        """The largest total weight in a window ``[start, start + width]`` containing ``around``.

        Only windows starting at an event in ``[around - width, around]`` need checking (a
        window can always slide right until it starts at an event), so the work is bounded
        by the events near ``around``."""
        times, weights = self.times, self.weights
        first = bisect.bisect_left(times, around - width)
        last = bisect.bisect_right(times, around)
        best = 0
        for start in range(first, last):
            end = bisect.bisect_right(times, times[start] + width)
            best = max(best, sum(weights[start:end]))
        return best
