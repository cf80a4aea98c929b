"""Crash recovery: bring the pipeline's memory back to where an unclean stop left it.

Runs once per start, on the bootstrap thread, after the migrations, with the store writer
started and before the pipeline thread starts (which then owns everything restored here):

1. outcomes posted over the API within the late horizon are remembered, so a closing run
   picks them up;
2. after an unclean stop (``state.json`` of this node says so), runs with spans ingested
   since the persisted low-water mark are reopened from the stored spans, runs with API
   outcomes posted since then are reopened too, and the rollup hours written since the
   last finished emission are rebuilt (whole UTC days);
3. the write-ahead log records not checkpointed are replayed through the same decode and
   normalise path as live traffic.

Every step is idempotent (reopening an open run adds nothing, replayed spans the stitcher
knows are dropped as duplicates, a rollup day is rebuilt from the runs): the bootstrap may
run it again after a failed attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otelspend.clickhouse.rollups import rebuild_hours
from otelspend.clickhouse.runstore import RunStore
from otelspend.pipeline.prepare import PreparedBatch
from otelspend.pipeline.stage import Pipeline, Submission
from otelspend.pipeline.wal import WalRecord

log = logging.getLogger("otelspend")

RECOVERY_MARGIN_NS = 2 * 10**9
"""Read back this much before the persisted marks (clock steps, in-flight work)."""
RESTORE_CHUNK = 5_000
HOUR_NS = 3600 * 10**9

Replay = Callable[[WalRecord], PreparedBatch | None]
"""A logged request -> its prepared spans as live traffic would give them; None when it no
longer decodes or holds no valid span."""


@dataclass(frozen=True)
class RecoveryReport:
    """What a start had to redo."""

    unclean: bool
    reopened_runs: int = 0
    rebuilt_hours: int = 0
    replayed_requests: int = 0


def recover(
    pipeline: Pipeline,
    *,
    runstore: RunStore,
    node: str,
    late_horizon_ns: int,
    state: Mapping[str, Any] | None,
    pending: Sequence[WalRecord],
    replay: Replay,
    clock_ns: Callable[[], int] = time.time_ns,
) -> RecoveryReport:
    """Restore runs, rollups and the logged requests a crash left behind (see the module doc)."""
    now = clock_ns()
    runs, workflows = runstore.outcome_keys_since(now - late_horizon_ns - HOUR_NS)
    pipeline.emitter.outcome_runs |= runs
    pipeline.emitter.outcome_workflows |= workflows
    report = RecoveryReport(unclean=False)
    if state is not None and state.get("node") == node and not state.get("clean"):
        report = _reopen(pipeline, runstore, node, state, now)
    for record in pending:
        batch = replay(record)
        if batch is not None and batch.count:
            pipeline.claim(batch.count)  # released once stored, like live traffic
            pipeline.process([Submission(record.seq, batch, len(record.payload))])
        else:
            # Checkpoint in order with the inserts queued before it, never ahead of them.
            pipeline.checkpoint_after(record.seq)
    if report.unclean:
        log.info(
            "recovered after an unclean stop: %d open run(s) restored, %d rollup hour(s) rebuilt "
            "(whole days), %d logged request(s) to replay",
            report.reopened_runs,
            report.rebuilt_hours,
            len(pending),
        )
    return RecoveryReport(report.unclean, report.reopened_runs, report.rebuilt_hours, len(pending))


def _reopen(pipeline: Pipeline, runstore: RunStore, node: str, state: Mapping[str, Any], now: int) -> RecoveryReport:
    """Reopen the runs an unclean stop left unemitted and rebuild half-written rollup hours."""
    stitcher = pipeline.stitcher
    since = int(state["lwm_ns"]) - RECOVERY_MARGIN_NS
    traces = runstore.traces_ingested_since(node, since)
    for start in range(0, len(traces), RESTORE_CHUNK):
        chunk = traces[start : start + RESTORE_CHUNK]
        stored = runstore.spans(chunk)
        for trace_id in chunk:
            stitcher.restore(trace_id, stored.get(trace_id, ()), now)
    reopened, _ = runstore.outcome_keys_since(since)
    for run_id in reopened:
        if not stitcher.is_open(run_id):
            stitcher.restore(run_id, (), now)
    hours = runstore.hours_written_since(node, int(state["emit_checkpoint_ns"]) - RECOVERY_MARGIN_NS)
    rebuilt = rebuild_hours(runstore.store, hours) if hours else 0
    return RecoveryReport(True, stitcher.open_count(), rebuilt)
