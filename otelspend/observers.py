"""What the pipeline tells observers (the spend controls) about the ledger as it is built.

The pipeline thread calls a ``LedgerObserver`` at two points, with immutable views only:

* ``spans_priced``: every batch of new spans once priced (exact duplicates already dropped),
  as the stitcher's compact tuples (``otelspend.record.L`` indexes). One provider call may
  arrive as several spans (views of the same call, ``enrich.runs``), so money read here is
  not counted once; it is for what must be seen within seconds (retry loops, model policy).
* ``runs_written``: the run rows and breakdown rows an emission just wrote, signed (+1 new,
  -1 cancelling a previous emission; ``otelspend.record.RUN_COLUMNS`` /
  ``RUN_CALL_COLUMNS`` order). Their signed sums are the ledger's exact deltas, each call
  counted once: money that must add up (budgets) is read here.

Both are called on the pipeline thread and must return at once (hand the work to another
thread, drop and count when it cannot keep up): ingest never waits for an observer. The
protocol lives in the kernel so the pipeline can call it and the controls implement it
without either importing the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

SpanView = tuple[Any, ...]
"""A span as the stitcher keeps it (``otelspend.record.LITE_FIELDS``)."""
RowView = tuple[Any, ...]
"""A run row (``RUN_COLUMNS``) or breakdown row (``RUN_CALL_COLUMNS``), signed."""


class LedgerObserver(Protocol):
    """Told about priced spans and written run deltas, on the pipeline thread."""

    def spans_priced(self, spans: Sequence[SpanView], ingested_ns: int) -> None:
        """New spans of one batch, priced; must not block."""
        ...

    def runs_written(self, runs: Sequence[RowView], calls: Sequence[RowView]) -> None:
        """Signed run and breakdown rows just written by an emission; must not block."""
        ...


class NoObserver:
    """The observer of a pipeline nobody watches: does nothing."""

    def spans_priced(self, spans: Sequence[SpanView], ingested_ns: int) -> None:
        """Ignored."""

    def runs_written(self, runs: Sequence[RowView], calls: Sequence[RowView]) -> None:
        """Ignored."""


NO_OBSERVER: LedgerObserver = NoObserver()
"""The pipeline's observer until one is set (``Pipeline.observer``)."""
