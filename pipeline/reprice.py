"""Re-price stored spans after a rate-card change, and make every derived figure follow.

``reprice_window`` reads the spans that started in ``[start, end)`` (``FROM spans FINAL``,
in slices of bounded size), clears and re-prices each with the given ``PriceBook``, and
writes back only the rows whose pricing changed, with a higher ``version`` (the spans
table is a ReplacingMergeTree: the highest version wins). Every run holding a span whose
cost or unpriced reason changed is then recomputed from all of its stored spans and
handed to an ``Emitter``, which diffs against the stored run and writes the exact
cancel (-1) + new (+1) rows; the rollup materialized views follow from those deltas.

Two ways to run it, one function (the composition root builds the ``RepriceTarget``):

* offline: nothing else has the store open (``otelspend reprice`` with no server);
* inside a running server, on the pipeline thread (``Pipeline.call``), because that thread
  owns the stitcher (``RepriceTarget.live``): runs still open there get their in-memory
  spans updated and are emitted when they close as usual; runs it remembers as emitted get
  their remembered rows replaced by the re-emitted ones, so a late span diffs against what
  is really stored.

Re-emission ignores the late-span horizon: a re-price is an explicit request to restate
history, however old.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from otelspend.clickhouse.client import Store
from otelspend.clickhouse.columnar import table_from_rows
from otelspend.clickhouse.queries import spans as span_queries
from otelspend.clickhouse.runstore import RunStore
from otelspend.enrich.pricing import PRICING_SLOTS, PriceBook, clear_cost
from otelspend.enrich.runs import RunOptions
from otelspend.enrich.signals import COUNTED_ROLES
from otelspend.enrich.stitcher import OpenRun, Stitcher
from otelspend.pipeline.emission import Emitter
from otelspend.pipeline.resources import StoredResourceAttributes
from otelspend.record import SPAN_COLUMNS, F, lite_from_row

SLICE_ROWS = 50_000
"""Spans read into memory at once (whole hours are grouped up to about this many)."""
EMIT_CHUNK_RUNS = 1_000
"""Runs recomputed and written per emission."""
NEVER_LATE_NS = 2**62
HOUR_NS = 3600 * 10**9


_USD_POSITIONS = tuple(i for i, c in enumerate(SPAN_COLUMNS) if c.kind in ("usd", "usd?"))
_MAP_POSITION = next(i for i, c in enumerate(SPAN_COLUMNS) if c.kind == "map")


class RepriceError(RuntimeError):
    """A re-price could not start (invalid rate card on disk, bad window)."""


@dataclass
class RepriceResult:
    """What a re-price found and changed. Money is femto-USD over the changed counted calls."""

    start_ns: int
    end_ns: int
    dry_run: bool = False
    spans_scanned: int = 0
    spans_repriced: int = 0
    """Spans whose pricing (cost, components, provenance or unpriced reason) changed."""
    calls_repriced: int = 0
    """Of those, counted calls (call_role = 'call')."""
    cost_before_femto: int = 0
    cost_after_femto: int = 0
    """Sum of cost_usd of the re-priced counted calls before and after (NULL counts as 0)."""
    runs_affected: int = 0
    """Runs holding a span whose cost or unpriced reason changed."""
    runs_reemitted: int = 0
    runs_unchanged: int = 0
    runs_open: int = 0
    """Runs still open in the server: updated in memory, emitted when they close."""
    sources: Counter[str] = field(default_factory=Counter)
    """Re-priced spans by their new price source (``unpriced:<reason>`` when unpriced)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: money as exact decimal strings in USD."""
        return {
            "from_ns": self.start_ns,
            "to_ns": self.end_ns,
            "dry_run": self.dry_run,
            "spans_scanned": self.spans_scanned,
            "spans_repriced": self.spans_repriced,
            "calls_repriced": self.calls_repriced,
            "cost_before_usd": usd(self.cost_before_femto),
            "cost_after_usd": usd(self.cost_after_femto),
            "cost_delta_usd": usd(self.cost_after_femto - self.cost_before_femto),
            "runs_affected": self.runs_affected,
            "runs_reemitted": self.runs_reemitted,
            "runs_unchanged": self.runs_unchanged,
            "runs_open": self.runs_open,
            "sources": dict(self.sources),
        }


def usd(femto: int) -> str:
    """Femto-USD -> exact decimal string (``'0.000165000000000'``)."""
    return format(Decimal(femto).scaleb(-15), ".15f")


@dataclass
class RepriceTarget:
    """Where to re-price: the store, the run reads/writes, and how runs are computed."""

    store: Store
    runstore: RunStore
    node: str
    options: Callable[[], RunOptions]
    live: Stitcher | None = None
    """The running server's stitcher (only ever touched from its pipeline thread)."""


def reprice_window(
    target: RepriceTarget,
    book: PriceBook,
    start_ns: int,
    end_ns: int,
    *,
    dry_run: bool = False,
    slice_rows: int = SLICE_ROWS,
    clock_ns: Callable[[], int] = time.time_ns,
) -> RepriceResult:
    """Re-price spans that started in ``[start_ns, end_ns)`` and re-emit the runs they change."""
    if end_ns <= start_ns:
        raise RepriceError("the window is empty: 'to' must be after 'from'")
    result = RepriceResult(start_ns, end_ns, dry_run)
    now = clock_ns()
    rerun: set[str] = set()
    open_runs: set[str] = set()
    resources = StoredResourceAttributes(target.store)  # charge entries may match resource attributes
    for lo, hi in _slices(target.store, start_ns, end_ns, slice_rows):
        changed: list[list[Any]] = []
        for row in read_spans(target.store, lo, hi):
            result.spans_scanned += 1
            before = [row[slot] for slot in PRICING_SLOTS]
            old_cost, old_reason = row[F.cost_usd], row[F.unpriced_reason]
            clear_cost(row)
            book.price_row(row, resources)
            if [row[slot] for slot in PRICING_SLOTS] == before:
                continue
            result.spans_repriced += 1
            result.sources[row[F.price_source] or f"unpriced:{row[F.unpriced_reason]}"] += 1
            if row[F.call_role] in COUNTED_ROLES:
                result.calls_repriced += 1
                result.cost_before_femto += old_cost or 0
                result.cost_after_femto += row[F.cost_usd] or 0
            row[F.version] = max(now, row[F.version] + 1)
            changed.append(row)
            if (row[F.cost_usd], row[F.unpriced_reason]) != (old_cost, old_reason):
                rerun.add(row[F.trace_id])
        if changed and not dry_run:
            target.store.insert_arrow(f"{target.store.database}.spans", table_from_rows(SPAN_COLUMNS, changed))
            if target.live is not None:
                _update_open_runs(target.live, changed, open_runs)
    result.runs_affected = len(rerun)
    result.runs_open = len(open_runs & rerun)
    if not dry_run:
        _reemit(target, sorted(rerun - open_runs), now, result)
    return result


def read_spans(store: Store, start_ns: int, end_ns: int) -> list[list[Any]]:
    """Stored spans (latest version) that started in ``[start_ns, end_ns)`` as span rows:
    times as ns, money as femto-USD, the attribute map as (keys, values)."""
    sql, parameters = span_queries.started_in(store.database, start_ns, end_ns)
    result = store.client().query(sql, parameters=parameters)
    rows = []
    for record in result.result_rows:
        row = list(record[:_MAP_POSITION])
        row.append((list(record[_MAP_POSITION]), list(record[_MAP_POSITION + 1])))
        row.extend(record[_MAP_POSITION + 2 :])
        for position in _USD_POSITIONS:
            value = row[position]
            if value is not None:
                row[position] = int(Decimal(value).scaleb(15))
        rows.append(row)
    return rows


def _slices(store: Store, start_ns: int, end_ns: int, slice_rows: int) -> Iterator[tuple[int, int]]:
    """Consecutive sub-windows of about ``slice_rows`` spans each (whole hours grouped)."""
    hours = store.rows(*span_queries.hour_counts(store.database, start_ns, end_ns))
    lo = start_ns
    pending = 0
    for hour, count in hours:
        if pending and pending + count > slice_rows:
            cut = hour * HOUR_NS
            yield lo, cut
            lo, pending = cut, 0
        pending += count
    if pending:
        yield lo, end_ns


def _open_run(stitcher: Stitcher, run_id: str) -> OpenRun | None:
    return stitcher.rooted.get(run_id) or stitcher.unrooted.get(run_id) or stitcher.forced.get(run_id)


def _update_open_runs(live: Stitcher, rows: Sequence[list[Any]], open_runs: set[str]) -> None:
    """Runs the server has not emitted yet carry span tuples in memory: give them the new prices."""
    for row in rows:
        run = _open_run(live, row[F.trace_id])
        if run is None:
            continue
        open_runs.add(run.run_id)
        if row[F.span_id] in run.spans:
            run.spans[row[F.span_id]] = lite_from_row(row)


def _reemit(target: RepriceTarget, run_ids: Sequence[str], now: int, result: RepriceResult) -> None:
    emitter = Emitter(target.runstore, node=target.node, options=target.options, late_horizon_ns=NEVER_LATE_NS)
    for start in range(0, len(run_ids), EMIT_CHUNK_RUNS):
        chunk = run_ids[start : start + EMIT_CHUNK_RUNS]
        # A stitcher of its own: emitting through the server's would flush every open run.
        stitcher = Stitcher(settle_seconds=0, root_wait_seconds=0, closed_cache_runs=len(chunk))
        stored = target.runstore.spans(chunk)
        for run_id in chunk:
            stitcher.restore(run_id, stored.get(run_id, ()), now)
        stats = emitter.emit(stitcher.due(everything=True), stitcher.emitted)
        result.runs_reemitted += stats.emitted
        result.runs_unchanged += stats.unchanged
        live = target.live
        if live is not None:
            # The server remembers what it emitted for recent runs; a late span diffs against
            # that, so it must be what is stored now.
            for run_id in chunk:
                if run_id in live.closed and run_id in stitcher.closed:
                    live.closed[run_id] = stitcher.closed[run_id]
